//! Every metric of the ingest stage, under `kevents_ingest_*`, so names do not
//! drift between the code, the docs and the dashboards.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// `events` or `logs`.
    pub endpoint: String,
    /// The HTTP status code.
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    pub endpoint: String,
    /// `unauthorized`, `forbidden`, `bad_request`, `too_large`, `media_type`,
    /// `rate_limited`, `unavailable`, `internal`.
    pub reason: String,
}

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Requests answered, by endpoint and status code.
    pub requests: Family<RequestLabel, Counter>,
    /// Events stored (acknowledged by Kafka), by endpoint.
    pub events: Family<EndpointLabel, Counter>,
    /// Requests refused, by endpoint and reason.
    pub rejected: Family<RejectLabel, Counter>,
    /// Time from request to answer, seconds.
    pub request_seconds: Histogram,
    /// Time Kafka took to acknowledge a request's events, seconds.
    pub publish_seconds: Histogram,
    /// Requests being handled.
    pub in_flight: Gauge,
}

impl Metrics {
    pub fn register(reg: &mut Registry) -> Self {
        let m = Metrics {
            requests: Family::default(),
            events: Family::default(),
            rejected: Family::default(),
            request_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            publish_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            in_flight: Gauge::default(),
        };
        let r = reg.sub_registry_with_prefix("kevents_ingest");
        r.register("requests", "Requests answered, by endpoint and status code", m.requests.clone());
        r.register("events", "Events stored (acknowledged by Kafka)", m.events.clone());
        r.register("rejected", "Requests refused, by reason", m.rejected.clone());
        r.register("request_seconds", "Time from request to answer", m.request_seconds.clone());
        r.register("publish_seconds", "Time Kafka took to acknowledge a request's events", m.publish_seconds.clone());
        r.register("in_flight", "Requests being handled", m.in_flight.clone());
        m
    }
}

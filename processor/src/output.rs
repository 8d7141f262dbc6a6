//! What the processor writes, and where: one [`Output`] variant per record type,
//! one [`OutputKind`] per topic.
//!
//! Adding an output (incidents, patterns, alerts) is adding a variant here and
//! its topic to [`OutputTopics`]: the worker sends every output of an input and
//! releases the input's offset only when all of them are acknowledged, whatever
//! their kinds, and `source.seq` numbers an input's outputs per topic.

use schemas::avro::{Codec, CodecError};
use schemas::records::{Alert, ClusterHeartbeat, Incident, Pattern, ProcessedEvent, SourcePos};

use crate::config::TopicsConfig;

/// Which topic an output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputKind {
    Processed = 0,
    Heartbeat = 1,
    DeadLetter = 2,
    Incident = 3,
    Pattern = 4,
    Alert = 5,
}

impl OutputKind {
    pub const COUNT: usize = 6;
    pub const ALL: [OutputKind; Self::COUNT] = [
        OutputKind::Processed,
        OutputKind::Heartbeat,
        OutputKind::DeadLetter,
        OutputKind::Incident,
        OutputKind::Pattern,
        OutputKind::Alert,
    ];
}

/// One record derived from a raw input. Not boxed: outputs live briefly in a
/// reused `Vec`, and a box would be one more allocation per record.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Output {
    Processed(ProcessedEvent),
    Heartbeat(ClusterHeartbeat),
    Incident(Incident),
    Pattern(Pattern),
    Alert(Alert),
}

impl Output {
    pub fn kind(&self) -> OutputKind {
        match self {
            Output::Processed(_) => OutputKind::Processed,
            Output::Heartbeat(_) => OutputKind::Heartbeat,
            Output::Incident(_) => OutputKind::Incident,
            Output::Pattern(_) => OutputKind::Pattern,
            Output::Alert(_) => OutputKind::Alert,
        }
    }

    /// The Kafka key: the cluster UID, so one cluster's outputs stay in one
    /// partition of each output topic, in order (fleet patterns have no cluster:
    /// their key is the pattern id).
    pub fn key(&self) -> &str {
        match self {
            Output::Processed(r) => &r.cluster.uid,
            Output::Heartbeat(r) => &r.cluster.uid,
            Output::Incident(r) => &r.cluster.uid,
            Output::Pattern(r) if r.cluster.uid.is_empty() => &r.id,
            Output::Pattern(r) => &r.cluster.uid,
            Output::Alert(r) => &r.cluster.uid,
        }
    }

    pub fn source(&self) -> SourcePos {
        match self {
            Output::Processed(r) => r.source,
            Output::Heartbeat(r) => r.source,
            Output::Incident(r) => r.source,
            Output::Pattern(r) => r.source,
            Output::Alert(r) => r.source,
        }
    }

    /// Confluent-framed Avro of the record, appended to `out`.
    pub fn encode_into(&self, codec: &Codec, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Output::Processed(r) => codec.encode_into(r, out),
            Output::Heartbeat(r) => codec.encode_into(r, out),
            Output::Incident(r) => codec.encode_into(r, out),
            Output::Pattern(r) => codec.encode_into(r, out),
            Output::Alert(r) => codec.encode_into(r, out),
        }
    }
}

/// `source.seq` for the next output of `kind` of the input whose outputs start
/// at `start` in `outs`: the number of earlier outputs of that kind.
pub fn next_seq(outs: &[Output], start: usize, kind: OutputKind) -> i32 {
    outs[start..].iter().filter(|o| o.kind() == kind).count() as i32
}

/// Topic name per output kind.
#[derive(Debug, Clone)]
pub struct OutputTopics([String; OutputKind::COUNT]);

impl OutputTopics {
    pub fn from_config(t: &TopicsConfig) -> Self {
        OutputTopics([
            t.processed.clone(),
            t.heartbeats.clone(),
            t.dlq.clone(),
            t.incidents.clone(),
            t.patterns.clone(),
            t.alerts.clone(),
        ])
    }

    pub fn get(&self, kind: OutputKind) -> &str {
        &self.0[kind as usize]
    }

    pub fn all(&self) -> [&str; OutputKind::COUNT] {
        std::array::from_fn(|i| self.0[i].as_str())
    }
}

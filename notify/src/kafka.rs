//! The notifiers' Kafka clients: the consumer settings of each notifier's group on
//! the alerts topic and the producer of sent-markers. (The compacted sent topic is
//! created with `runtime::kafka::ensure_topic`, in [`crate::start`].)
//! The same settings the processor's own clients start from (the processor's
//! `consumer_config`/`producer_config`), stated here because this crate does not
//! depend on the processor; the notifier-specific ones are in
//! [`crate::pipeline`] and [`crate::sent`].

use rdkafka::ClientConfig;

/// An idempotent producer (acks=all) that never gives up on a delivery: a broker
/// outage delays the sent-markers (and so the offsets behind them), it never
/// loses one.
pub fn producer_config(base: &ClientConfig) -> ClientConfig {
    let mut c = base.clone();
    c.set("enable.idempotence", "true").set("acks", "all").set("message.timeout.ms", "0");
    set_default(&mut c, "compression.type", "lz4");
    set_default(&mut c, "linger.ms", "5");
    set_default(&mut c, "queue.buffering.max.messages", "1000000");
    c
}

/// A group consumer of the alerts topic that stores offsets only when told
/// (`enable.auto.offset.store` off) and sees only committed alerts
/// (`read_committed`: the processor writes them in transactions).
pub fn consumer_config(base: &ClientConfig, group_id: &str) -> ClientConfig {
    let mut c = base.clone();
    c.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    // A fetch answers within 100 ms even when little is new.
    set_default(&mut c, "fetch.wait.max.ms", "100");
    // A crashed member's partitions move after this long.
    set_default(&mut c, "session.timeout.ms", "10000");
    set_default(&mut c, "heartbeat.interval.ms", "1000");
    // Feeds `kevents_notifier_lag` (`pipeline::Ctx::stats`).
    set_default(&mut c, "statistics.interval.ms", "5000");
    c
}

fn set_default(c: &mut ClientConfig, key: &str, value: &str) {
    if c.get(key).is_none() {
        c.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_the_guarantee_rests_on_and_defaults_a_user_may_override() {
        let mut base = ClientConfig::new();
        base.set("session.timeout.ms", "30000").set("acks", "1");
        let c = consumer_config(&base, "g.hook");
        assert_eq!((c.get("group.id"), c.get("enable.auto.offset.store"), c.get("isolation.level")), (Some("g.hook"), Some("false"), Some("read_committed")));
        assert_eq!(c.get("session.timeout.ms"), Some("30000"), "the user's setting stays");
        let p = producer_config(&base);
        assert_eq!((p.get("acks"), p.get("enable.idempotence"), p.get("message.timeout.ms")), (Some("all"), Some("true"), Some("0")), "acks=all is not the user's to lower");
    }
}

//! The results of correlation: incidents, patterns, alerts. Fewer than events, but
//! replays must re-emit them byte-identically too, which apache-avro cannot promise
//! for records with maps (it writes them in hash order).

use super::{array, boolean, cluster, double, long, map, map_long, object_ref, severity, source, status, string, Reader, Wire, WireError};
use crate::records::{Alert, AlertSource, Incident, Pattern, PatternScope, RootCause};

impl Wire for Incident {
    fn write(&self, out: &mut Vec<u8>) {
        source(out, &self.source);
        string(out, &self.id);
        long(out, self.version);
        cluster(out, &self.cluster);
        status(out, self.status);
        severity(out, self.severity);
        let rc = &self.root_cause;
        string(out, &rc.event_id);
        string(out, &rc.event_uid);
        string(out, &rc.reason);
        string(out, &rc.category);
        object_ref(out, &rc.object);
        string(out, &rc.note);
        string(out, &self.rule);
        array(out, &self.affected_objects, object_ref);
        map_long(out, &self.reason_counts);
        long(out, self.event_count);
        long(out, self.occurrences);
        long(out, self.first_seen_us);
        long(out, self.last_seen_us);
        string(out, &self.summary);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Incident {
            source: r.source()?,
            id: r.string("id")?,
            version: r.long("version")?,
            cluster: r.cluster()?,
            status: r.status("status")?,
            severity: r.severity("severity")?,
            root_cause: RootCause {
                event_id: r.string("root_cause.event_id")?,
                event_uid: r.string("root_cause.event_uid")?,
                reason: r.string("root_cause.reason")?,
                category: r.string("root_cause.category")?,
                object: r.object_ref()?,
                note: r.string("root_cause.note")?,
            },
            rule: r.string("rule")?,
            affected_objects: r.array("affected_objects", Reader::object_ref)?,
            reason_counts: r.map_long("reason_counts")?,
            event_count: r.long("event_count")?,
            occurrences: r.long("occurrences")?,
            first_seen_us: r.long("first_seen_us")?,
            last_seen_us: r.long("last_seen_us")?,
            summary: r.string("summary")?,
        })
    }
}

impl Wire for Pattern {
    fn write(&self, out: &mut Vec<u8>) {
        source(out, &self.source);
        string(out, &self.id);
        long(out, self.version);
        long(out, matches!(self.scope, PatternScope::Fleet) as i64);
        cluster(out, &self.cluster);
        array(out, &self.clusters, |o, s| string(o, s));
        string(out, &self.key);
        string(out, &self.reason);
        string(out, &self.kind);
        string(out, &self.namespace);
        string(out, &self.template);
        status(out, self.status);
        long(out, self.count);
        long(out, self.first_seen_us);
        long(out, self.last_seen_us);
        double(out, self.per_minute);
        array(out, &self.samples, |o, s| string(o, s));
        array(out, &self.previous_episodes, |o, t| long(o, *t));
        double(out, self.anomaly_score);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Pattern {
            source: r.source()?,
            id: r.string("id")?,
            version: r.long("version")?,
            scope: match r.long("scope")? {
                0 => PatternScope::Cluster,
                1 => PatternScope::Fleet,
                i => return Err(WireError::Index { what: "scope", index: i }),
            },
            cluster: r.cluster()?,
            clusters: r.array("clusters", |r| r.string("clusters"))?,
            key: r.string("key")?,
            reason: r.string("reason")?,
            kind: r.string("kind")?,
            namespace: r.string("namespace")?,
            template: r.string("template")?,
            status: r.status("status")?,
            count: r.long("count")?,
            first_seen_us: r.long("first_seen_us")?,
            last_seen_us: r.long("last_seen_us")?,
            per_minute: r.double("per_minute")?,
            samples: r.array("samples", |r| r.string("samples"))?,
            previous_episodes: r.array("previous_episodes", |r| r.long("previous_episodes"))?,
            anomaly_score: r.double("anomaly_score")?,
        })
    }
}

impl Wire for Alert {
    fn write(&self, out: &mut Vec<u8>) {
        source(out, &self.source);
        string(out, &self.id);
        long(out, self.version);
        string(out, &self.rule);
        long(
            out,
            match self.origin {
                AlertSource::Incident => 0,
                AlertSource::Pattern => 1,
                AlertSource::Anomaly => 2,
            },
        );
        string(out, &self.origin_id);
        boolean(out, self.firing);
        severity(out, self.severity);
        cluster(out, &self.cluster);
        string(out, &self.namespace);
        string(out, &self.summary);
        map(out, &self.labels);
        long(out, self.starts_us);
        long(out, self.ends_us);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Alert {
            source: r.source()?,
            id: r.string("id")?,
            version: r.long("version")?,
            rule: r.string("rule")?,
            origin: match r.long("origin")? {
                0 => AlertSource::Incident,
                1 => AlertSource::Pattern,
                2 => AlertSource::Anomaly,
                i => return Err(WireError::Index { what: "origin", index: i }),
            },
            origin_id: r.string("origin_id")?,
            firing: r.boolean("firing")?,
            severity: r.severity("severity")?,
            cluster: r.cluster()?,
            namespace: r.string("namespace")?,
            summary: r.string("summary")?,
            labels: r.map("labels")?,
            starts_us: r.long("starts_us")?,
            ends_us: r.long("ends_us")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{current_schema, AvroRecord};
    use crate::model::{ClusterId, ObjectRef, Severity};
    use crate::records::{SourcePos, Status};
    use std::collections::BTreeMap;

    /// apache-avro reads our bytes, we read apache-avro's, both equal `rec`.
    fn same<T: AvroRecord + Wire + PartialEq + std::fmt::Debug>(rec: T) {
        let mut ours = Vec::new();
        rec.write(&mut ours);
        let schema = current_schema(T::TYPE);
        let theirs = apache_avro::to_avro_datum(schema, apache_avro::to_value(&rec).unwrap()).unwrap();
        assert_eq!(ours.len(), theirs.len(), "encodings differ for {rec:?}");
        let v = apache_avro::from_avro_datum(schema, &mut &ours[..], None).unwrap();
        assert_eq!(apache_avro::from_value::<T>(&v).unwrap(), rec);
        let mut r = Reader::new(&theirs);
        assert_eq!(T::read(&mut r).unwrap(), rec);
        assert_eq!(r.remaining(), 0);
    }

    fn obj(name: &str) -> ObjectRef {
        ObjectRef { kind: "Pod".into(), namespace: "shop".into(), name: name.into(), ..Default::default() }
    }

    #[test]
    fn results_encode_like_apache_avro_and_maps_are_in_key_order() {
        let inc = Incident {
            source: SourcePos { partition: 1, offset: 9, seq: 2 },
            id: "i".into(),
            version: 3,
            cluster: ClusterId { name: "c".into(), uid: "u".into() },
            status: Status::Resolved,
            severity: Severity::Critical,
            root_cause: RootCause { event_id: "e".into(), event_uid: "eu".into(), reason: "FailedMount".into(), category: "volume".into(), object: obj("a"), note: "n".into() },
            rule: "r".into(),
            affected_objects: vec![obj("a"), obj("b")],
            reason_counts: BTreeMap::from([("BackOff".into(), 14), ("FailedMount".into(), 2), ("Unhealthy".into(), -1)]),
            event_count: 16,
            occurrences: 40,
            first_seen_us: 1,
            last_seen_us: 2,
            summary: "s".into(),
        };
        same(inc.clone());
        same(Incident::default());
        same(Pattern {
            scope: PatternScope::Fleet,
            clusters: vec!["a".into(), "b".into()],
            per_minute: 1.5,
            samples: vec!["x".into()],
            previous_episodes: vec![100, -200],
            anomaly_score: f64::INFINITY,
            status: Status::Open,
            ..Default::default()
        });
        for origin in [AlertSource::Incident, AlertSource::Pattern, AlertSource::Anomaly] {
            same(Alert {
                origin,
                firing: origin != AlertSource::Pattern,
                severity: Severity::Warning,
                labels: BTreeMap::from([("team".into(), "a".into()), ("env".into(), "prod".into())]),
                ..Default::default()
            });
        }
        // Key order: the same record always encodes to the same bytes.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        inc.write(&mut a);
        inc.clone().write(&mut b);
        assert_eq!(a, b);
    }
}

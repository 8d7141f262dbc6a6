//! Schema ids from a registry: `runtime::registry::codec` registers every schema
//! version (history included) under its record-name subject, frames records with the
//! registry's ids, decodes them with another codec built from the same registry, and
//! refuses ids it does not know. Basic auth is sent when configured.

use schemas::avro::{builtin_id, history, split_frame, CodecError, RecordType};
use runtime::secret::Secret;
use schemas::records::{Heartbeat, ProcessedEvent, RawRecord};
use runtime::registry::{codec, subject, RegistryConfig};
use kevents_testkit::registry::Registry;

#[tokio::test]
async fn ids_come_from_the_registry_when_one_is_configured() {
    let reg = Registry::start(Some(("kevents", "s3cret"))).await.unwrap();
    reg.preload(r#"{"type":"string"}"#); // someone else's schema holds id 1
    let cfg = RegistryConfig {
        url: reg.url(),
        username: Some("kevents".into()),
        password: Some(Secret::new("s3cret")),
    };
    let writer = codec(Some(&cfg)).await.expect("registering");
    let reader = codec(Some(&cfg)).await.expect("registering again is idempotent");

    // Every record type has a subject; history versions are registered too.
    let subjects = reg.subjects();
    for ty in RecordType::ALL {
        let ids = &subjects[&subject(ty)];
        let versions = 1 + history().iter().filter(|(t, _, _)| *t == ty).count();
        assert_eq!(ids.len(), versions, "{}", subject(ty));
        assert_ne!(writer.ids().writer_id(ty), builtin_id(ty, ty.current_version()));
        assert_eq!(writer.ids().writer_id(ty), reader.ids().writer_id(ty));
    }

    let rec = RawRecord {
        heartbeat: Some(Heartbeat { scope: "".into(), resource_version: "7".into(), ..Default::default() }),
        ..Default::default()
    };
    let bytes = writer.encode(&rec).unwrap();
    let (id, _) = split_frame(&bytes).unwrap();
    assert_eq!(id, writer.ids().writer_id(RecordType::Raw));
    assert_eq!(reader.decode::<RawRecord>(&bytes).unwrap(), rec);
    // The built-in table does not know the registry's ids, and vice versa: explicit.
    let builtin = schemas::avro::Codec::default();
    assert!(matches!(builtin.decode::<ProcessedEvent>(&writer.encode(&ProcessedEvent::default()).unwrap()),
        Err(CodecError::UnknownSchemaId(_)) | Err(CodecError::WrongType { .. })));

    // Wrong password: a clear error, not a silent fallback to built-in ids.
    let bad = RegistryConfig { password: Some(Secret::new("nope")), ..cfg.clone() };
    let err = codec(Some(&bad)).await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("nope"), "the password must not appear in errors: {err}");
}

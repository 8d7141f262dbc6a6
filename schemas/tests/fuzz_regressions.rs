//! Inputs the fuzz targets (fuzz/, `scripts/fuzz`) found crashing, replayed the way
//! the target feeds them: each file under `tests/fixtures/fuzz/` named
//! `avro_decode-*` is decoded as every record type, as is and behind the Confluent
//! frame of the writer schema its first byte picks. Each must come back as a
//! `CodecError` — before the fix the process aborted.

use kevents_schemas::avro::{builtin_id, history, Codec, CodecError, SchemaIds, MAX_DECODE_ALLOCATION};
use kevents_schemas::records::{Alert, ClusterHeartbeat, Incident, Pattern, ProcessedEvent, RawRecord};
use std::path::Path;

fn decode_all(codec: &Codec, bytes: &[u8]) -> Vec<Result<(), CodecError>> {
    vec![
        codec.decode::<RawRecord>(bytes).map(drop),
        codec.decode::<ProcessedEvent>(bytes).map(drop),
        codec.decode::<Incident>(bytes).map(drop),
        codec.decode::<Pattern>(bytes).map(drop),
        codec.decode::<Alert>(bytes).map(drop),
        codec.decode::<ClusterHeartbeat>(bytes).map(drop),
    ]
}

#[test]
fn avro_decode_crashes_are_errors_now() {
    let codec = Codec::new(SchemaIds::builtin());
    assert_eq!(apache_avro::util::max_allocation_bytes(0), MAX_DECODE_ALLOCATION, "the allocation bound is in force");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("avro_decode-") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let mut results = decode_all(&codec, &data);
        let (&pick, body) = data.split_first().unwrap();
        let schemas = history();
        let (ty, version, _) = schemas[pick as usize % schemas.len()];
        let mut framed = vec![0];
        framed.extend_from_slice(&builtin_id(ty, version).to_be_bytes());
        framed.extend_from_slice(body);
        results.extend(decode_all(&codec, &framed));
        assert!(results.iter().all(Result::is_err), "{}: corrupt input decoded: {results:?}", path.display());
        replayed += 1;
    }
    assert!(replayed > 0, "no avro_decode fixtures in {}", dir.display());
}

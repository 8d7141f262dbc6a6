//! Fuzz target: the Avro decoders of every record type. The first byte picks a
//! writer schema (current or historical) whose Confluent frame is put in front of
//! the rest, so the fuzzer reaches the datum decoders (hand-written `wire` for the
//! current schemas, apache-avro resolution for older ones) instead of stopping at
//! the frame header; the raw input is also decoded as is. Any panic, hang or
//! unbounded allocation is a bug: bad bytes must come back as a `CodecError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::avro::{builtin_id, history, Codec, SchemaIds};
use schemas::records::{Alert, ClusterHeartbeat, Incident, Pattern, ProcessedEvent, RawRecord};

extern crate kevents_schemas as schemas;

fn decode_all(codec: &Codec, bytes: &[u8]) {
    let _ = codec.decode::<RawRecord>(bytes);
    let _ = codec.decode::<ProcessedEvent>(bytes);
    let _ = codec.decode::<Incident>(bytes);
    let _ = codec.decode::<Pattern>(bytes);
    let _ = codec.decode::<Alert>(bytes);
    let _ = codec.decode::<ClusterHeartbeat>(bytes);
}

fuzz_target!(|data: &[u8]| {
    thread_local! { static CODEC: Codec = Codec::new(SchemaIds::builtin()); }
    CODEC.with(|codec| {
        decode_all(codec, data);
        if let Some((&pick, body)) = data.split_first() {
            let schemas = history();
            let (ty, version, _) = schemas[pick as usize % schemas.len()];
            let mut framed = Vec::with_capacity(5 + body.len());
            framed.push(0);
            framed.extend_from_slice(&builtin_id(ty, version).to_be_bytes());
            framed.extend_from_slice(body);
            decode_all(codec, &framed);
        }
    });
});

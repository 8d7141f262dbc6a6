//! Avro encoding of the records, framed in the Confluent wire format.
//!
//! A message value is `0x00`, the writer schema's id as a big-endian `u32`, then the
//! Avro binary datum. Any Kafka tool that speaks Confluent framing (and ClickHouse's
//! `AvroConfluent` format with a registry) can read it.
//!
//! Schema ids come from [`SchemaIds`]: the built-in table below, or ids a schema
//! registry assigned (see the runtime crate's `registry`). Readers resolve the writer schema by
//! the id in the frame, so data written with an older schema (kept in
//! `schemas/avro/history/`) is read into today's types by Avro schema resolution.

use apache_avro::{from_avro_datum, from_value, to_avro_datum, to_value, Schema};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::records::{Alert, ClusterHeartbeat, Incident, Pattern, ProcessedEvent, RawRecord};
use crate::wire::{self, Wire};

/// Why a message could not be decoded or a record encoded. All of these are
/// permanent for the message at hand: retrying cannot help, so callers send the
/// message to the dead-letter topic with this error as the reason.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message is {0} bytes, too short for the Confluent frame (5 bytes)")]
    TooShort(usize),
    #[error("bad magic byte {0:#04x} (expected 0x00, Confluent wire format)")]
    BadMagic(u8),
    #[error("unknown schema id {0}")]
    UnknownSchemaId(u32),
    #[error("schema id {id} is a {found} schema, expected {expected}")]
    WrongType {
        id: u32,
        found: &'static str,
        expected: &'static str,
    },
    #[error("avro: {0}")]
    Avro(String),
}

/// The record types, one per schema subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    Raw,
    Processed,
    Incident,
    Pattern,
    Alert,
    Heartbeat,
}

impl RecordType {
    pub const ALL: [RecordType; 6] = [
        RecordType::Raw,
        RecordType::Processed,
        RecordType::Incident,
        RecordType::Pattern,
        RecordType::Alert,
        RecordType::Heartbeat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RecordType::Raw => "raw_record",
            RecordType::Processed => "processed_event",
            RecordType::Incident => "incident",
            RecordType::Pattern => "pattern",
            RecordType::Alert => "alert",
            RecordType::Heartbeat => "cluster_heartbeat",
        }
    }

    /// The current schema's JSON text.
    pub fn schema_text(self) -> &'static str {
        match self {
            RecordType::Raw => include_str!("../avro/raw_record.avsc"),
            RecordType::Processed => include_str!("../avro/processed_event.avsc"),
            RecordType::Incident => include_str!("../avro/incident.avsc"),
            RecordType::Pattern => include_str!("../avro/pattern.avsc"),
            RecordType::Alert => include_str!("../avro/alert.avsc"),
            RecordType::Heartbeat => include_str!("../avro/cluster_heartbeat.avsc"),
        }
    }

    /// Current version number; earlier versions are in [`history`].
    pub fn current_version(self) -> u32 {
        match self {
            RecordType::Raw | RecordType::Processed => 2,
            _ => 1,
        }
    }
}

/// Every earlier schema version still readable: (type, version, schema text).
/// Never remove an entry: data written with it may still be on a topic.
pub fn history() -> &'static [(RecordType, u32, &'static str)] {
    &[
        (
            RecordType::Raw,
            1,
            include_str!("../avro/history/raw_record.v1.avsc"),
        ),
        (
            RecordType::Processed,
            1,
            include_str!("../avro/history/processed_event.v1.avsc"),
        ),
    ]
}

/// Built-in schema id of a (type, version): `100 * (type index + 1) + version`.
/// Fixed forever, so two deployments without a registry agree on them.
pub fn builtin_id(ty: RecordType, version: u32) -> u32 {
    let index = RecordType::ALL.iter().position(|t| *t == ty).unwrap() as u32;
    100 * (index + 1) + version
}

/// A parsed schema with its identity.
#[derive(Debug)]
pub struct KnownSchema {
    pub ty: RecordType,
    pub version: u32,
    pub schema: Schema,
}

fn parse(text: &str, what: &str) -> Schema {
    Schema::parse_str(text).unwrap_or_else(|e| panic!("built-in schema {what} is invalid: {e}"))
}

/// Parsed current schemas, by type (parsed once; a bad built-in schema is a bug).
pub fn current_schema(ty: RecordType) -> &'static Schema {
    static CURRENT: OnceLock<HashMap<RecordType, Schema>> = OnceLock::new();
    &CURRENT.get_or_init(|| {
        RecordType::ALL
            .iter()
            .map(|t| (*t, parse(t.schema_text(), t.name())))
            .collect()
    })[&ty]
}

/// The id table: which id each writer schema has, and which schema an id means.
#[derive(Debug)]
pub struct SchemaIds {
    by_id: HashMap<u32, KnownSchema>,
    current: HashMap<RecordType, u32>,
}

impl SchemaIds {
    /// The fixed built-in table (no registry configured).
    pub fn builtin() -> Self {
        let mut by_id = HashMap::new();
        let mut current = HashMap::new();
        for ty in RecordType::ALL {
            let v = ty.current_version();
            let id = builtin_id(ty, v);
            by_id.insert(
                id,
                KnownSchema {
                    ty,
                    version: v,
                    schema: current_schema(ty).clone(),
                },
            );
            current.insert(ty, id);
        }
        for (ty, v, text) in history() {
            by_id.insert(
                builtin_id(*ty, *v),
                KnownSchema {
                    ty: *ty,
                    version: *v,
                    schema: parse(text, ty.name()),
                },
            );
        }
        SchemaIds { by_id, current }
    }

    /// A table from ids a registry assigned: `ids` maps (type, version) → id.
    pub fn from_assigned(ids: &HashMap<(RecordType, u32), u32>) -> Self {
        let builtin = Self::builtin();
        let mut by_id = HashMap::new();
        let mut current = HashMap::new();
        for (_, known) in builtin.by_id {
            if let Some(id) = ids.get(&(known.ty, known.version)) {
                if known.version == known.ty.current_version() {
                    current.insert(known.ty, *id);
                }
                by_id.insert(*id, known);
            }
        }
        SchemaIds { by_id, current }
    }

    /// Id to write `ty` with.
    pub fn writer_id(&self, ty: RecordType) -> u32 {
        self.current[&ty]
    }

    pub fn get(&self, id: u32) -> Option<&KnownSchema> {
        self.by_id.get(&id)
    }
}

/// A Rust type with an Avro schema.
pub trait AvroRecord: Serialize + DeserializeOwned {
    const TYPE: RecordType;

    /// Append the datum in the current schema by hand ([`crate::wire`]); `false` when
    /// the type has no hand-written encoding (apache-avro is used instead).
    fn write_wire(&self, _out: &mut Vec<u8>) -> bool {
        false
    }

    /// Read a datum written with the current schema by hand; `None` when the type has
    /// no hand-written decoding.
    fn read_wire(_datum: &[u8]) -> Option<Result<Self, CodecError>> {
        None
    }
}

/// Every current record uses the hand-written encoding of [`crate::wire`] (fast,
/// and maps in key order so replays are byte-identical); older writer schemas are
/// read through apache-avro's resolution.
macro_rules! wire_record {
    ($t:ty, $ty:expr) => {
        impl AvroRecord for $t {
            const TYPE: RecordType = $ty;
            fn write_wire(&self, out: &mut Vec<u8>) -> bool {
                Wire::write(self, out);
                true
            }
            fn read_wire(datum: &[u8]) -> Option<Result<Self, CodecError>> {
                let mut r = wire::Reader::new(datum);
                Some(match <$t as Wire>::read(&mut r) {
                    Ok(_) if r.remaining() > 0 => Err(CodecError::Avro(format!(
                        "{} trailing bytes after the datum",
                        r.remaining()
                    ))),
                    Ok(v) => Ok(v),
                    Err(e) => Err(CodecError::Avro(e.to_string())),
                })
            }
        }
    };
}

wire_record!(RawRecord, RecordType::Raw);
wire_record!(ProcessedEvent, RecordType::Processed);
wire_record!(Incident, RecordType::Incident);
wire_record!(Pattern, RecordType::Pattern);
wire_record!(Alert, RecordType::Alert);
wire_record!(ClusterHeartbeat, RecordType::Heartbeat);

/// Encodes and decodes framed records with one id table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Codec {
    ids: std::sync::Arc<SchemaIds>,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new(SchemaIds::builtin())
    }
}

/// The most apache-avro may allocate for one string, byte array, or one block of a
/// map or array while it decodes an older writer schema. Its own default (512 MiB) is
/// a count, not bytes: a corrupt map count of 500 M made it reserve 43 GB for the map
/// and abort the process (found by the `avro_decode` fuzz target). No field of a Kafka
/// message can be longer than the message (1 MiB by Kafka's default
/// `message.max.bytes`), so 1 MiB costs nothing real and bounds a poison message to a
/// decode error.
pub const MAX_DECODE_ALLOCATION: usize = 1 << 20;

/// Set apache-avro's allocation bound (a process-wide value that the first caller
/// fixes: every decode calls this before apache-avro runs).
fn bound_avro_allocations() -> usize {
    apache_avro::util::max_allocation_bytes(MAX_DECODE_ALLOCATION)
}

impl Codec {
    pub fn new(ids: SchemaIds) -> Self {
        bound_avro_allocations();
        Codec { ids: std::sync::Arc::new(ids) }
    }

    pub fn ids(&self) -> &SchemaIds {
        &self.ids
    }

    /// Encode `record` with the current schema of its type, framed, appended to `out`.
    pub fn encode_into<T: AvroRecord>(&self, record: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let id = self.ids.writer_id(T::TYPE);
        let start = out.len();
        out.push(0);
        out.extend_from_slice(&id.to_be_bytes());
        if record.write_wire(out) {
            return Ok(());
        }
        let schema = current_schema(T::TYPE);
        let datum = to_value(record)
            .and_then(|value| to_avro_datum(schema, value))
            .map_err(|e| {
                out.truncate(start);
                CodecError::Avro(e.to_string())
            })?;
        out.extend_from_slice(&datum);
        Ok(())
    }

    pub fn encode<T: AvroRecord>(&self, record: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encode_into(record, &mut out)?;
        Ok(out)
    }

    /// Decode a framed message into `T`, resolving from whichever known schema wrote it.
    pub fn decode<T: AvroRecord>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (id, mut datum) = split_frame(bytes)?;
        let known = self.ids.get(id).ok_or(CodecError::UnknownSchemaId(id))?;
        if known.ty != T::TYPE {
            return Err(CodecError::WrongType {
                id,
                found: known.ty.name(),
                expected: T::TYPE.name(),
            });
        }
        if known.version == T::TYPE.current_version() {
            if let Some(r) = T::read_wire(datum) {
                return r;
            }
        }
        let reader = current_schema(T::TYPE);
        bound_avro_allocations();
        let value = from_avro_datum(&known.schema, &mut datum, Some(reader))
            .map_err(|e| CodecError::Avro(e.to_string()))?;
        if !datum.is_empty() {
            return Err(CodecError::Avro(format!(
                "{} trailing bytes after the datum",
                datum.len()
            )));
        }
        from_value(&value).map_err(|e| CodecError::Avro(e.to_string()))
    }
}

/// Split a Confluent frame into (schema id, datum).
pub fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    if bytes.len() < 5 {
        return Err(CodecError::TooShort(bytes.len()));
    }
    if bytes[0] != 0 {
        return Err(CodecError::BadMagic(bytes[0]));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}

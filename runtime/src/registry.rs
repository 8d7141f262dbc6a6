//! Optional Confluent Schema Registry client: registers kevents' schemas (every
//! history version, then the current one) and returns the ids the registry
//! assigned, as a [`SchemaIds`] table.
//!
//! Subjects follow the RecordNameStrategy (`io.kevents.v1.RawRecord`, …) so one
//! subject per record type serves every topic that carries it. Without a registry,
//! [`SchemaIds::builtin`] gives fixed ids instead.

use std::collections::HashMap;

use schemas::avro::{current_schema, history, Codec, RecordType, SchemaIds};
use crate::secret::Secret;

/// Where the registry is and how to authenticate. The password is a [`Secret`]:
/// never logged.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://schema-registry:8081`.
    pub url: String,
    /// Basic-auth user, if the registry needs one.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password (prefer the env override `KEVENTS__…__PASSWORD`).
    #[serde(default)]
    pub password: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("schema registry at {url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
}

/// The subject a record type's schemas are registered under.
pub fn subject(ty: RecordType) -> String {
    match current_schema(ty) {
        apache_avro::Schema::Record(r) => r.name.fullname(None),
        _ => unreachable!("every kevents schema is a record"),
    }
}

/// The codec a stage uses: ids from the registry when one is configured (every
/// schema registered first), else the fixed built-in table.
pub async fn codec(cfg: Option<&RegistryConfig>) -> Result<Codec, RegistryError> {
    match cfg {
        None => Ok(Codec::default()),
        Some(cfg) => Ok(Codec::new(register_all(cfg).await?)),
    }
}

/// Register every known schema version and build the id table from the answers.
/// Registering an already registered schema returns its existing id, so this is
/// idempotent and safe to run at every start.
pub async fn register_all(cfg: &RegistryConfig) -> Result<SchemaIds, RegistryError> {
    let client = reqwest::Client::new();
    let mut ids = HashMap::new();
    let mut versions: Vec<(RecordType, u32, &str)> = history().to_vec();
    versions.extend(RecordType::ALL.iter().map(|t| (*t, t.current_version(), t.schema_text())));
    for (ty, version, text) in versions {
        let url = format!(
            "{}/subjects/{}/versions",
            cfg.url.trim_end_matches('/'),
            subject(ty)
        );
        let mut req = client
            .post(&url)
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "schema": text }));
        if let Some(user) = &cfg.username {
            req = req.basic_auth(user, cfg.password.as_ref().map(Secret::expose));
        }
        let resp = req.send().await.map_err(|source| RegistryError::Http {
            url: url.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|source| RegistryError::Http {
            url: url.clone(),
            source,
        })?;
        let id = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_u64()))
            .filter(|_| status == 200);
        match id {
            Some(id) => {
                ids.insert((ty, version), id as u32);
            }
            None => return Err(RegistryError::Status { url, status, body }),
        }
    }
    Ok(SchemaIds::from_assigned(&ids))
}

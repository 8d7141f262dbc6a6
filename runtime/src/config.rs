//! Loading a stage's config: YAML file, then environment overrides, then typed
//! validation — one path for every stage.
//!
//! Env overrides: `KEVENTS__<SECTION>__<FIELD>=value` sets `section.field`, e.g.
//! `KEVENTS__KAFKA__BROKERS=k1:9092`, `KEVENTS__LISTEN=0.0.0.0:9470`. (The double
//! underscore after `KEVENTS` keeps overrides apart from other `KEVENTS_*`
//! variables such as `KEVENTS_CONFIG` or `KEVENTS_LOG`.) Values are parsed as YAML scalars (so `true`,
//! `5`, `[a, b]` work). Unknown fields are errors that name the field, so a typo in
//! the file or an env var stops start-up instead of being ignored.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("env override {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The prefix of override variables.
pub const ENV_PREFIX: &str = "KEVENTS__";

/// Read `path` (or start from an empty document), apply env overrides, deserialize.
pub fn load<T: DeserializeOwned>(path: Option<&Path>) -> Result<T, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_with_env(path, &env)
}

/// [`load`] with an explicit environment (tests).
pub fn load_with_env<T: DeserializeOwned>(
    path: Option<&Path>,
    env: &[(String, String)],
) -> Result<T, ConfigError> {
    let (name, mut doc) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?;
            let v: Value = serde_norway::from_str(&text).map_err(|e| ConfigError::Parse {
                path: p.display().to_string(),
                message: e.to_string(),
            })?;
            (p.display().to_string(), if v.is_null() { Value::Object(Default::default()) } else { v })
        }
        None => ("<defaults>".to_string(), Value::Object(Default::default())),
    };
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
        let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
        let value: Value = serde_norway::from_str(raw).unwrap_or(Value::String(raw.clone()));
        set_path(&mut doc, &keys, value).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
    }
    serde_path_to_error(&name, doc)
}

fn set_path(doc: &mut Value, keys: &[String], value: Value) -> Result<(), String> {
    let mut cur = doc;
    for (i, k) in keys.iter().enumerate() {
        if !cur.is_object() {
            if cur.is_null() {
                *cur = Value::Object(Default::default());
            } else {
                return Err(format!("{} is not a section", keys[..i].join(".")));
            }
        }
        let obj = cur.as_object_mut().unwrap();
        if i == keys.len() - 1 {
            obj.insert(k.clone(), value);
            return Ok(());
        }
        cur = obj.entry(k.clone()).or_insert(Value::Null);
    }
    Ok(())
}

/// Deserialize, reporting the path of the offending field.
fn serde_path_to_error<T: DeserializeOwned>(name: &str, doc: Value) -> Result<T, ConfigError> {
    let json = serde_json::to_string(&doc).expect("a JSON value serializes");
    let de = &mut serde_json::Deserializer::from_str(&json);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            Err(ConfigError::Parse {
                path: name.to_string(),
                message: if path == "." {
                    e.into_inner().to_string()
                } else {
                    format!("field `{path}`: {}", e.into_inner())
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        brokers: String,
        #[serde(default)]
        retries: u32,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        kafka: Inner,
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn file_then_env_overrides() {
        let dir = std::env::temp_dir().join(format!("kev-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.yaml");
        std::fs::write(&p, "kafka:\n  brokers: a:1\n").unwrap();
        let env = vec![
            ("KEVENTS__KAFKA__RETRIES".to_string(), "5".to_string()),
            ("KEVENTS_FLAG".to_string(), "not an override: single underscore".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c: Cfg = load_with_env(Some(&p), &env).unwrap();
        assert_eq!(c.kafka.brokers, "a:1");
        assert_eq!(c.kafka.retries, 5);
        assert!(!c.flag);
    }

    #[test]
    fn unknown_and_bad_fields_are_named() {
        let env = vec![
            ("KEVENTS__KAFKA__BROKERS".to_string(), "b:2".to_string()),
            ("KEVENTS__KAFKA__BROKRES".to_string(), "typo".to_string()),
        ];
        let err = load_with_env::<Cfg>(None, &env).unwrap_err().to_string();
        assert!(err.contains("kafka") && err.contains("brokres"), "{err}");
        let env = vec![
            ("KEVENTS__KAFKA__BROKERS".to_string(), "b:2".to_string()),
            ("KEVENTS__KAFKA__RETRIES".to_string(), "lots".to_string()),
        ];
        let err = load_with_env::<Cfg>(None, &env).unwrap_err().to_string();
        assert!(err.contains("kafka.retries"), "{err}");
    }
}

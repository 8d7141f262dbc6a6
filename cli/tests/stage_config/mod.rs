//! The three stages' configs as the `kevents` binary loads them (YAML file, then the
//! `KEVENTS__SECTION__FIELD` overrides, then `validate()`), for the deploy tests: the
//! files docker-compose.yml mounts and the ConfigMaps the overlays render must be
//! accepted by the real config structs, not by a copy of their rules.

use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Collector,
    Processor,
    Sink,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Collector, Stage::Processor, Stage::Sink];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Collector => "collector",
            Stage::Processor => "processor",
            Stage::Sink => "sink",
        }
    }

    pub fn from_name(s: &str) -> Stage {
        *Stage::ALL.iter().find(|x| x.name() == s).unwrap_or_else(|| panic!("unknown kevents sub-command {s:?}"))
    }

    /// The config with every default, as JSON: its key paths are the fields to document.
    pub fn defaults(self) -> Value {
        match self {
            Stage::Collector => serde_json::to_value(collector::CollectorConfig::for_cluster("x")),
            Stage::Processor => serde_json::to_value(processor::ProcessorConfig::default()),
            Stage::Sink => serde_json::to_value(sink::SinkConfig::default()),
        }
        .unwrap()
    }

    /// Load `file` exactly as `kevents <stage> --config file` does (YAML, then the
    /// `KEVENTS__` overrides of `env`), validate, and return the result as JSON.
    pub fn load(self, file: &Path, env: &[(String, String)]) -> Result<Value, String> {
        use runtime::config::load_with_env;
        let v = match self {
            Stage::Collector => {
                let c: collector::CollectorConfig = load_with_env(Some(file), env).map_err(|e| e.to_string())?;
                c.validate().map_err(|e| e.to_string())?;
                serde_json::to_value(c)
            }
            Stage::Processor => {
                let c: processor::ProcessorConfig = load_with_env(Some(file), env).map_err(|e| e.to_string())?;
                c.validate().map_err(|e| e.to_string())?;
                serde_json::to_value(c)
            }
            Stage::Sink => {
                let c: sink::SinkConfig = load_with_env(Some(file), env).map_err(|e| e.to_string())?;
                c.validate().map_err(|e| e.to_string())?;
                serde_json::to_value(c)
            }
        };
        Ok(v.unwrap())
    }
}

pub fn listen_of(cfg: &Value) -> SocketAddr {
    cfg["listen"].as_str().expect("listen is a string").parse().expect("listen parses")
}

/// Every `a.b.c` path through nested objects (arrays are leaves).
pub fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            out.insert(p.clone());
            key_paths(child, &p, out);
        }
    }
}

pub fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}


//! Correlation: related events grouped into incidents with a root cause.
//!
//! Three strategies, combined by data-driven rules (`rules/correlate.yaml`,
//! overridable, reference in `docs/correlation.md`):
//! - **resource**: events about the same object or the same owner chain
//!   (Pod → ReplicaSet → Deployment, Pod → Job → CronJob, a StatefulSet's
//!   pods and claims), derived from names, UIDs and messages ([`links`]);
//! - **time window**: node- and cluster-wide links hold only `within` a
//!   window after the incident's last event;
//! - **cause → effect**: each rule names the cause that opens an incident (its
//!   root cause) and the effects and recoveries that may follow.
//!
//! Layout: [`rules`] (YAML → compiled matchers), [`links`] (identities of an
//! event), [`state`] (the per-partition state machine), [`late`] (causes that
//! arrive after their effects: orphans and re-rooting), [`incident`] (an open
//! incident, its versions and summary).

pub mod incident;
pub mod late;
pub mod links;
pub mod orphans;
pub mod rules;
pub mod state;

pub use rules::Rules;
pub use state::{CorrCounts, CorrInput, CorrelationState, Limits};

use runtime::kafka::FieldError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `correlation` section of the processor's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationConfig {
    /// Users' correlation rule files, before the built-in rules (a rule with a
    /// built-in rule's name replaces it). See `docs/correlation.md`.
    #[serde(default)]
    pub rules_files: Vec<PathBuf>,
    /// Open incidents per raw partition, at most; beyond it the incident closest
    /// to resolving is resolved early (counted as an eviction). Default 10,000.
    #[serde(default = "default_max_open")]
    pub max_open_incidents: usize,
    /// Parent links learned from controllers' events ("Created pod: x") kept per
    /// raw partition; the oldest go first. Default 200,000.
    #[serde(default = "default_max_links")]
    pub max_learned_links: usize,
}

fn default_max_open() -> usize {
    Limits::default().max_open
}
fn default_max_links() -> usize {
    Limits::default().max_links
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig { rules_files: vec![], max_open_incidents: default_max_open(), max_learned_links: default_max_links() }
    }
}

impl CorrelationConfig {
    pub fn limits(&self) -> Limits {
        Limits { max_open: self.max_open_incidents, max_links: self.max_learned_links, ..Limits::default() }
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        if self.max_open_incidents < 10 {
            return Err(FieldError::new("correlation.max_open_incidents", "must be at least 10"));
        }
        if self.max_learned_links < 100 {
            return Err(FieldError::new("correlation.max_learned_links", "must be at least 100"));
        }
        for (i, p) in self.rules_files.iter().enumerate() {
            if !p.is_file() {
                return Err(FieldError::new(format!("correlation.rules_files[{i}]"), format!("{} is not a readable file", p.display())));
            }
        }
        Ok(())
    }
}

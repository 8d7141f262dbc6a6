//! Retryable or permanent: what a failed INSERT means, decided from ClickHouse's
//! error code by the rules in `sink/rules/clickhouse_errors.yaml` (data, not code).
//!
//! Why it matters: retrying an error that can never succeed (a row ClickHouse rejects,
//! a type that no longer fits the column) wedges loading for every member that
//! inherits the batch; dead-lettering an error that would pass on retry (a server
//! restarting, too many parts) throws good rows out of the pipeline. The code comes
//! from the `X-ClickHouse-Exception-Code` header or the `Code: NNN` of the body; the
//! `clickhouse` crate surfaces both in `Error::BadResponse`'s text.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// What to do with a failed INSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Retry the same batch until it lands.
    Retryable,
    /// The rows are at fault: bisect, dead-letter what ClickHouse rejects.
    Permanent,
}

/// One classified failure: the class, ClickHouse's code when there is one, and the
/// server's (or the client's) message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: Class,
    pub code: Option<u32>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRule {
    code: u32,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientRules {
    network: Class,
    timed_out: Class,
    bad_response: Class,
    schema_mismatch: Class,
    serialization: Class,
    other: Class,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    default: Class,
    retryable: Vec<CodeRule>,
    permanent: Vec<CodeRule>,
    client: ClientRules,
}

/// The classification rules, loaded from YAML.
#[derive(Debug)]
pub struct Rules {
    default: Class,
    by_code: HashMap<u32, (Class, String)>,
    client: ClientRules,
}

/// The built-in rules file.
pub const BUILTIN_YAML: &str = include_str!("../rules/clickhouse_errors.yaml");

impl Rules {
    /// Parse a rules file; a code listed twice is an error.
    pub fn from_yaml(text: &str) -> Result<Rules, String> {
        let f: RulesFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let mut by_code = HashMap::new();
        for (class, list) in [(Class::Retryable, f.retryable), (Class::Permanent, f.permanent)] {
            for r in list {
                if by_code.insert(r.code, (class, r.name.clone())).is_some() {
                    return Err(format!("code {} ({}) is listed twice", r.code, r.name));
                }
            }
        }
        Ok(Rules { default: f.default, by_code, client: f.client })
    }

    /// The built-in rules (parsed once).
    pub fn builtin() -> &'static Rules {
        static RULES: OnceLock<Rules> = OnceLock::new();
        RULES.get_or_init(|| Rules::from_yaml(BUILTIN_YAML).expect("built-in clickhouse_errors.yaml is valid"))
    }

    /// The class of a ClickHouse error code.
    pub fn class_of_code(&self, code: u32) -> Class {
        self.by_code.get(&code).map(|(c, _)| *c).unwrap_or(self.default)
    }

    /// The name the rules give a code (None when not listed).
    pub fn name_of_code(&self, code: u32) -> Option<&str> {
        self.by_code.get(&code).map(|(_, n)| n.as_str())
    }

    /// Classify an error of the `clickhouse` crate.
    pub fn classify(&self, e: &clickhouse::error::Error) -> Failure {
        use clickhouse::error::Error as E;
        let message = e.to_string();
        let (class, code) = match e {
            E::BadResponse(text) => match server_code(text) {
                Some(code) => (self.class_of_code(code), Some(code)),
                None => (self.client.bad_response, None),
            },
            E::Network(_) => (self.client.network, None),
            E::TimedOut => (self.client.timed_out, None),
            E::SchemaMismatch(_) => (self.client.schema_mismatch, None),
            E::Custom(_) | E::SequenceMustHaveLength | E::VariantDiscriminatorIsOutOfBound(_) | E::InvalidUtf8Encoding(_) => {
                (self.client.serialization, None)
            }
            // An I/O error may wrap a server exception met mid-stream.
            _ => match server_code(&message) {
                Some(code) => (self.class_of_code(code), Some(code)),
                None => (self.client.other, None),
            },
        };
        Failure { class, code, message }
    }
}

/// The `NNN` of the first `Code: NNN` in a ClickHouse error text.
pub fn server_code(text: &str) -> Option<u32> {
    let at = text.find("Code: ")? + "Code: ".len();
    let digits: String = text[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error as E;

    #[test]
    fn the_code_decides_and_unknown_codes_are_retried() {
        let r = Rules::builtin();
        let f = r.classify(&E::BadResponse(
            "Code: 469. DB::Exception: Constraint `no_poison` for table kev.events is violated at row 3. (VIOLATED_CONSTRAINT) (version 26.9.2.1)".into(),
        ));
        assert_eq!((f.class, f.code), (Class::Permanent, Some(469)));
        assert!(f.message.contains("no_poison"), "{}", f.message);
        let too_many_parts = r.classify(&E::BadResponse("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)".into()));
        assert_eq!((too_many_parts.class, too_many_parts.code), (Class::Retryable, Some(252)));
        assert_eq!(r.classify(&E::BadResponse("Code: 241".into())).class, Class::Retryable, "header-only answer");
        assert_eq!(r.classify(&E::BadResponse("Code: 16".into())).class, Class::Permanent, "unknown column");
        assert_eq!(r.classify(&E::BadResponse("Code: 4242. DB::Exception: new".into())).class, Class::Retryable);
        assert_eq!(r.classify(&E::BadResponse("502 Bad Gateway".into())).class, Class::Retryable);
        assert_eq!(r.classify(&E::TimedOut).class, Class::Retryable);
        assert_eq!(r.classify(&E::SchemaMismatch("column gone".into())).class, Class::Permanent);
        assert_eq!(r.classify(&E::Custom("bad value".into())).class, Class::Permanent);
        assert_eq!(r.name_of_code(252), Some("TOO_MANY_PARTS"));
    }

    #[test]
    fn the_named_retryable_and_permanent_families_are_where_the_issue_puts_them() {
        let r = Rules::builtin();
        // network, timeouts, too many parts, memory limits, server restarting/unavailable
        for code in [210, 209, 159, 252, 241, 236, 745, 999] {
            assert_eq!(r.class_of_code(code), Class::Retryable, "code {code}");
        }
        // parse/type errors, unknown column, too large, constraint
        for code in [6, 27, 33, 53, 70, 16, 131, 128, 469] {
            assert_eq!(r.class_of_code(code), Class::Permanent, "code {code}");
        }
    }

    #[test]
    fn a_code_listed_twice_is_refused() {
        let y = "default: retryable\nretryable: [{code: 1, name: A}]\npermanent: [{code: 1, name: A}]\n\
                 client: {network: retryable, timed_out: retryable, bad_response: retryable, schema_mismatch: permanent, serialization: permanent, other: retryable}\n";
        assert!(Rules::from_yaml(y).unwrap_err().contains("twice"));
    }

    #[test]
    fn codes_are_read_from_the_text() {
        assert_eq!(server_code("Code: 252. DB::Exception: x"), Some(252));
        assert_eq!(server_code("prefix Code: 33"), Some(33));
        assert_eq!(server_code("no code"), None);
    }
}

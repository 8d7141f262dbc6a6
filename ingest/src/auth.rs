//! Who may write what: bearer tokens from a file, each bound to the clusters and
//! namespaces it may write, with its own rate limit.
//!
//! The tokens file (YAML; mount it from a Kubernetes Secret):
//!
//! ```yaml
//! tokens:
//!   - name: deploy-bot          # names the token in logs and metrics (never the token)
//!     token: "…"                # at least 16 characters
//!     clusters: [prod-eu-1]     # "*" for any cluster
//!     namespaces: [payments]    # "*" for any namespace ("" is cluster-scoped objects)
//!     events_per_sec: 50        # default 100
//!     burst: 500                # default 1000 (a request's events must fit in it)
//! ```
//!
//! A presented token is compared with every configured token in constant time
//! (`subtle`), all of them, so neither the time of a refusal nor which token
//! was closest says anything about the secrets. Tokens never reach a log or
//! `Debug` output ([`runtime::secret::Secret`]).

use runtime::kafka::FieldError;
use runtime::secret::Secret;
use serde::Deserialize;
use std::path::Path;
use subtle::ConstantTimeEq;

/// The file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenConfig>,
}

/// One token as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub token: Secret,
    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    /// Sustained events per second. Default 100.
    #[serde(default = "default_rate")]
    pub events_per_sec: f64,
    /// Events that may arrive at once after a quiet period; also the largest
    /// request this token may send. Default 1000.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rate() -> f64 {
    100.0
}
fn default_burst() -> u32 {
    1000
}

/// What a token may write.
#[derive(Debug, Clone)]
pub struct Scope {
    clusters: Vec<String>,
    namespaces: Vec<String>,
}

impl Scope {
    fn allows(list: &[String], value: &str) -> bool {
        list.iter().any(|v| v == "*" || v == value)
    }

    pub fn allows_cluster(&self, cluster: &str) -> bool {
        Self::allows(&self.clusters, cluster)
    }

    pub fn allows_namespace(&self, namespace: &str) -> bool {
        Self::allows(&self.namespaces, namespace)
    }

    /// The one cluster this token may write, when it names exactly one: requests
    /// may then leave the cluster out.
    pub fn only_cluster(&self) -> Option<&str> {
        match self.clusters.as_slice() {
            [one] if one != "*" => Some(one),
            _ => None,
        }
    }
}

/// An authenticated caller: the index of its token (for the rate limiter) and
/// what it may write.
#[derive(Debug, Clone)]
pub struct Caller {
    pub index: usize,
    pub name: String,
    pub scope: Scope,
}

/// The configured tokens.
#[derive(Debug)]
pub struct Tokens {
    tokens: Vec<TokenConfig>,
}

impl Tokens {
    /// Read and check the tokens file; errors name the field (`tokens[2].token`),
    /// never a token.
    pub fn load(path: &Path) -> Result<Tokens, FieldError> {
        let text = std::fs::read_to_string(path).map_err(|e| FieldError::new("tokens_file", format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Tokens, FieldError> {
        let file: TokensFile = serde_norway::from_str(text).map_err(|e| FieldError::new("tokens_file", scrub(&e.to_string())))?;
        let mut names = std::collections::HashSet::new();
        for (i, t) in file.tokens.iter().enumerate() {
            let f = |field: &str| format!("tokens[{i}].{field}");
            if t.name.trim().is_empty() || !names.insert(t.name.clone()) {
                return Err(FieldError::new(f("name"), "must be non-empty and unique"));
            }
            if t.token.expose().len() < 16 || t.token.expose().chars().any(char::is_whitespace) {
                return Err(FieldError::new(f("token"), "must be at least 16 characters, no whitespace"));
            }
            if t.clusters.is_empty() {
                return Err(FieldError::new(f("clusters"), "list the clusters it may write (\"*\" for any)"));
            }
            if t.namespaces.is_empty() {
                return Err(FieldError::new(f("namespaces"), "list the namespaces it may write (\"*\" for any)"));
            }
            if !(t.events_per_sec.is_finite() && t.events_per_sec > 0.0) {
                return Err(FieldError::new(f("events_per_sec"), "must be above 0"));
            }
            if t.burst == 0 {
                return Err(FieldError::new(f("burst"), "must be at least 1"));
            }
        }
        if file.tokens.iter().enumerate().any(|(i, a)| file.tokens[..i].iter().any(|b| b.token == a.token)) {
            return Err(FieldError::new("tokens", "two entries share a token"));
        }
        Ok(Tokens { tokens: file.tokens })
    }

    pub fn configs(&self) -> &[TokenConfig] {
        &self.tokens
    }

    /// The caller presenting `token`: every configured token is compared, each in
    /// constant time, whatever matched first.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let mut found = None;
        for (i, t) in self.tokens.iter().enumerate() {
            let eq: bool = t.token.expose().as_bytes().ct_eq(token.as_bytes()).into();
            if eq && found.is_none() {
                found = Some(i);
            }
        }
        found.map(|i| {
            let t = &self.tokens[i];
            Caller { index: i, name: t.name.clone(), scope: Scope { clusters: t.clusters.clone(), namespaces: t.namespaces.clone() } }
        })
    }
}

/// A YAML error quotes the offending text, which may be a token: keep only the
/// location and the kind of error.
fn scrub(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => format!("invalid tokens file{}", &message[at..]),
        None => "invalid tokens file".into(),
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&http::HeaderValue>) -> Option<&str> {
    let v = header?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "tokens:\n- {name: ci, token: aaaaaaaaaaaaaaaa-ci, clusters: [prod], namespaces: [pay, '']}\n- {name: ops, token: bbbbbbbbbbbbbbbb-ops, clusters: ['*'], namespaces: ['*'], events_per_sec: 5, burst: 10}\n";

    #[test]
    fn authenticates_and_scopes() {
        let t = Tokens::parse(FILE).unwrap();
        assert!(t.authenticate("nope").is_none());
        assert!(t.authenticate("aaaaaaaaaaaaaaaa-c").is_none(), "a prefix is not the token");
        let ci = t.authenticate("aaaaaaaaaaaaaaaa-ci").unwrap();
        assert_eq!((ci.index, ci.name.as_str(), ci.scope.only_cluster()), (0, "ci", Some("prod")));
        assert!(ci.scope.allows_cluster("prod") && !ci.scope.allows_cluster("dev"));
        assert!(ci.scope.allows_namespace("pay") && ci.scope.allows_namespace("") && !ci.scope.allows_namespace("kube-system"));
        let ops = t.authenticate("bbbbbbbbbbbbbbbb-ops").unwrap();
        assert!(ops.scope.allows_cluster("any") && ops.scope.only_cluster().is_none());
        assert_eq!(t.configs()[1].burst, 10);
        assert!(!format!("{t:?}").contains("aaaaaaaa"), "tokens never printed");
    }

    #[test]
    fn bad_files_name_the_field_not_the_token() {
        let e = Tokens::parse("tokens:\n- {name: a, token: short, clusters: [x], namespaces: [y]}\n").unwrap_err();
        assert_eq!(e.field, "tokens[0].token");
        let e = Tokens::parse("tokens:\n- {name: a, token: cccccccccccccccccc, clusters: [], namespaces: [y]}\n").unwrap_err();
        assert_eq!(e.field, "tokens[0].clusters");
        let e = Tokens::parse("tokens:\n- {name: a, tokne: dddddddddddddddddd-secret, clusters: [x], namespaces: [y]}\n").unwrap_err();
        assert!(!e.to_string().contains("dddd"), "{e}");
        let dup = "tokens:\n- {name: a, token: eeeeeeeeeeeeeeeeee, clusters: [x], namespaces: [y]}\n- {name: b, token: eeeeeeeeeeeeeeeeee, clusters: [x], namespaces: [y]}\n";
        assert_eq!(Tokens::parse(dup).unwrap_err().field, "tokens");
    }

    #[test]
    fn bearer_header() {
        let h = |s: &str| http::HeaderValue::from_str(s).unwrap();
        assert_eq!(bearer(Some(&h("Bearer abc"))), Some("abc"));
        assert_eq!(bearer(Some(&h("bearer  abc "))), Some("abc"));
        assert_eq!(bearer(Some(&h("Basic abc"))), None);
        assert_eq!(bearer(Some(&h("Bearer "))), None);
        assert_eq!(bearer(None), None);
    }
}

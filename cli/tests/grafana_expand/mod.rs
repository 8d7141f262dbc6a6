//! Grafana's and the ClickHouse data source plugin's expansion of a panel's SQL, as
//! `dashboards.rs` runs it: `$__conditionalAll(cond, $var)` (the plugin's front end,
//! `CHDatasource.applyConditionalAll`: `1=1` when the variable is All or empty), then
//! Grafana's variable interpolation (`${var:singlequote}`, `$var` with the plugin's list
//! format), then the back end's macros (grafana-plugin-sdk-go `sqlutil.Interpolate` with
//! the plugin's ClickHouse set: `$__timeFilter`, `$__timeInterval`, `$__fromTime`,
//! `$__toTime`, `$__interval_s`). Only the macros the dashboards use are implemented;
//! anything left unexpanded fails the test.

use std::collections::HashMap;

/// A variable's selection.
#[derive(Debug, Clone)]
pub enum Sel {
    /// "All" of a variable with includeAll: `$__all`, or every option when interpolated.
    All(Vec<String>),
    /// Chosen values of a multi-value variable.
    Multi(Vec<String>),
    /// A single-value variable, textbox or constant.
    One(String),
}

impl Sel {
    /// `current.value.toString()` in the plugin's `applyConditionalAll`.
    pub fn as_js_string(&self) -> String {
        match self {
            Sel::All(_) => "$__all".into(),
            Sel::Multi(v) => v.join(","),
            Sel::One(v) => v.clone(),
        }
    }
    pub fn values(&self) -> Vec<String> {
        match self {
            Sel::All(v) | Sel::Multi(v) => v.clone(),
            Sel::One(v) => vec![v.clone()],
        }
    }
}

/// The plugin's `getMacroArgs`: split at top-level commas from the `(` at `start`.
fn macro_args(q: &str, start: usize) -> Vec<String> {
    let s = &q[start..];
    let (mut depth, mut last, mut args) = (0i32, 1usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 1 => {
                args.push(s[last..i].to_string());
                last = i + 1;
                continue;
            }
            _ => continue,
        }
        if depth == 0 {
            args.push(s[last..i].to_string());
            return args;
        }
    }
    vec![]
}

/// The plugin's `applyConditionalAll` (CHDatasource.ts): from the last occurrence backwards,
/// replace `$__conditionalAll(cond, $var)` by `1=1` when the variable is All or empty,
/// else by `cond`.
fn conditional_all(mut q: String, vars: &HashMap<String, Sel>) -> String {
    const MACRO: &str = "$__conditionalAll(";
    while let Some(i) = q.rfind(MACRO) {
        let params = macro_args(&q, i + MACRO.len() - 1);
        if params.len() != 2 {
            return q;
        }
        let p1 = params[1].trim();
        let name: String = p1
            .strip_prefix("${")
            .map(|r| r.split('}').next().unwrap_or("").to_string())
            .or_else(|| p1.strip_prefix('$').map(|r| r.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()))
            .unwrap_or_default();
        let mut phrase = params[0].clone();
        if let Some(sel) = vars.get(&name) {
            let v = sel.as_js_string();
            if v.is_empty() || v == "$__all" {
                phrase = "1=1".into();
            }
        }
        // JS String.replace treats `$&`, `` $` ``, `$'` and `$1` in the replacement specially.
        assert!(!["$&", "$`", "$'", "$$"].iter().any(|p| phrase.contains(p)), "unsupported replacement {phrase}");
        let whole = format!("{MACRO}{},{})", params[0], params[1]);
        q = q.replacen(&whole, &phrase, 1);
    }
    q
}

/// Grafana's `singlequote` format: each value quoted, `'` escaped with a backslash.
fn singlequote(vals: &[String]) -> String {
    vals.iter().map(|v| format!("'{}'", v.replace('\'', "\\'"))).collect::<Vec<_>>().join(",")
}

/// Grafana's interpolation (`$var`, `${var}`, `${var:fmt}`, `[[var]]`) of known variables;
/// without a format the plugin's own: a list becomes `'a','b'`, a single value stays raw.
fn interpolate(q: &str, vars: &HashMap<String, Sel>) -> String {
    let re = regex_lite(q);
    let mut out = String::new();
    let mut last = 0;
    for (start, end, name, fmt) in re {
        let Some(sel) = vars.get(&name) else { continue };
        out.push_str(&q[last..start]);
        let text = match (fmt.as_deref(), sel) {
            (Some("singlequote"), s) => singlequote(&s.values()),
            (Some(f), _) => panic!("format {f} not used by the dashboards"),
            (None, Sel::One(v)) => v.clone(),
            (None, s) => format!("'{}'", s.values().join("','")),
        };
        out.push_str(&text);
        last = end;
    }
    out.push_str(&q[last..]);
    out
}

/// Variable references in `q`: (start, end, name, format).
fn regex_lite(q: &str) -> Vec<(usize, usize, String, Option<String>)> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let b = q.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
            if let Some(close) = q[i..].find('}') {
                let inner = &q[i + 2..i + close];
                let (name, fmt) = match inner.split_once(':') {
                    Some((n, f)) => (n.to_string(), Some(f.to_string())),
                    None => (inner.to_string(), None),
                };
                found.push((i, i + close + 1, name, fmt));
                i += close + 1;
                continue;
            }
        } else if b[i] == b'$' {
            let n: String = q[i + 1..].chars().take_while(|c| word(*c)).collect();
            if !n.is_empty() {
                found.push((i, i + 1 + n.len(), n.clone(), None));
                i += 1 + n.len();
                continue;
            }
        }
        i += 1;
    }
    found
}

/// The query's time range and interval, as the back end gets them.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
}

/// The back end's macros (grafana-plugin-sdk-go `sqlutil.Interpolate` / macropro with the
/// plugin's ClickHouse macro set): longest name first, `\$__name\b`, balanced-bracket
/// arguments, every occurrence replaced.
fn backend_macros(mut q: String, f: Frame) -> String {
    let (from_s, to_s) = (f.from_ms.div_euclid(1000), f.to_ms.div_euclid(1000));
    let secs = (f.interval_ms / 1000).max(1);
    let mut names = ["timeFilter", "timeInterval", "fromTime", "toTime", "interval_s"];
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        let pat = format!("$__{name}");
        let mut search = 0;
        while let Some(off) = q[search..].find(&pat) {
            let start = search + off;
            let end = start + pat.len();
            if q[end..].chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                search = end;
                continue;
            }
            let (args, len) = sdk_args(&q[end..]);
            let full = q[start..end + len].to_string();
            let arg = |n: usize| -> &str {
                assert_eq!(args.len(), n, "{full}: expected {n} argument(s)");
                args.first().map(String::as_str).unwrap_or("")
            };
            let res = match name {
                "timeFilter" => format!("{c} >= toDateTime({from_s}) AND {c} <= toDateTime({to_s})", c = arg(1)),
                "timeInterval" => format!("toStartOfInterval(toDateTime({}), INTERVAL {secs} second)", arg(1)),
                "fromTime" => format!("toDateTime({from_s})"),
                "toTime" => format!("toDateTime({to_s})"),
                "interval_s" => secs.to_string(),
                _ => unreachable!(),
            };
            q = q.replace(&full, &res);
            search = 0;
        }
    }
    q
}

/// The SDK's `parseArgs`: a bracketed list at the start of `s`, arguments trimmed.
fn sdk_args(s: &str) -> (Vec<String>, usize) {
    if !s.starts_with('(') {
        return (vec![], 0);
    }
    let (mut depth, mut arg, mut args) = (0, String::new(), Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(arg.trim().to_string());
                    return (args, i + 1);
                }
            }
            ',' if depth == 1 => {
                args.push(std::mem::take(&mut arg).trim().to_string());
                continue;
            }
            _ => {}
        }
        arg.push(c);
    }
    panic!("macro arguments without a closing bracket: {s}");
}

pub fn expand(sql: &str, vars: &HashMap<String, Sel>, f: Frame) -> String {
    let q = backend_macros(interpolate(&conditional_all(sql.to_string(), vars), vars), f);
    assert!(!q.contains('$'), "unexpanded macro or variable left in:\n{q}");
    q
}

#[test]
fn expansion_matches_the_plugins_documented_behaviour() {
    // Cases from the plugin's own tests (CHDatasource.test.ts) and docs.
    let sql = "select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal);";
    let all = HashMap::from([("fieldVal".to_string(), Sel::All(vec!["a".into()]))]);
    assert_eq!(conditional_all(sql.into(), &all), "select stuff from table where 1=1;");
    let some = HashMap::from([("fieldVal".to_string(), Sel::Multi(vec!["val1".into(), "val2".into()]))]);
    assert_eq!(conditional_all(sql.into(), &some), "select stuff from table where fieldVal in ($fieldVal);");
    assert_eq!(interpolate("fieldVal in ($fieldVal)", &some), "fieldVal in ('val1','val2')");
    let q = "WHERE $__conditionalAll(database IN (${database:singlequote}), $database)";
    let one = HashMap::from([("database".to_string(), Sel::Multi(vec!["o'brien".into()]))]);
    assert_eq!(interpolate(&conditional_all(q.into(), &one), &one), r"WHERE database IN ('o\'brien')");
    let f = Frame { from_ms: 1_415_792_726_371, to_ms: 1_447_328_726_371, interval_ms: 30_000 };
    assert_eq!(
        backend_macros("$__timeFilter(time) AND $__fromTime < x".into(), f),
        "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726) AND toDateTime(1415792726) < x"
    );
    assert_eq!(backend_macros("$__timeInterval( t )".into(), f), "toStartOfInterval(toDateTime(t), INTERVAL 30 second)");
    assert_eq!(backend_macros("$__interval_s".into(), Frame { interval_ms: 500, ..f }), "1");
}


//! Fuzz target: the rule-file loaders users feed YAML to — classification,
//! metadata extractors, correlation rules and alert rules. A bad file must be a
//! `RuleError` naming the file and field, never a panic or a hang (regexes in rule
//! files are compiled with size limits).
#![no_main]

use libfuzzer_sys::fuzz_target;
use processor::alerts::AlertRules;
use processor::classify::Classifier;
use processor::correlate::Rules;
use processor::metadata::MetadataExtractor;

extern crate kevents_processor as processor;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Classifier::from_yaml_str("fuzz.yaml", text);
    let _ = MetadataExtractor::from_yaml_str("fuzz.yaml", text);
    let _ = Rules::from_yaml_str("fuzz.yaml", text);
    let _ = AlertRules::without_builtin("fuzz.yaml", text);
});

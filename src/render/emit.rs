//! Manifests as YAML that YAML 1.1 readers (kubectl's, go-yaml v2) read back the same: strings
//! such as `yes`, `on` or `y` are quoted, which yaml_serde's emitter (YAML 1.2) does not do.

use serde_json::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

/// `value` as a block-style YAML document without the leading `---`, ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    if let Err(error) = emitter.dump(&convert(value)) {
        return format!("# cannot show: {error:?}\n");
    }
    let mut text = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    text.push('\n');
    text
}

fn convert(value: &Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(convert).collect()),
        Value::Object(map) => {
            let mut hash = Hash::new();
            for (k, v) in map {
                hash.insert(Yaml::String(k.clone()), convert(v));
            }
            Yaml::Hash(hash)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let text = to_yaml(&json!({"a": "yes", "b": "on", "c": true, "d": "0", "e": 3}));
        assert_eq!(text, "a: \"yes\"\nb: \"on\"\nc: true\nd: \"0\"\ne: 3\n");
    }

    #[test]
    fn round_trips_through_the_reader() {
        let value = json!({"script": "#!/bin/sh\nexit 0\n", "list": [{"x": "y"}], "empty": {}});
        let back: Value = yaml_serde::from_str(&to_yaml(&value)).unwrap();
        assert_eq!(back, value);
    }
}

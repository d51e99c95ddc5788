//! Deserializes a JSON document into a typed object while noticing the keys the type would drop.
//!
//! k8s-openapi's types silently ignore unknown fields. This wrapper sits between the document and
//! the type's `Deserialize`: at every struct it compares the document's keys with the field names
//! the type declares, so a typo is reported with its path and the type's own field names as
//! did-you-mean candidates (no hand-kept table of fields).

use std::cell::RefCell;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::diagnostic::did_you_mean;

/// A key present in the document that the typed object has no field for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Path of the key itself, e.g. `spec.template.spec.containers[0].imagPullPolicy`.
    pub path: String,
    pub field: String,
    pub suggestion: Option<String>,
}

/// A document that does not fit the type: where, and serde's words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    pub message: String,
    /// Unknown keys met before the mismatch: often its cause (`templat` → missing `template`).
    pub unknown: Vec<UnknownField>,
}

#[derive(Default)]
struct State {
    unknown: RefCell<Vec<UnknownField>>,
    error_path: RefCell<Option<String>>,
}

/// `T` from `value`, plus every key `T` would have ignored.
pub fn from_value<'de, T: Deserialize<'de>>(
    value: &'de Value,
) -> Result<(T, Vec<UnknownField>), Mismatch> {
    let state = State::default();
    let tracked = Tracked {
        value,
        path: String::new(),
        state: &state,
    };
    match T::deserialize(tracked) {
        Ok(typed) => Ok((typed, state.unknown.into_inner())),
        Err(error) => Err(Mismatch {
            path: state.error_path.into_inner().unwrap_or_default(),
            message: error.to_string(),
            unknown: state.unknown.into_inner(),
        }),
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct Tracked<'de, 's> {
    value: &'de Value,
    path: String,
    state: &'s State,
}

impl Tracked<'_, '_> {
    /// Remembers the innermost place an error happened; outer frames keep it.
    fn fail(&self, error: serde_json::Error) -> serde_json::Error {
        let mut slot = self.state.error_path.borrow_mut();
        if slot.is_none() {
            *slot = Some(self.path.clone());
        }
        error
    }
}

impl<'de> Deserializer<'de> for Tracked<'de, '_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let result = match self.value {
            Value::Array(items) => visitor.visit_seq(Seq {
                items: items.iter().enumerate(),
                path: &self.path,
                state: self.state,
            }),
            Value::Object(map) => visitor.visit_map(Map {
                entries: map.iter(),
                pending: None,
                path: &self.path,
                state: self.state,
            }),
            scalar => scalar.deserialize_any(visitor),
        };
        result.map_err(|e| self.fail(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if let Value::Object(map) = self.value {
            let mut unknown = self.state.unknown.borrow_mut();
            for key in map.keys() {
                // A null is "not set" for every optional field; only a real value is a mistake.
                if !fields.contains(&key.as_str()) && !map[key].is_null() {
                    unknown.push(UnknownField {
                        path: child(&self.path, key),
                        field: key.clone(),
                        suggestion: did_you_mean(key, fields.iter().copied()).map(String::from),
                    });
                }
            }
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value
            .deserialize_enum(name, variants, visitor)
            .map_err(|e| self.fail(e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct Seq<'de, 'p, 's> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    path: &'p str,
    state: &'s State,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_, '_> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let Some((index, value)) = self.items.next() else {
            return Ok(None);
        };
        let tracked = Tracked {
            value,
            path: format!("{}[{index}]", self.path),
            state: self.state,
        };
        seed.deserialize(tracked).map(Some)
    }
}

struct Map<'de, 'p, 's> {
    entries: serde_json::map::Iter<'de>,
    pending: Option<(&'de String, &'de Value)>,
    path: &'p str,
    state: &'s State,
}

impl<'de> MapAccess<'de> for Map<'de, '_, '_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((key, value));
        let key = de::value::BorrowedStrDeserializer::<serde_json::Error>::new(key);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("value requested before its key"))?;
        seed.deserialize(Tracked {
            value,
            path: child(self.path, key),
            state: self.state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "labels": {"a.b/c": "x"}},
            "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [container]}}}
        })
    }

    #[test]
    fn finds_a_misspelt_field_with_its_path_and_the_right_spelling() {
        let doc = deployment(
            json!({"name": "api", "image": "x:1", "imagPullPolicy": "Always", "ports": [{"containerPort": "8080"}]}),
        );
        let doc = {
            let mut doc = doc;
            doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
                json!(8080);
            doc
        };
        let (_typed, unknown) = from_value::<Deployment>(&doc).unwrap();
        assert_eq!(
            unknown,
            vec![UnknownField {
                path: "spec.template.spec.containers[0].imagPullPolicy".into(),
                field: "imagPullPolicy".into(),
                suggestion: Some("imagePullPolicy".into()),
            }]
        );
    }

    #[test]
    fn free_form_maps_int_or_string_and_nulls_are_not_unknown() {
        let mut doc = deployment(
            json!({"name": "api", "image": "x:1", "resources": {"limits": {"cpu": 1}},
            "readinessProbe": {"httpGet": {"port": "http"}}, "env": null}),
        );
        doc["spec"]["strategy"] =
            json!({"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}});
        let (_typed, unknown) = from_value::<Deployment>(&doc).unwrap();
        assert_eq!(unknown, vec![]);
    }

    #[test]
    fn a_type_mismatch_names_its_path() {
        let doc = deployment(json!({"name": "api", "ports": [{"containerPort": "eighty"}]}));
        let error = from_value::<Deployment>(&doc).unwrap_err();
        assert_eq!(
            error.path,
            "spec.template.spec.containers[0].ports[0].containerPort"
        );
    }

    #[test]
    fn unknown_keys_met_before_a_mismatch_are_kept() {
        let mut doc = deployment(json!({"name": "api"}));
        let template = doc["spec"]
            .as_object_mut()
            .unwrap()
            .remove("template")
            .unwrap();
        doc["spec"]["templat"] = template;
        // k8s-openapi defaults the missing `template`, so only the unknown key tells.
        let (_typed, unknown) = from_value::<Deployment>(&doc).unwrap();
        assert_eq!(unknown[0].suggestion.as_deref(), Some("template"));
        doc["spec"]["replicas"] = json!("three");
        let error = from_value::<Deployment>(&doc).unwrap_err();
        assert_eq!(error.path, "spec.replicas");
        assert_eq!(error.unknown[0].field, "templat");
    }
}

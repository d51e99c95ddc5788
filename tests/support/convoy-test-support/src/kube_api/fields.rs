//! Field paths and field sets: the `FieldsV1` ownership records of server-side apply, and the
//! list-merge keys (containers by `name`, ports by `containerPort`+`protocol`, ...) shared with
//! strategic merge patch. There is no OpenAPI schema here: list keys come from a small table of
//! the fields Kubernetes marks as merge lists, which covers the kinds Convoy writes.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    Field(String),
    /// An item of an associative list, by its key fields as a JSON object with sorted keys.
    Key(String),
}

pub type Path = Vec<Elem>;

/// The key fields of a list, or `None` when the list is atomic (replaced as a whole).
pub fn list_keys(field: &str, items: &[Value]) -> Option<Vec<&'static str>> {
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    let all_have = |k: &str| items.iter().all(|i| i.get(k).is_some());
    match field {
        "volumeMounts" => Some(vec!["mountPath"]),
        "conditions" => Some(vec!["type"]),
        "ports" if all_have("containerPort") => Some(vec!["containerPort", "protocol"]),
        "ports" if all_have("port") => Some(vec!["port", "protocol"]),
        "tolerations" | "args" | "command" => None,
        _ if all_have("name") => Some(vec!["name"]),
        _ => None,
    }
}

/// Whether `path` is a field Kubernetes' schema marks atomic (`x-kubernetes-map-type: atomic`,
/// `structType=atomic`): owned, compared and replaced as one value by server-side apply.
/// `spec.selector` is one in every kind Convoy writes: a Service's selector map, and the
/// LabelSelector of Deployments, ReplicaSets and PodDisruptionBudgets.
pub fn is_atomic(path: &[Elem]) -> bool {
    matches!(path, [Elem::Field(a), Elem::Field(b)] if a == "spec" && b == "selector")
}

/// The key of one list item, with `protocol` defaulted to TCP as the server defaults it.
pub fn item_key<S: AsRef<str>>(item: &Value, keys: &[S]) -> String {
    let mut m = Map::new();
    for k in keys {
        let k = k.as_ref();
        let v = match item.get(k) {
            Some(v) => v.clone(),
            None if k == "protocol" => json!("TCP"),
            None => Value::Null,
        };
        m.insert(k.to_string(), v);
    }
    Value::Object(m).to_string()
}

/// A set of owned field paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet(pub BTreeSet<Path>);

impl FieldSet {
    /// Every field set in `value`: leaves, plus the items of associative lists.
    pub fn of(value: &Value) -> Self {
        let mut set = FieldSet::default();
        set.walk(value, &mut Vec::new());
        set
    }

    fn walk(&mut self, value: &Value, path: &mut Path) {
        match value {
            Value::Object(m) if !m.is_empty() && !is_atomic(path) => {
                for (k, child) in m {
                    path.push(Elem::Field(k.clone()));
                    self.walk_field(k, child, path);
                    path.pop();
                }
            }
            // The root itself is never a field.
            _ if path.is_empty() => {}
            _ => {
                self.0.insert(path.clone());
            }
        }
    }

    fn walk_field(&mut self, name: &str, value: &Value, path: &mut Path) {
        let Some((items, keys)) = value
            .as_array()
            .and_then(|items| list_keys(name, items).map(|k| (items, k)))
        else {
            return self.walk(value, path);
        };
        for item in items {
            path.push(Elem::Key(item_key(item, &keys)));
            self.0.insert(path.clone());
            for (k, child) in item.as_object().into_iter().flatten() {
                path.push(Elem::Field(k.clone()));
                self.walk_field(k, child, path);
                path.pop();
            }
            path.pop();
        }
    }

    /// A path with no descendants in the set: a value, not a container.
    pub fn is_leaf(&self, path: &Path) -> bool {
        !self
            .0
            .range(path.clone()..)
            .nth(1)
            .is_some_and(|next| next.starts_with(path))
    }

    pub fn from_v1(fields: &Value) -> Self {
        let mut set = FieldSet::default();
        set.read_v1(fields, &mut Vec::new());
        set
    }

    fn read_v1(&mut self, node: &Value, path: &mut Path) {
        for (k, child) in node.as_object().into_iter().flatten() {
            if k == "." {
                self.0.insert(path.clone());
                continue;
            }
            let elem = if let Some(f) = k.strip_prefix("f:") {
                Elem::Field(f.to_string())
            } else if let Some(key) = k.strip_prefix("k:") {
                Elem::Key(key.to_string())
            } else {
                continue;
            };
            path.push(elem);
            if child.as_object().is_some_and(|m| m.is_empty()) {
                self.0.insert(path.clone());
            } else {
                self.read_v1(child, path);
            }
            path.pop();
        }
    }

    pub fn to_v1(&self) -> Value {
        let mut root = json!({});
        for path in &self.0 {
            let mut node = &mut root;
            for elem in path {
                let name = match elem {
                    Elem::Field(f) => format!("f:{f}"),
                    Elem::Key(k) => format!("k:{k}"),
                };
                node = node
                    .as_object_mut()
                    .expect("field set nodes are objects")
                    .entry(name)
                    .or_insert_with(|| json!({}));
            }
        }
        for path in &self.0 {
            if !self.is_leaf(path) {
                let node = path.iter().fold(&mut root, |n, e| match e {
                    Elem::Field(f) => &mut n[format!("f:{f}")],
                    Elem::Key(k) => &mut n[format!("k:{k}")],
                });
                node["."] = json!({});
            }
        }
        root
    }
}

/// `.spec.template.spec.containers[name="web"].image`, as the real server prints paths.
pub fn path_string(path: &Path) -> String {
    let mut s = String::new();
    for elem in path {
        match elem {
            Elem::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Elem::Key(k) => {
                let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
        }
    }
    s
}

/// The value at `path`, if present.
pub fn get<'a>(value: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut v = value;
    for elem in path {
        v = match elem {
            Elem::Field(f) => v.get(f)?,
            Elem::Key(k) => find_item(v.as_array()?, k)?,
        };
    }
    Some(v)
}

fn find_item<'a>(items: &'a [Value], key: &str) -> Option<&'a Value> {
    let keys = key_fields(key);
    items.iter().find(|i| item_key(i, &keys) == key)
}

fn key_fields(key: &str) -> Vec<String> {
    let map: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
    map.keys().cloned().collect()
}

/// Removes the field or list item at `path`; true when something was removed.
pub fn remove(value: &mut Value, path: &[Elem]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let mut parent = value;
    for elem in parent_path {
        let next = match elem {
            Elem::Field(f) => parent.get_mut(f),
            Elem::Key(k) => {
                let keys = key_fields(k);
                parent
                    .as_array_mut()
                    .and_then(|items| items.iter_mut().find(|i| item_key(i, &keys) == *k))
            }
        };
        match next {
            Some(n) => parent = n,
            None => return false,
        }
    }
    match last {
        Elem::Field(f) => parent.as_object_mut().and_then(|m| m.remove(f)).is_some(),
        Elem::Key(k) => {
            let keys = key_fields(k);
            let Some(items) = parent.as_array_mut() else {
                return false;
            };
            let before = items.len();
            items.retain(|i| item_key(i, &keys) != *k);
            items.len() != before
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trip_marks_list_items() {
        let obj = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}
        ]}}}});
        let set = FieldSet::of(&obj);
        let v1 = set.to_v1();
        let item = &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(item["."], json!({}));
        assert_eq!(item["f:image"], json!({}));
        assert!(item["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object());
        assert_eq!(FieldSet::from_v1(&v1), set);
        let image = set
            .0
            .iter()
            .find(|p| path_string(p).ends_with("image"))
            .unwrap();
        assert_eq!(
            path_string(image),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
        assert_eq!(get(&obj, image), Some(&json!("nginx")));
    }
}

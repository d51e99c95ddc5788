//! The object store: every object as JSON, one increasing `resourceVersion` across all writes, the
//! bounded history of changes that watches replay, and the server's clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::watch;

pub use super::clock::Clock;
use super::discovery::{RESOURCES, ResourceDef};

/// How many changes a watch can resume across; older `resourceVersion`s get 410 Gone.
/// See the module's notes: far less than a real server's watch cache, far more than a test needs.
const HISTORY_LIMIT: usize = 50_000;

/// Group, plural, namespace ("" when cluster-scoped), name.
pub type ObjKey = (&'static str, &'static str, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change, as a watch replays it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub resource: &'static ResourceDef,
    pub kind: EventType,
    pub object: Value,
    /// The object before the change, so a filtered watch can turn "left the selection" into
    /// DELETED and "entered it" into ADDED, as the real server does.
    pub old: Option<Value>,
}

pub struct Store {
    objects: BTreeMap<ObjKey, Value>,
    /// Every stored object's key by its uid.
    by_uid: HashMap<String, ObjKey>,
    /// The keys of the objects whose owner references name a uid, by that uid (owner or not, it
    /// may be gone): the controllers find what an object owns, and garbage collection what a
    /// removal orphans, without looking at every object.
    dependents: HashMap<String, BTreeSet<ObjKey>>,
    /// Objects that may have lost every owner since the last garbage collection (some owner
    /// reference names a uid that is gone): the only ones a collection has to look at.
    maybe_orphaned: BTreeSet<ObjKey>,
    rv: u64,
    history: VecDeque<Change>,
    /// Every change with a version at or below this one has left the history.
    compacted: u64,
    uids: u64,
    changes: watch::Sender<u64>,
    /// The same per resource (in `RESOURCES` order): a watch wakes only for its own kind.
    resource_changes: Vec<watch::Sender<u64>>,
    /// Per resource, the latest version of its changes that have left the history.
    forgotten: Vec<u64>,
    pub clock: Clock,
}

pub fn key(res: &'static ResourceDef, namespace: &str, name: &str) -> ObjKey {
    let namespace = if res.namespaced { namespace } else { "" };
    (
        res.group,
        res.plural,
        namespace.to_string(),
        name.to_string(),
    )
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

impl Store {
    pub fn new() -> Self {
        let (changes, _) = watch::channel(0);
        let mut store = Store {
            objects: BTreeMap::new(),
            by_uid: HashMap::new(),
            dependents: HashMap::new(),
            maybe_orphaned: BTreeSet::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted: 0,
            uids: 0,
            changes,
            resource_changes: RESOURCES.iter().map(|_| watch::channel(0).0).collect(),
            forgotten: vec![0; RESOURCES.len()],
            clock: Clock::new(),
        };
        let namespaces = super::discovery::find("", "v1", "namespaces").expect("namespaces");
        for name in ["default", "kube-system", "kube-public"] {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            store.create(namespaces, ns, false);
        }
        store
    }

    /// Wakes on every committed change; the value is the latest `resourceVersion`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Wakes on every committed change to objects of `res`.
    pub fn subscribe_to(&self, res: &'static ResourceDef) -> watch::Receiver<u64> {
        match index_of(res) {
            Some(i) => self.resource_changes[i].subscribe(),
            None => self.subscribe(),
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, res: &'static ResourceDef, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(res, namespace, name))
    }

    /// Objects of one resource, in one namespace or all, in name order.
    pub fn list(&self, res: &'static ResourceDef, namespace: Option<&str>) -> Vec<Value> {
        self.list_where(res, namespace, |_| true)
    }

    /// The objects of one resource (in one namespace) that `keep` accepts, copied only once
    /// accepted: the controllers look for a few objects among many on every pass.
    pub fn list_where(
        &self,
        res: &'static ResourceDef,
        namespace: Option<&str>,
        keep: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.matching(res, namespace, keep).cloned().collect()
    }

    /// The objects of one resource (in one namespace) that `keep` accepts, in name order,
    /// uncopied: a page of a list copies only its own objects, as a real server's costs a page
    /// and not the whole collection.
    pub fn matching<'s>(
        &'s self,
        res: &'static ResourceDef,
        namespace: Option<&'s str>,
        keep: impl Fn(&Value) -> bool + 's,
    ) -> impl Iterator<Item = &'s Value> + 's {
        let namespace = namespace.filter(|_| res.namespaced);
        let start: ObjKey = (
            res.group,
            res.plural,
            namespace.unwrap_or_default().to_string(),
            String::new(),
        );
        self.objects
            .range(start..)
            .take_while(move |((g, p, ns, _), _)| {
                *g == res.group && *p == res.plural && namespace.is_none_or(|n| n == ns)
            })
            .map(|(_, obj)| obj)
            .filter(move |obj| keep(obj))
    }

    /// The objects of one resource in one namespace whose owner references name `uid`, in name
    /// order: `list_where(res, Some(namespace), |o| owned_by(o, uid))` from the owner index.
    pub fn owned(&self, res: &'static ResourceDef, namespace: &str, uid: &str) -> Vec<Value> {
        let namespace = if res.namespaced { namespace } else { "" };
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter(|(g, p, ns, _)| *g == res.group && *p == res.plural && ns == namespace)
            .filter_map(|k| self.objects.get(k))
            .filter(|o| owned_by(o, uid))
            .cloned()
            .collect()
    }

    /// The key of the stored object with this uid.
    pub fn key_of(&self, uid: &str) -> Option<&ObjKey> {
        self.by_uid.get(uid)
    }

    pub fn namespace_exists(&self, name: &str) -> bool {
        self.objects
            .contains_key(&("", "namespaces", String::new(), name.to_string()))
    }

    /// A namespace being deleted: it waits for objects with finalizers, and refuses new ones.
    pub fn namespace_terminating(&self, name: &str) -> bool {
        self.get(namespaces(), "", name)
            .is_some_and(|ns| !ns["metadata"]["deletionTimestamp"].is_null())
    }

    /// Marks an object with finalizers as being deleted (`deletionTimestamp`, a new generation,
    /// as the real server does): it stays until its finalizers are removed.
    pub fn mark_deleting(&mut self, res: &'static ResourceDef, old: &Value) -> Value {
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = json!(self.clock.stamp());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if res.generation {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        if std::ptr::eq(res, namespaces()) {
            new["status"]["phase"] = json!("Terminating");
        }
        self.commit(res, new, Some(old.clone()))
    }

    /// Every change after `rv`, oldest first, or `Err(oldest)` when some have been forgotten.
    pub fn history_since(&self, rv: u64) -> Result<impl Iterator<Item = &Change>, u64> {
        if rv < self.compacted {
            return Err(self.compacted + 1);
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Ok(self.history.range(start..))
    }

    /// The changes to `res` after `rv`, oldest first, for a watch that has seen every change
    /// to `res` up to `rv`; `Err(oldest)` only when one after `rv` has been forgotten.
    pub fn resource_changes_since(
        &self,
        rv: u64,
        res: &'static ResourceDef,
    ) -> Result<impl Iterator<Item = &Change>, u64> {
        let lost = index_of(res).map_or(self.compacted, |i| self.forgotten[i]);
        if rv < lost {
            return Err(self.compacted + 1);
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Ok(self
            .history
            .range(start..)
            .filter(move |c| std::ptr::eq(c.resource, res)))
    }

    /// Forgets the whole history: any watch resuming from an earlier version gets 410 Gone.
    pub fn compact(&mut self) {
        while let Some(c) = self.history.pop_front() {
            self.forget(&c);
        }
        self.compacted = self.rv;
    }

    fn forget(&mut self, change: &Change) {
        self.compacted = change.rv;
        if let Some(i) = index_of(change.resource) {
            self.forgotten[i] = change.rv;
        }
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!(
            "6f1c2a3e-{:04x}-4d5e-8f90-{:012x}",
            self.rv % 0xffff,
            self.uids
        )
    }

    /// The object as a create would store it: uid, creation time, generation. Stores nothing.
    pub fn prepare_create(&mut self, res: &'static ResourceDef, mut obj: Value) -> Value {
        let uid = self.next_uid();
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(self.clock.stamp());
        if let Some(m) = meta.as_object_mut() {
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("selfLink");
            if res.generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        obj
    }

    /// Stores a new object (or returns the prepared one on a dry run).
    pub fn create(&mut self, res: &'static ResourceDef, obj: Value, dry_run: bool) -> Value {
        let obj = self.prepare_create(res, obj);
        if dry_run {
            return obj;
        }
        self.commit(res, obj, None)
    }

    /// The object as an update of `old` would store it: identity and creation time kept,
    /// generation bumped when the spec changed.
    pub fn prepare_update(res: &'static ResourceDef, old: &Value, mut new: Value) -> Value {
        for field in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
            "deletionTimestamp",
        ] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if res.generation && old.get("spec") != new.get("spec") {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        new["apiVersion"] = json!(res.api_version());
        new["kind"] = json!(res.kind);
        new
    }

    /// Replaces a stored object; a write that changes nothing is a no-op with no new version, as
    /// on the real server.
    pub fn update(
        &mut self,
        res: &'static ResourceDef,
        old: &Value,
        new: Value,
        dry_run: bool,
    ) -> Value {
        let new = Self::prepare_update(res, old, new);
        if dry_run || unchanged(old, &new) {
            return if dry_run { new } else { old.clone() };
        }
        let stored = self.commit(res, new, Some(old.clone()));
        if !stored["metadata"]["deletionTimestamp"].is_null() && !has_finalizers(&stored) {
            // The last finalizer is gone: the deletion completes.
            let (namespace, name) = (meta_str(&stored, "namespace"), meta_str(&stored, "name"));
            let (namespace, name) = (namespace.to_string(), name.to_string());
            self.delete(res, &namespace, &name);
            self.finish_namespace(&namespace);
        }
        stored
    }

    fn commit(&mut self, res: &'static ResourceDef, mut obj: Value, old: Option<Value>) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let k = key(res, meta_str(&obj, "namespace"), meta_str(&obj, "name"));
        let previous = self.objects.insert(k.clone(), obj.clone());
        self.reindex(&k, previous.as_ref(), Some(&obj));
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(res, kind, obj.clone(), old);
        obj
    }

    fn record(
        &mut self,
        resource: &'static ResourceDef,
        kind: EventType,
        object: Value,
        old: Option<Value>,
    ) {
        self.history.push_back(Change {
            rv: self.rv,
            resource,
            kind,
            object,
            old,
        });
        while self.history.len() > HISTORY_LIMIT {
            if let Some(c) = self.history.pop_front() {
                self.forget(&c);
            }
        }
        self.changes.send_replace(self.rv);
        if let Some(i) = index_of(resource) {
            self.resource_changes[i].send_replace(self.rv);
        }
    }

    /// Removes an object, then everything whose owners are all gone (background garbage
    /// collection). Returns the removed object with its deletion version.
    pub fn delete(
        &mut self,
        res: &'static ResourceDef,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        if std::ptr::eq(res, namespaces()) {
            return self.delete_namespace(name);
        }
        let removed = self.remove(res, namespace, name)?;
        self.collect_garbage();
        Some(removed)
    }

    /// Deletes a namespace's objects; those with finalizers stay (being deleted), and so does
    /// the namespace — `Terminating` — until the last of them is gone.
    fn delete_namespace(&mut self, name: &str) -> Option<Value> {
        let namespace = self.get(namespaces(), "", name)?.clone();
        let doomed: Vec<ObjKey> = self
            .objects
            .keys()
            .filter(|k| k.2 == name)
            .cloned()
            .collect();
        for (g, p, ns, n) in doomed {
            let Some(r) = RESOURCES.iter().find(|r| r.group == g && r.plural == p) else {
                continue;
            };
            match self.get(r, &ns, &n).cloned() {
                Some(obj) if has_finalizers(&obj) => {
                    if obj["metadata"]["deletionTimestamp"].is_null() {
                        self.mark_deleting(r, &obj);
                    }
                }
                _ => {
                    self.remove(r, &ns, &n);
                }
            }
        }
        self.collect_garbage();
        if self.objects.keys().any(|k| k.2 == name) {
            return Some(self.mark_deleting(namespaces(), &namespace));
        }
        self.remove(namespaces(), "", name)
    }

    /// Removes a Terminating namespace once nothing is left in it.
    fn finish_namespace(&mut self, name: &str) {
        if self.namespace_terminating(name) && !self.objects.keys().any(|k| k.2 == name) {
            self.remove(namespaces(), "", name);
        }
    }

    fn remove(&mut self, res: &'static ResourceDef, namespace: &str, name: &str) -> Option<Value> {
        let k = key(res, namespace, name);
        let mut obj = self.objects.remove(&k)?;
        self.reindex(&k, Some(&obj), None);
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(res, EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    /// Keeps the uid and owner indexes up to date as the object at `k` goes from `old` to `new`.
    fn reindex(&mut self, k: &ObjKey, old: Option<&Value>, new: Option<&Value>) {
        let uid = |o: Option<&Value>| o.map(|o| meta_str(o, "uid").to_string());
        let (old_uid, new_uid) = (uid(old), uid(new));
        if old_uid != new_uid {
            if let Some(u) = &old_uid
                && self.by_uid.get(u) == Some(k)
            {
                self.by_uid.remove(u);
                // Whatever it owned may be orphaned now.
                if let Some(deps) = self.dependents.get(u) {
                    self.maybe_orphaned.extend(deps.iter().cloned());
                }
            }
            if let Some(u) = new_uid {
                self.by_uid.insert(u, k.clone());
            }
        }
        let (old_owners, new_owners) = (owner_uids(old), owner_uids(new));
        for u in old_owners.difference(&new_owners) {
            if let Some(deps) = self.dependents.get_mut(u) {
                deps.remove(k);
                if deps.is_empty() {
                    self.dependents.remove(u);
                }
            }
        }
        for u in new_owners.difference(&old_owners) {
            self.dependents
                .entry(u.clone())
                .or_default()
                .insert(k.clone());
        }
        if new.is_some() && new_owners.iter().any(|u| !self.by_uid.contains_key(u)) {
            self.maybe_orphaned.insert(k.clone());
        }
    }

    /// Whether every one of a non-empty list of owners is gone.
    fn orphaned(&self, obj: &Value) -> bool {
        let owners = obj["metadata"]["ownerReferences"].as_array();
        owners.is_some_and(|owners| {
            !owners.is_empty()
                && owners
                    .iter()
                    .all(|r| !self.by_uid.contains_key(r["uid"].as_str().unwrap_or("")))
        })
    }

    /// Deletes objects whose every owner reference points at an object that no longer exists,
    /// round after round (in key order within a round) until none is left. Only objects that
    /// may have lost their owners since the last collection can be such.
    pub fn collect_garbage(&mut self) {
        loop {
            let candidates = std::mem::take(&mut self.maybe_orphaned);
            let orphans: Vec<ObjKey> = candidates
                .into_iter()
                .filter(|k| self.objects.get(k).is_some_and(|o| self.orphaned(o)))
                .collect();
            if orphans.is_empty() {
                return;
            }
            for (g, p, ns, n) in orphans {
                if let Some(r) = RESOURCES.iter().find(|r| r.group == g && r.plural == p) {
                    self.remove(r, &ns, &n);
                }
            }
        }
    }

    /// Drops owner references to `uid` from every object (the `Orphan` propagation policy).
    pub fn orphan_dependents(&mut self, uid: &str) {
        let dependents: Vec<(ObjKey, Value)> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| Some((k.clone(), self.objects.get(k)?.clone())))
            .filter(|(_, o)| owned_by(o, uid))
            .collect();
        for ((g, p, _, _), old) in dependents {
            let Some(res) = RESOURCES.iter().find(|r| r.group == g && r.plural == p) else {
                continue;
            };
            let mut new = old.clone();
            if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != uid);
            }
            self.update(res, &old, new, false);
        }
    }
}

/// The position of a served resource in `RESOURCES`.
fn index_of(res: &'static ResourceDef) -> Option<usize> {
    RESOURCES.iter().position(|r| std::ptr::eq(r, res))
}

/// Whether something still has to finish before the object can go.
pub fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

/// The uids an object's owner references name.
fn owner_uids(obj: Option<&Value>) -> BTreeSet<String> {
    obj.and_then(|o| o["metadata"]["ownerReferences"].as_array())
        .into_iter()
        .flatten()
        .map(|r| r["uid"].as_str().unwrap_or("").to_string())
        .collect()
}

pub fn owned_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

fn namespaces() -> &'static ResourceDef {
    super::discovery::find("", "v1", "namespaces").expect("namespaces are served")
}

/// Equal apart from the version and field-ownership bookkeeping.
fn unchanged(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
                for e in entries {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        v
    };
    strip(old) == strip(new)
}

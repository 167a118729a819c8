//! The object store: every object of every kind, one global resourceVersion, and the event log
//! that feeds watches.
//!
//! - Objects live in memory as their serialized JSON ([`StoredObject`]), so reads and watch
//!   fan-out copy bytes instead of re-serializing, and memory stays close to the size of the
//!   JSON itself.
//! - Every write goes through [`Store::write`]: a closure that reads and stages changes in a
//!   [`Txn`]. On success the changes get consecutive resourceVersions, are appended to the
//!   SQLite log in one transaction (when persistent), applied to memory and published to
//!   watchers, all under one write lock, so watchers see events in resourceVersion order. On
//!   error nothing is applied: no write is ever half-done.
//! - A bounded history of recent events lets watches resume from a resourceVersion; older ones
//!   get the `410 Expired` answer and re-list.
//!
//! Layering: the bottom room of the control plane; it imports nothing from the crate.

mod sqlite;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::Path,
    sync::{Arc, Mutex, RwLock},
};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

pub use sqlite::Durability;

/// A kind of object, by API group and plural resource name (`apps`, `replicasets`). Versions
/// share storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl ResourceKey {
    /// A key for `group` and `resource`.
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

/// An object's place within its kind: namespace (empty when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Namespace, empty for cluster-scoped kinds.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A key for `namespace` (may be empty) and `name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One stored version of an object.
#[derive(Debug)]
pub struct StoredObject {
    /// The resourceVersion this version was written at.
    pub rv: u64,
    /// Where it lives.
    pub key: ObjectKey,
    /// Its labels, for selector matching without parsing the JSON.
    pub labels: BTreeMap<String, String>,
    /// The object as JSON, `metadata.resourceVersion` included.
    pub json: Bytes,
}

impl StoredObject {
    fn new(rv: u64, key: ObjectKey, mut value: Value) -> Self {
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let labels = value["metadata"]["labels"]
            .as_object()
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Self {
            rv,
            key,
            labels,
            json,
        }
    }

    /// A stored version from its JSON as written (which already carries its resourceVersion),
    /// reading only the labels.
    pub(crate) fn from_json(
        rv: u64,
        key: ObjectKey,
        json: Bytes,
    ) -> Result<Self, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Labels {
            #[serde(default)]
            metadata: Meta,
        }
        #[derive(serde::Deserialize, Default)]
        struct Meta {
            #[serde(default)]
            labels: Option<BTreeMap<String, String>>,
        }
        let parsed: Labels = serde_json::from_slice(&json)?;
        Ok(Self {
            rv,
            key,
            labels: parsed.metadata.labels.unwrap_or_default(),
            json,
        })
    }

    /// The object parsed into a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, as watchers see it.
#[derive(Debug)]
pub struct WatchEvent {
    /// Which kind.
    pub resource: ResourceKey,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for deletions, its last state at the deletion's version).
    pub object: Arc<StoredObject>,
    /// The version before the change, when known (for selector transitions).
    pub prev: Option<Arc<StoredObject>>,
}

impl WatchEvent {
    /// The resourceVersion of the change.
    pub fn rv(&self) -> u64 {
        self.object.rv
    }
}

/// Failures of the store itself (not of the caller's logic).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite log could not be opened, read or written.
    #[error("object store database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A stored row is not valid JSON.
    #[error("object store row {rev} is corrupt: {source}")]
    Corrupt {
        /// The row.
        rev: u64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// A watch start point that is older than the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The oldest resourceVersion a watch may start from.
    pub oldest: u64,
}

/// How a store keeps its data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Recent events kept for watches to resume from.
    pub history: usize,
    /// Capacity of the live event channel; a watcher further behind is cut off and re-lists.
    pub channel: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            history: 50_000,
            channel: 16_384,
        }
    }
}

type Objects = HashMap<ResourceKey, BTreeMap<ObjectKey, Arc<StoredObject>>>;

struct State {
    rv: u64,
    objects: Objects,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with a resourceVersion above this is in `history`.
    history_floor: u64,
    /// The resourceVersion of each kind's last change since this process started.
    changed: HashMap<ResourceKey, u64>,
}

/// The object store. Cheap to share behind an `Arc`.
pub struct Store {
    state: RwLock<State>,
    db: Option<Mutex<sqlite::Log>>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    config: StoreConfig,
}

impl Store {
    /// A store kept only in memory.
    pub fn in_memory(config: StoreConfig) -> Self {
        Self::from_parts(None, Vec::new(), Vec::new(), (0, 0), config)
    }

    /// A store persisted in the SQLite file at `path` (created when missing). Every object and
    /// the resourceVersion counter survive a restart, and recent history is reloaded so
    /// watches can resume across it.
    ///
    /// # Errors
    /// When the database cannot be opened or holds corrupt rows.
    pub fn open(
        path: &Path,
        durability: Durability,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let (log, loaded) = sqlite::Log::open(path, durability, config.history)?;
        Ok(Self::from_parts(
            Some(log),
            loaded.objects,
            loaded.history,
            (loaded.rv, loaded.history_floor),
            config,
        ))
    }

    fn from_parts(
        db: Option<sqlite::Log>,
        objects: Vec<(ResourceKey, Arc<StoredObject>)>,
        history: Vec<Arc<WatchEvent>>,
        (rv, history_floor): (u64, u64),
        config: StoreConfig,
    ) -> Self {
        let mut map: Objects = HashMap::new();
        for (resource, object) in objects {
            map.entry(resource)
                .or_default()
                .insert(object.key.clone(), object);
        }
        let (events, _) = broadcast::channel(config.channel.max(1));
        Self {
            state: RwLock::new(State {
                rv,
                objects: map,
                history: history.into(),
                history_floor,
                changed: HashMap::new(),
            }),
            db: db.map(Mutex::new),
            events,
            config,
        }
    }

    /// The current resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.read_state().rv
    }

    /// The resourceVersion of the last change to any of `resources` since this process
    /// started (0 when none changed): what a cache of those kinds compares to stay current.
    pub fn changed_at(&self, resources: &[ResourceKey]) -> u64 {
        let state = self.read_state();
        resources
            .iter()
            .filter_map(|r| state.changed.get(r))
            .max()
            .copied()
            .unwrap_or(0)
    }

    /// One object.
    pub fn get(&self, resource: &ResourceKey, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.read_state().objects.get(resource)?.get(key).cloned()
    }

    /// The objects of a kind, in one namespace or all (`None`), sorted by namespace and name,
    /// with the resourceVersion they were read at.
    pub fn list(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
    ) -> (Vec<Arc<StoredObject>>, u64) {
        let state = self.read_state();
        (list_in(&state.objects, resource, namespace), state.rv)
    }

    /// Kinds that have at least one object.
    pub fn resources(&self) -> Vec<ResourceKey> {
        let state = self.read_state();
        state
            .objects
            .iter()
            .filter(|(_, objects)| !objects.is_empty())
            .map(|(resource, _)| resource.clone())
            .collect()
    }

    /// Starts a watch: the events after `since` still in history (or, with `None`, nothing)
    /// plus a receiver for everything after, with no gap between the two.
    ///
    /// # Errors
    /// [`Expired`] when `since` is older than the retained history.
    pub fn subscribe(&self, since: Option<u64>) -> Result<Subscription, Expired> {
        let state = self.read_state();
        let receiver = self.events.subscribe();
        let backlog = match since {
            None => Vec::new(),
            Some(since) if since < state.history_floor => {
                return Err(Expired {
                    oldest: state.history_floor,
                });
            }
            Some(since) => state
                .history
                .iter()
                .filter(|e| e.rv() > since)
                .cloned()
                .collect(),
        };
        Ok(Subscription {
            backlog,
            receiver,
            rv: state.rv,
        })
    }

    /// Like [`Store::subscribe`] from now, returning the current objects of a kind as well,
    /// read at the same instant.
    pub fn subscribe_with_snapshot(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
    ) -> (Vec<Arc<StoredObject>>, Subscription) {
        let state = self.read_state();
        let receiver = self.events.subscribe();
        let objects = list_in(&state.objects, resource, namespace);
        let subscription = Subscription {
            backlog: Vec::new(),
            receiver,
            rv: state.rv,
        };
        (objects, subscription)
    }

    /// Every object of every kind and a subscription to what happens next, read at one instant.
    pub fn snapshot(&self) -> (Vec<(ResourceKey, Arc<StoredObject>)>, Subscription) {
        let state = self.read_state();
        let receiver = self.events.subscribe();
        let objects = state
            .objects
            .iter()
            .flat_map(|(resource, objects)| {
                objects.values().map(move |o| (resource.clone(), o.clone()))
            })
            .collect();
        let subscription = Subscription {
            backlog: Vec::new(),
            receiver,
            rv: state.rv,
        };
        (objects, subscription)
    }

    /// Runs `f` against the current state and applies the changes it staged, atomically.
    ///
    /// Returns `f`'s value and the stored versions of the changed objects, in the order `f`
    /// staged them. When `f` fails, nothing is applied.
    ///
    /// # Errors
    /// `f`'s error, or a [`StoreError`] (converted) when persisting fails.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>,
    ) -> Result<(T, Vec<Arc<StoredObject>>), E> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut txn = Txn {
            objects: &state.objects,
            staged: Vec::new(),
            overlay: HashMap::new(),
        };
        let value = f(&mut txn)?;
        let staged = std::mem::take(&mut txn.staged);
        if staged.is_empty() {
            return Ok((value, Vec::new()));
        }
        let mut rv = state.rv;
        let mut latest: HashMap<(ResourceKey, ObjectKey), Option<Arc<StoredObject>>> =
            HashMap::new();
        let mut events = Vec::with_capacity(staged.len());
        for change in staged {
            let slot = (change.resource.clone(), change.key.clone());
            let prev = match latest.get(&slot) {
                Some(prev) => prev.clone(),
                None => state
                    .objects
                    .get(&change.resource)
                    .and_then(|objects| objects.get(&change.key))
                    .cloned(),
            };
            let (kind, value) = match (change.value, &prev) {
                (Some(value), Some(_)) => (EventType::Modified, value),
                (Some(value), None) => (EventType::Added, value),
                (None, Some(prev)) => (EventType::Deleted, prev.value()),
                (None, None) => continue,
            };
            rv += 1;
            let object = Arc::new(StoredObject::new(rv, change.key, value));
            let now = (kind != EventType::Deleted).then(|| object.clone());
            latest.insert(slot, now);
            events.push(WatchEvent {
                resource: change.resource,
                kind,
                object,
                prev,
            });
        }
        if let Some(db) = &self.db {
            let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
            db.append(&events)?;
        }
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            let event = Arc::new(event);
            state.rv = event.rv();
            state.changed.insert(event.resource.clone(), event.rv());
            let objects = state.objects.entry(event.resource.clone()).or_default();
            match event.kind {
                EventType::Deleted => {
                    objects.remove(&event.object.key);
                }
                EventType::Added | EventType::Modified => {
                    objects.insert(event.object.key.clone(), event.object.clone());
                }
            }
            stored.push(event.object.clone());
            state.history.push_back(event.clone());
            while state.history.len() > self.config.history {
                if let Some(old) = state.history.pop_front() {
                    state.history_floor = old.rv();
                }
            }
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(event);
        }
        Ok((value, stored))
    }

    /// Drops superseded rows older than the retained history from the SQLite log.
    ///
    /// # Errors
    /// When the database fails.
    pub fn compact(&self) -> Result<usize, StoreError> {
        let floor = self.read_state().history_floor;
        match &self.db {
            Some(db) => db.lock().unwrap_or_else(|e| e.into_inner()).compact(floor),
            None => Ok(0),
        }
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn list_in(
    objects: &Objects,
    resource: &ResourceKey,
    namespace: Option<&str>,
) -> Vec<Arc<StoredObject>> {
    let Some(objects) = objects.get(resource) else {
        return Vec::new();
    };
    match namespace {
        None => objects.values().cloned().collect(),
        Some(ns) => objects
            .range(ObjectKey::new(ns, "")..)
            .take_while(|(k, _)| k.namespace == ns)
            .map(|(_, o)| o.clone())
            .collect(),
    }
}

/// A started watch: events already past, then the live channel.
pub struct Subscription {
    /// Events after the start point that happened before the subscription.
    pub backlog: Vec<Arc<WatchEvent>>,
    /// Everything after.
    pub receiver: broadcast::Receiver<Arc<WatchEvent>>,
    /// The resourceVersion at the moment of subscribing.
    pub rv: u64,
}

struct Staged {
    resource: ResourceKey,
    key: ObjectKey,
    /// `None` deletes.
    value: Option<Value>,
}

/// The changes a [`Store::write`] closure stages. Reads see the staged changes.
pub struct Txn<'a> {
    objects: &'a Objects,
    staged: Vec<Staged>,
    overlay: HashMap<(ResourceKey, ObjectKey), Option<Value>>,
}

impl Txn<'_> {
    /// The current value of an object, staged changes included.
    pub fn get(&self, resource: &ResourceKey, key: &ObjectKey) -> Option<Value> {
        if let Some(staged) = self.overlay.get(&(resource.clone(), key.clone())) {
            return staged.clone();
        }
        self.objects
            .get(resource)
            .and_then(|objects| objects.get(key))
            .map(|o| o.value())
    }

    /// The committed objects of a kind in a namespace (or all); staged changes are not included.
    pub fn list(&self, resource: &ResourceKey, namespace: Option<&str>) -> Vec<Arc<StoredObject>> {
        list_in(self.objects, resource, namespace)
    }

    /// Every kind with committed objects.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceKey> {
        self.objects.keys()
    }

    /// Stages a create or replace.
    pub fn put(&mut self, resource: &ResourceKey, key: ObjectKey, value: Value) {
        self.stage(resource, key, Some(value));
    }

    /// Stages a deletion.
    pub fn delete(&mut self, resource: &ResourceKey, key: ObjectKey) {
        self.stage(resource, key, None);
    }

    fn stage(&mut self, resource: &ResourceKey, key: ObjectKey, value: Option<Value>) {
        self.overlay
            .insert((resource.clone(), key.clone()), value.clone());
        self.staged.push(Staged {
            resource: resource.clone(),
            key,
            value,
        });
    }
}

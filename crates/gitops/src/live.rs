//! The cluster as the GitOps controller sees it: one watch (and reflector store) per kind that
//! some Application's manifests name — opened the first time a comparison needs the kind, kept
//! for the controller's life — and the Applications to wake when an object they manage
//! changes or goes away, so drift is seen at once rather than at the next poll.
//!
//! Kinds are found through discovery (a CRD applied by a sync becomes watchable once the API
//! server serves it); a kind the server does not serve is [`LiveError::UnknownKind`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    discovery::{self, Scope},
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::tracking::{self, ResourceKey};

/// Why a kind cannot be watched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LiveError {
    /// The API server does not serve the kind.
    #[error("the server could not find the requested resource ({group}/{version}, Kind={kind})")]
    UnknownKind {
        /// API group.
        group: String,
        /// Version.
        version: String,
        /// Kind.
        kind: String,
    },
    /// Discovery failed for another reason.
    #[error("discovery of {0} failed: {1}")]
    Discovery(String, String),
    /// The watch did not deliver its first list.
    #[error("watching {0} failed")]
    Watch(String),
}

/// One watched kind.
#[derive(Debug)]
pub struct Kind {
    /// How to address it.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    store: Store<DynamicObject>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kind {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kind {
    /// The live object, as JSON.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        let mut reference = ObjectRef::new_with(name, self.resource.clone());
        if self.namespaced {
            reference = reference.within(namespace);
        }
        self.json(self.store.get(&reference)?.as_ref())
    }

    /// An object of this kind as JSON, with its `apiVersion` and `kind` (list items may lack
    /// them).
    fn json(&self, object: &DynamicObject) -> Option<Value> {
        let mut json = serde_json::to_value(object).ok()?;
        let map = json.as_object_mut()?;
        map.insert(
            "apiVersion".into(),
            self.resource.api_version.clone().into(),
        );
        map.insert("kind".into(), self.resource.kind.clone().into());
        Some(json)
    }
}

/// What a store keeps of `managedFields`: each manager's name and FieldsV1 only (what
/// `ignoreDifferences.managedFieldsManagers` reads), without times, versions and types.
fn trim_managed_fields(object: &mut DynamicObject) {
    if let Some(entries) = object.metadata.managed_fields.as_mut() {
        for entry in entries {
            entry.time = None;
            entry.api_version = None;
            entry.fields_type = None;
            entry.operation = None;
        }
    }
}

/// Every watched kind, and where changes to managed objects are announced.
pub struct Live {
    client: Client,
    kinds: Mutex<HashMap<(String, String), Arc<Kind>>>,
    wake: mpsc::UnboundedSender<String>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    /// A cache over `client`; the names of Applications whose objects changed arrive on the
    /// returned receiver.
    pub fn new(client: Client) -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        let (wake, woken) = mpsc::unbounded_channel();
        let live = Arc::new(Self {
            client,
            kinds: Mutex::new(HashMap::new()),
            wake,
        });
        (live, woken)
    }

    fn kinds(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Kind>>> {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kind of `api_version`/`kind`, watched from now on; waits for its first list.
    pub async fn kind(&self, api_version_in: &str, kind: &str) -> Result<Arc<Kind>, LiveError> {
        let api_version = api_version_in;
        let group = tracking::group_of(api_version).to_owned();
        if let Some(found) = self.kinds().get(&(group.clone(), kind.to_owned())) {
            return Ok(found.clone());
        }
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        let gvk = GroupVersionKind::gvk(&group, version, kind);
        let (resource, capabilities) =
            discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|e| match e {
                    kube::Error::Api(status) if status.code == 404 => LiveError::UnknownKind {
                        group: group.clone(),
                        version: version.to_owned(),
                        kind: kind.to_owned(),
                    },
                    kube::Error::Discovery(_) => LiveError::UnknownKind {
                        group: group.clone(),
                        version: version.to_owned(),
                        kind: kind.to_owned(),
                    },
                    other => {
                        LiveError::Discovery(format!("{api_version}/{kind}"), other.to_string())
                    }
                })?;
        let namespaced = capabilities.scope == Scope::Namespaced;
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let api = Api::<DynamicObject>::all_with(self.client.clone(), &resource);
        let wake = self.wake.clone();
        let (served_version, kind_name) = (resource.api_version.clone(), resource.kind.clone());
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(trim_managed_fields)
            .reflect(writer);
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let object = match &event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => o,
                    _ => continue,
                };
                let Ok(mut json) = serde_json::to_value(object) else {
                    continue;
                };
                json["apiVersion"] = served_version.clone().into();
                json["kind"] = kind_name.clone().into();
                if let Some(app) = tracking::owning_app(&json) {
                    let _ = wake.send(app);
                }
            }
        });
        let entry = Arc::new(Kind {
            resource,
            namespaced,
            store: store.clone(),
            task,
        });
        store
            .wait_until_ready()
            .await
            .map_err(|_| LiveError::Watch(format!("{api_version}/{kind}")))?;
        let mut kinds = self.kinds();
        let entry = kinds
            .entry((group, kind.to_owned()))
            .or_insert(entry)
            .clone();
        Ok(entry)
    }

    /// The kind if it is already watched.
    pub fn watched(&self, group: &str, kind: &str) -> Option<Arc<Kind>> {
        self.kinds()
            .get(&(group.to_owned(), kind.to_owned()))
            .cloned()
    }

    /// Every live root object of a watched kind that `app` manages.
    pub fn managed_by(&self, app: &str) -> Vec<(ResourceKey, Value)> {
        let kinds: Vec<Arc<Kind>> = self.kinds().values().cloned().collect();
        let mut out = Vec::new();
        for kind in kinds {
            for object in kind.store.state() {
                // A cheap look at the metadata first: only objects naming the app are decoded.
                let meta = &object.metadata;
                let annotation = meta
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(tracking::TRACKING_ID));
                let label = meta
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(tracking::INSTANCE_LABEL));
                let names_app = match annotation {
                    Some(id) => id.split_once(':').is_some_and(|(a, _)| a == app),
                    None => label.is_some_and(|l| l == app),
                };
                if !names_app {
                    continue;
                }
                let Some(json) = kind.json(&object) else {
                    continue;
                };
                if tracking::owning_app(&json).as_deref() == Some(app) {
                    out.push((ResourceKey::of(&json, ""), json));
                }
            }
        }
        out
    }

    /// Root objects of the watched namespaced kinds in `namespace` that no Application
    /// tracks (candidates for Argo CD's OrphanedResourceWarning).
    pub fn untracked_in(&self, namespace: &str) -> Vec<ResourceKey> {
        let kinds: Vec<Arc<Kind>> = self
            .kinds()
            .values()
            .filter(|k| k.namespaced)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for kind in kinds {
            for object in kind.store.state() {
                let meta = &object.metadata;
                if meta.namespace.as_deref() != Some(namespace)
                    || meta
                        .owner_references
                        .as_ref()
                        .is_some_and(|o| !o.is_empty())
                    || meta
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key(tracking::TRACKING_ID))
                    || meta
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key(tracking::INSTANCE_LABEL))
                {
                    continue;
                }
                out.push(ResourceKey {
                    group: tracking::group_of(&kind.resource.api_version).to_owned(),
                    kind: kind.resource.kind.clone(),
                    namespace: namespace.to_owned(),
                    name: meta.name.clone().unwrap_or_default(),
                });
            }
        }
        out
    }

    /// The client the cache watches through.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

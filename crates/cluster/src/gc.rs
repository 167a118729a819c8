//! The garbage collector and the namespace lifecycle controller, as kube-controller-manager runs
//! them: dependents whose owners are gone are deleted; owners deleted in the foreground wait for
//! their dependents; orphaning strips owner references; a deleted namespace is emptied, then
//! removed.
//!
//! It keeps an index of owner references, fed by the store's events in order, and acts through
//! store transactions that re-check each decision against the committed state.
//!
//! Layering: a controller — a client of the API server (it acts through its store
//! transactions), below nothing but `cluster`, which starts it.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    api_error::ApiError,
    apiserver::ApiServer,
    object::{self, DeleteOptions, FOREGROUND_DELETION, NAMESPACE_FINALIZER, ORPHAN, Propagation},
    registry::ResourceType,
    store::{EventType, ObjectKey, ResourceKey, StoredObject},
};

/// Where an object lives.
type Location = (ResourceKey, ObjectKey);

/// An owner reference, as the collector needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OwnerRef {
    uid: String,
    group: String,
    kind: String,
    name: String,
    block: bool,
}

#[derive(Default)]
struct Index {
    /// uid → where the object is.
    objects: HashMap<String, Location>,
    /// owner uid → dependent uids.
    dependents: HashMap<String, HashSet<String>>,
    /// dependent uid → its owner references.
    owners: HashMap<String, Vec<OwnerRef>>,
}

/// What to look at after a change.
#[derive(Default)]
struct Work {
    /// Dependents whose owners may all be gone.
    orphans: BTreeSet<String>,
    /// Owners being deleted with `foregroundDeletion` or `orphan` finalizers.
    owners: BTreeSet<String>,
    /// Namespaces being deleted.
    namespaces: BTreeSet<String>,
}

fn owner_refs(value: &Value) -> Vec<OwnerRef> {
    value["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let api_version = r["apiVersion"].as_str()?;
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            Some(OwnerRef {
                uid: r["uid"].as_str()?.to_owned(),
                group: group.to_owned(),
                kind: r["kind"].as_str()?.to_owned(),
                name: r["name"].as_str()?.to_owned(),
                block: r["blockOwnerDeletion"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

impl Index {
    fn remove(&mut self, uid: &str) {
        self.objects.remove(uid);
        for owner in self.owners.remove(uid).unwrap_or_default() {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
            }
        }
    }

    /// Records an object's current state; returns what may need attention.
    fn observe(
        &mut self,
        resource: &ResourceKey,
        object: &StoredObject,
        kind: EventType,
        work: &mut Work,
    ) {
        let value = object.value();
        let uid = object::meta_str(&value, "uid").to_owned();
        if uid.is_empty() {
            return;
        }
        let namespace = &object.key.namespace;
        if kind == EventType::Deleted {
            // Owners waiting in the foreground for this dependent look again.
            for owner in self.owners.get(&uid).into_iter().flatten() {
                work.owners.insert(owner.uid.clone());
            }
            self.remove(&uid);
            if let Some(dependents) = self.dependents.get(&uid) {
                work.orphans.extend(dependents.iter().cloned());
            }
            if !namespace.is_empty() {
                work.namespaces.insert(namespace.clone());
            }
            return;
        }
        self.remove(&uid);
        self.objects
            .insert(uid.clone(), (resource.clone(), object.key.clone()));
        let refs = owner_refs(&value);
        for owner in &refs {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
            if !self.objects.contains_key(&owner.uid) {
                work.orphans.insert(uid.clone());
            }
        }
        if !refs.is_empty() {
            self.owners.insert(uid.clone(), refs);
        }
        if object::is_deleting(&value) {
            let finalizers = object::finalizers(&value);
            if finalizers
                .iter()
                .any(|f| f == FOREGROUND_DELETION || f == ORPHAN)
            {
                work.owners.insert(uid.clone());
            }
            if resource.group.is_empty() && resource.resource == "namespaces" {
                work.namespaces.insert(object.key.name.clone());
            }
        }
    }
}

/// Runs the collector until the store closes.
pub async fn run(server: Arc<ApiServer>) {
    let mut index = Index::default();
    let mut work = Work::default();
    let (objects, subscription) = server.store().snapshot();
    for (resource, object) in &objects {
        index.observe(resource, object, EventType::Added, &mut work);
    }
    let mut receiver = subscription.receiver;
    loop {
        process(&server, &index, std::mem::take(&mut work));
        let event = match receiver.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => {
                // Fell behind: rebuild from a fresh snapshot.
                index = Index::default();
                let (objects, subscription) = server.store().snapshot();
                receiver = subscription.receiver;
                for (resource, object) in &objects {
                    index.observe(resource, object, EventType::Added, &mut work);
                }
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        index.observe(&event.resource, &event.object, event.kind, &mut work);
        // Take whatever else is already queued before acting.
        while let Ok(event) = receiver.try_recv() {
            index.observe(&event.resource, &event.object, event.kind, &mut work);
        }
    }
}

fn process(server: &ApiServer, index: &Index, work: Work) {
    for uid in &work.orphans {
        if let Some(location) = index.objects.get(uid)
            && let Err(err) = collect_orphan(server, location)
        {
            tracing::warn!(
                "garbage collector: {}/{}: {err}",
                location.0.resource,
                location.1.name
            );
        }
    }
    for uid in &work.owners {
        if let Some(location) = index.objects.get(uid) {
            let dependents: Vec<Location> = index
                .dependents
                .get(uid)
                .into_iter()
                .flatten()
                .filter_map(|d| index.objects.get(d).cloned())
                .collect();
            if let Err(err) = finish_owner(server, location, uid, &dependents) {
                tracing::warn!(
                    "garbage collector: {}/{}: {err}",
                    location.0.resource,
                    location.1.name
                );
            }
        }
    }
    for namespace in &work.namespaces {
        if let Err(err) = finish_namespace(server, namespace) {
            tracing::warn!("namespace controller: {namespace}: {err}");
        }
    }
}

fn resource_type(server: &ApiServer, resource: &ResourceKey) -> Option<Arc<ResourceType>> {
    server.registry().get(&resource.group, &resource.resource)
}

/// Deletes a dependent whose owners are all gone (re-checked in the transaction).
fn collect_orphan(server: &ApiServer, (resource, key): &Location) -> Result<(), ApiError> {
    let Some(rt) = resource_type(server, resource) else {
        return Ok(());
    };
    let now = Timestamp::now();
    server.store().write(|txn| {
        let Some(current) = txn.get(resource, key) else {
            return Ok(());
        };
        let refs = owner_refs(&current);
        if refs.is_empty()
            || object::is_deleting(&current) && object::finalizers(&current).is_empty()
        {
            return Ok(());
        }
        let mut foreground = false;
        for owner in &refs {
            let Some(owner_rt) = server.registry().by_kind(&owner.group, &owner.kind) else {
                continue;
            };
            let namespace = if owner_rt.namespaced {
                key.namespace.as_str()
            } else {
                ""
            };
            match txn.get(&owner_rt.storage, &ObjectKey::new(namespace, &owner.name)) {
                Some(o) if object::meta_str(&o, "uid") == owner.uid => {
                    if !object::is_deleting(&o)
                        || !object::finalizers(&o)
                            .iter()
                            .any(|f| f == FOREGROUND_DELETION)
                    {
                        return Ok(()); // an owner is alive
                    }
                    foreground = true;
                }
                _ => {}
            }
        }
        let options = DeleteOptions {
            propagation: Some(if foreground {
                Propagation::Foreground
            } else {
                Propagation::Background
            }),
            ..DeleteOptions::default()
        };
        object::plan_delete(&rt, &current, &options, now)?.stage(txn, resource, key.clone());
        Ok::<_, ApiError>(())
    })?;
    Ok(())
}

/// Progresses an owner deleted with `foregroundDeletion` or `orphan`.
fn finish_owner(
    server: &ApiServer,
    (resource, key): &Location,
    uid: &str,
    dependents: &[Location],
) -> Result<(), ApiError> {
    let now = Timestamp::now();
    server.store().write(|txn| {
        let Some(mut owner) = txn.get(resource, key) else {
            return Ok(());
        };
        let mut finalizers = object::finalizers(&owner);
        let owns = |value: &Value| owner_refs(value).iter().any(|r| r.uid == uid);
        if finalizers.iter().any(|f| f == ORPHAN) {
            for (dep_resource, dep_key) in dependents {
                let Some(mut dependent) = txn.get(dep_resource, dep_key) else {
                    continue;
                };
                if let Some(refs) = dependent["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                    let empty = refs.is_empty();
                    if empty {
                        object::meta_mut(&mut dependent).remove("ownerReferences");
                    }
                    txn.put(dep_resource, dep_key.clone(), dependent);
                }
            }
            finalizers.retain(|f| f != ORPHAN);
        } else if finalizers.iter().any(|f| f == FOREGROUND_DELETION) {
            let mut blocking = false;
            for (dep_resource, dep_key) in dependents {
                let Some(dependent) = txn.get(dep_resource, dep_key) else {
                    continue;
                };
                if !owns(&dependent) {
                    continue;
                }
                // Only dependents with `blockOwnerDeletion` hold the owner back.
                blocking |= owner_refs(&dependent)
                    .iter()
                    .any(|r| r.uid == uid && r.block);
                if !object::is_deleting(&dependent)
                    && let Some(rt) = resource_type(server, dep_resource)
                {
                    let options = DeleteOptions {
                        propagation: Some(Propagation::Foreground),
                        ..DeleteOptions::default()
                    };
                    object::plan_delete(&rt, &dependent, &options, now)?.stage(
                        txn,
                        dep_resource,
                        dep_key.clone(),
                    );
                }
            }
            if blocking {
                return Ok(());
            }
            finalizers.retain(|f| f != FOREGROUND_DELETION);
        } else {
            return Ok(());
        }
        object::meta_mut(&mut owner).insert("finalizers".into(), json!(finalizers));
        let rt = resource_type(server, resource);
        if rt.is_some_and(|rt| object::ready_to_remove(&rt, &owner)) {
            txn.delete(resource, key.clone());
        } else {
            txn.put(resource, key.clone(), owner);
        }
        Ok::<_, ApiError>(())
    })?;
    Ok(())
}

/// Deletes everything in a terminating namespace, then the namespace.
fn finish_namespace(server: &ApiServer, namespace: &str) -> Result<(), ApiError> {
    let namespaces = ResourceKey::new("", "namespaces");
    let ns_key = ObjectKey::new("", namespace);
    let now = Timestamp::now();
    server.store().write(|txn| {
        let Some(mut ns) = txn.get(&namespaces, &ns_key) else {
            return Ok(());
        };
        if !object::is_deleting(&ns) {
            return Ok(());
        }
        let resources: Vec<ResourceKey> = txn.resources().cloned().collect();
        let mut remaining = false;
        for resource in resources {
            let Some(rt) = resource_type(server, &resource).filter(|rt| rt.namespaced) else {
                continue;
            };
            for object in txn.list(&resource, Some(namespace)) {
                remaining = true;
                let value = object.value();
                object::plan_delete(&rt, &value, &DeleteOptions::default(), now)?.stage(
                    txn,
                    &resource,
                    object.key.clone(),
                );
            }
        }
        if remaining {
            return Ok(());
        }
        let mut spec_finalizers: Vec<Value> = ns["spec"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        spec_finalizers.retain(|f| f != NAMESPACE_FINALIZER);
        if object::finalizers(&ns).is_empty() {
            txn.delete(&namespaces, ns_key.clone());
        } else {
            ns["spec"]["finalizers"] = json!(spec_finalizers);
            txn.put(&namespaces, ns_key.clone(), ns);
        }
        Ok::<_, ApiError>(())
    })?;
    Ok(())
}

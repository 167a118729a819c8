//! OpenAPI v3 documents, as kubectl needs them: a root listing one document per group-version,
//! and per group-version documents whose PATCH operations carry `x-kubernetes-group-version-kind`
//! and a `fieldValidation` parameter (kubectl then lets the server validate `apply`, `create`
//! and `replace`), with the schemas of CRD-defined kinds for `kubectl explain`.

use std::{collections::BTreeMap, sync::Arc};

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use crate::apiserver::{ApiError, ApiResult};
use crate::registry::{Persistence, ResourceType};

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a over everything written to it.
struct Fnv(u64);

impl std::io::Write for Fnv {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fingerprint of the served kinds, so kubectl's cache notices new CRDs.
fn fingerprint(types: &[Arc<ResourceType>], group: &str, version: &str) -> String {
    use std::io::Write;
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    for t in types
        .iter()
        .filter(|t| t.group == group && t.serves(version))
    {
        let _ = hash.write_all(t.resource.as_bytes());
        let _ = hash.write_all(t.kind.as_bytes());
        if let Some(schema) = t.schemas.get(version) {
            // Streamed into the hash: a CRD's schema can be large, and kubectl asks every run.
            let _ = serde_json::to_writer(&mut hash, schema);
        }
    }
    format!("{:016X}", hash.0)
}

/// `/openapi/v3`: each group-version's document, with its fingerprint (computed once each).
pub fn root(types: &[Arc<ResourceType>]) -> Value {
    let mut versions = std::collections::BTreeSet::new();
    for t in types {
        for version in &t.versions {
            versions.insert((t.group.as_str(), version.as_str()));
        }
    }
    let paths: serde_json::Map<String, Value> = versions
        .into_iter()
        .map(|(group, version)| {
            let gv = group_version(group, version);
            let url = format!(
                "/openapi/v3/{gv}?hash={}",
                fingerprint(types, group, version)
            );
            (gv, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
///
/// # Errors
/// 404 when no kind is served in that group-version.
pub fn document(types: &[Arc<ResourceType>], group: &str, version: &str) -> ApiResult<Value> {
    use std::sync::{Mutex, OnceLock};
    // The last document built per group-version, by the fingerprint of its kinds: built-in
    // schemas are generated once, not for every kubectl that asks.
    type Cache = Mutex<BTreeMap<(String, String), (String, Value)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let key = (group.to_owned(), version.to_owned());
    let print = fingerprint(types, group, version);
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((held, document)) = lock().get(&key)
        && *held == print
    {
        return Ok(document.clone());
    }
    let document = build(types, group, version)?;
    lock().insert(key, (print, document.clone()));
    Ok(document)
}

fn build(types: &[Arc<ResourceType>], group: &str, version: &str) -> ApiResult<Value> {
    let served: Vec<&Arc<ResourceType>> = types
        .iter()
        .filter(|t| t.group == group && t.serves(version))
        .collect();
    if served.is_empty() {
        return Err(ApiError::no_route(&format!(
            "OpenAPI for {}",
            group_version(group, version)
        )));
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    // Built-in kinds share their schemas (PodSpec once for Deployments, ReplicaSets, …) by
    // `$ref`, as Kubernetes' documents do: kubectl parses a group-version's document for every
    // object it applies, so its size is per-object time.
    let mut generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut kinds = Vec::new();
    for t in served {
        let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
        let prefix = format!("/{}", group_version(&t.group, version));
        let item = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.resource)
        } else {
            format!("{prefix}/{}/{{name}}", t.resource)
        };
        let parameters = json!([
            {"name": "name", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
        ]);
        let schema_name = match t.schemas.get(version) {
            Some(schema) => {
                let name = schema_name(t, version);
                schemas.insert(name.clone(), schema.clone());
                name
            }
            None => builtin_schema(&mut generator, &t.group, &t.resource).unwrap_or_else(|| {
                let name = schema_name(t, version);
                schemas.insert(
                    name.clone(),
                    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                );
                name
            }),
        };
        let reference = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let operation = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", t.kind),
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": parameters,
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
            })
        };
        // The operations each kind has: metrics are only read, reviews only created.
        let verbs: &[&str] = match t.persistence {
            Persistence::Stored => &["get", "put", "patch", "delete"],
            Persistence::Metrics => &["get"],
            Persistence::Review => &[],
        };
        if !verbs.is_empty() {
            let item_ops: serde_json::Map<String, Value> = verbs
                .iter()
                .map(|verb| ((*verb).to_owned(), operation(verb)))
                .collect();
            paths.insert(item, Value::Object(item_ops));
        }
        kinds.push((schema_name, gvk));
    }
    for (name, schema) in generator.take_definitions(true) {
        schemas.entry(name).or_insert(schema);
    }
    for (name, gvk) in kinds {
        if let Some(schema) = schemas.get_mut(&name) {
            schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        }
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::apiserver::discovery::KUBERNETES_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Adds the schema of a built-in kind, from k8s-openapi's types (for `kubectl explain`), and
/// every schema it refers to, to `generator`; its name (`io.k8s.api.apps.v1.Deployment`).
fn builtin_schema(generator: &mut SchemaGenerator, group: &str, resource: &str) -> Option<String> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
        scheduling::v1 as scheduling, storage::v1 as storage,
    };
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
        generator.subschema_for::<T>();
        T::schema_name().into_owned()
    }
    let name = match (group, resource) {
        ("", "pods") => add::<core::Pod>(generator),
        ("", "services") => add::<core::Service>(generator),
        ("", "configmaps") => add::<core::ConfigMap>(generator),
        ("", "secrets") => add::<core::Secret>(generator),
        ("", "namespaces") => add::<core::Namespace>(generator),
        ("", "nodes") => add::<core::Node>(generator),
        ("", "endpoints") => add::<core::Endpoints>(generator),
        ("", "events") => add::<core::Event>(generator),
        ("", "serviceaccounts") => add::<core::ServiceAccount>(generator),
        ("", "podtemplates") => add::<core::PodTemplate>(generator),
        ("", "persistentvolumeclaims") => add::<core::PersistentVolumeClaim>(generator),
        ("", "persistentvolumes") => add::<core::PersistentVolume>(generator),
        ("", "replicationcontrollers") => add::<core::ReplicationController>(generator),
        ("", "resourcequotas") => add::<core::ResourceQuota>(generator),
        ("", "limitranges") => add::<core::LimitRange>(generator),
        ("apps", "deployments") => add::<apps::Deployment>(generator),
        ("apps", "replicasets") => add::<apps::ReplicaSet>(generator),
        ("apps", "statefulsets") => add::<apps::StatefulSet>(generator),
        ("apps", "daemonsets") => add::<apps::DaemonSet>(generator),
        ("apps", "controllerrevisions") => add::<apps::ControllerRevision>(generator),
        ("batch", "jobs") => add::<batch::Job>(generator),
        ("batch", "cronjobs") => add::<batch::CronJob>(generator),
        ("networking.k8s.io", "networkpolicies") => add::<networking::NetworkPolicy>(generator),
        ("networking.k8s.io", "ingresses") => add::<networking::Ingress>(generator),
        ("networking.k8s.io", "ingressclasses") => add::<networking::IngressClass>(generator),
        ("scheduling.k8s.io", "priorityclasses") => add::<scheduling::PriorityClass>(generator),
        ("storage.k8s.io", "storageclasses") => add::<storage::StorageClass>(generator),
        ("discovery.k8s.io", "endpointslices") => add::<discovery::EndpointSlice>(generator),
        ("coordination.k8s.io", "leases") => add::<coordination::Lease>(generator),
        ("policy", "poddisruptionbudgets") => add::<policy::PodDisruptionBudget>(generator),
        ("autoscaling", "horizontalpodautoscalers") => {
            add::<autoscaling::HorizontalPodAutoscaler>(generator)
        }
        ("rbac.authorization.k8s.io", "roles") => add::<rbac::Role>(generator),
        ("rbac.authorization.k8s.io", "rolebindings") => add::<rbac::RoleBinding>(generator),
        ("rbac.authorization.k8s.io", "clusterroles") => add::<rbac::ClusterRole>(generator),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            add::<rbac::ClusterRoleBinding>(generator)
        }
        _ => return None,
    };
    Some(name)
}

/// Kubernetes' schema naming: reversed group, version, kind (`io.argoproj.v1alpha1.Rollout`).
fn schema_name(t: &ResourceType, version: &str) -> String {
    let group = if t.group.is_empty() {
        "io.k8s.api.core".to_owned()
    } else {
        t.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{group}.{version}.{}", t.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn the_root_lists_each_group_version_once_with_a_hash_of_its_kinds() {
        let registry = Registry::with_builtins();
        let root = root(&registry.all());
        let paths = root["paths"].as_object().unwrap();
        let apps = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
        assert!(apps.starts_with("/openapi/v3/apis/apps/v1?hash="), "{apps}");
        assert!(paths.contains_key("api/v1"));
        assert!(paths.contains_key("apis/metrics.k8s.io/v1beta1"));
        let mut changed = (*registry.get("apps", "deployments").unwrap()).clone();
        changed
            .schemas
            .insert("v1".into(), json!({"type": "object"}));
        registry.insert(changed);
        let again = super::root(&registry.all());
        assert_ne!(again["paths"]["apis/apps/v1"], paths["apis/apps/v1"]);
        assert_eq!(again["paths"]["api/v1"], paths["api/v1"]);
    }
}

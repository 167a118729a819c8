//! OpenAPI v3 documents, as kubectl needs them: a root listing one document per group-version,
//! and per group-version documents whose PATCH operations carry `x-kubernetes-group-version-kind`
//! and a `fieldValidation` parameter (kubectl then lets the server validate `apply`, `create`
//! and `replace`), with the schemas of CRD-defined kinds for `kubectl explain`.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};

use super::{ApiError, ApiResult};
use crate::registry::ResourceType;

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A fingerprint of the served kinds, so kubectl's cache notices new CRDs.
fn fingerprint(types: &[Arc<ResourceType>], group: &str, version: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for t in types
        .iter()
        .filter(|t| t.group == group && t.serves(version))
    {
        let schema = t
            .schemas
            .get(version)
            .map(Value::to_string)
            .unwrap_or_default();
        for byte in t
            .resource
            .bytes()
            .chain(t.kind.bytes())
            .chain(schema.bytes())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016X}")
}

/// `/openapi/v3`.
pub fn root(types: &[Arc<ResourceType>]) -> Value {
    let mut paths = BTreeMap::new();
    for t in types {
        for version in &t.versions {
            let gv = group_version(&t.group, version);
            let url = format!(
                "/openapi/v3/{gv}?hash={}",
                fingerprint(types, &t.group, version)
            );
            paths.insert(gv, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
///
/// # Errors
/// 404 when no kind is served in that group-version.
pub fn document(types: &[Arc<ResourceType>], group: &str, version: &str) -> ApiResult<Value> {
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
        let schema_name = schema_name(t, version);
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
        paths.insert(item, json!({"get": operation("get"), "put": operation("put"), "patch": operation("patch"), "delete": operation("delete")}));
        let mut schema = t
            .schemas
            .get(version)
            .cloned()
            .or_else(|| builtin_schema(&t.group, &t.resource))
            .unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(schema_name, schema);
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", super::discovery::KUBERNETES_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn generate<T: schemars::JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// The schema of a built-in kind, from k8s-openapi's types (for `kubectl explain`), generated
/// once per kind.
fn builtin_schema(group: &str, resource: &str) -> Option<Value> {
    use std::{
        collections::HashMap,
        sync::{Mutex, OnceLock},
    };

    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
        scheduling::v1 as scheduling, storage::v1 as storage,
    };
    static CACHE: OnceLock<Mutex<HashMap<(String, String), Value>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let key = (group.to_owned(), resource.to_owned());
    if let Some(schema) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Some(schema.clone());
    }
    let schema = match (group, resource) {
        ("", "pods") => generate::<core::Pod>(),
        ("", "services") => generate::<core::Service>(),
        ("", "configmaps") => generate::<core::ConfigMap>(),
        ("", "secrets") => generate::<core::Secret>(),
        ("", "namespaces") => generate::<core::Namespace>(),
        ("", "nodes") => generate::<core::Node>(),
        ("", "endpoints") => generate::<core::Endpoints>(),
        ("", "events") => generate::<core::Event>(),
        ("", "serviceaccounts") => generate::<core::ServiceAccount>(),
        ("", "podtemplates") => generate::<core::PodTemplate>(),
        ("", "persistentvolumeclaims") => generate::<core::PersistentVolumeClaim>(),
        ("apps", "deployments") => generate::<apps::Deployment>(),
        ("apps", "replicasets") => generate::<apps::ReplicaSet>(),
        ("apps", "statefulsets") => generate::<apps::StatefulSet>(),
        ("apps", "daemonsets") => generate::<apps::DaemonSet>(),
        ("batch", "jobs") => generate::<batch::Job>(),
        ("batch", "cronjobs") => generate::<batch::CronJob>(),
        ("", "resourcequotas") => generate::<core::ResourceQuota>(),
        ("", "limitranges") => generate::<core::LimitRange>(),
        ("", "persistentvolumes") => generate::<core::PersistentVolume>(),
        ("networking.k8s.io", "networkpolicies") => generate::<networking::NetworkPolicy>(),
        ("scheduling.k8s.io", "priorityclasses") => generate::<scheduling::PriorityClass>(),
        ("storage.k8s.io", "storageclasses") => generate::<storage::StorageClass>(),
        ("networking.k8s.io", "ingresses") => generate::<networking::Ingress>(),
        ("networking.k8s.io", "ingressclasses") => generate::<networking::IngressClass>(),
        ("discovery.k8s.io", "endpointslices") => generate::<discovery::EndpointSlice>(),
        ("coordination.k8s.io", "leases") => generate::<coordination::Lease>(),
        ("policy", "poddisruptionbudgets") => generate::<policy::PodDisruptionBudget>(),
        ("autoscaling", "horizontalpodautoscalers") => {
            generate::<autoscaling::HorizontalPodAutoscaler>()
        }
        ("rbac.authorization.k8s.io", "roles") => generate::<rbac::Role>(),
        ("rbac.authorization.k8s.io", "rolebindings") => generate::<rbac::RoleBinding>(),
        ("rbac.authorization.k8s.io", "clusterroles") => generate::<rbac::ClusterRole>(),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            generate::<rbac::ClusterRoleBinding>()
        }
        _ => return None,
    };
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, schema.clone());
    Some(schema)
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

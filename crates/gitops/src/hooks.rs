//! Sync hooks as gitops-engine reads them (research §2.3): `argocd.argoproj.io/hook` (a
//! comma-separated list of `PreSync`, `Sync`, `PostSync`, `SyncFail`, `Skip`), else Helm's
//! `helm.sh/hook` mapped as Argo CD maps it (`pre-install`/`pre-upgrade` → PreSync,
//! `post-install`/`post-upgrade` → PostSync; a resource with only other Helm hooks is ignored
//! entirely); delete policies (`BeforeHookCreation` when none is given); the name a
//! `generateName` hook gets. Hooks take no part in comparison, pruning or health.

use serde_json::Value;

/// Argo CD's hook annotation.
pub const HOOK: &str = "argocd.argoproj.io/hook";
/// Argo CD's hook delete policy annotation.
pub const DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
/// Helm's hook annotation.
pub const HELM_HOOK: &str = "helm.sh/hook";
/// Helm's hook weight (the wave when no sync-wave is given).
pub const HELM_WEIGHT: &str = "helm.sh/hook-weight";
/// Helm's hook delete policy annotation.
pub const HELM_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";
/// The finalizer every hook carries while its sync runs.
pub const FINALIZER: &str = "argocd.argoproj.io/hook-finalizer";

/// A sync phase, in the order phases run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Before the resources.
    PreSync,
    /// With the resources.
    Sync,
    /// After every Sync-phase task succeeded.
    PostSync,
    /// When the sync failed.
    SyncFail,
}

impl Phase {
    /// Argo CD's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreSync => "PreSync",
            Self::Sync => "Sync",
            Self::PostSync => "PostSync",
            Self::SyncFail => "SyncFail",
        }
    }

    /// Reads Argo CD's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "PreSync" => Self::PreSync,
            "Sync" => Self::Sync,
            "PostSync" => Self::PostSync,
            "SyncFail" => Self::SyncFail,
            _ => return None,
        })
    }
}

/// What the hook annotations say about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An ordinary resource.
    Resource,
    /// A hook of these phases.
    Hook(Vec<Phase>),
    /// `Skip`, or only Helm hooks Argo CD does not run: never applied, never compared.
    Ignored,
}

fn annotation<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][name].as_str()
}

/// The object's role in a sync.
pub fn role(object: &Value) -> Role {
    if let Some(list) = annotation(object, HOOK) {
        let words: Vec<&str> = list.split(',').map(str::trim).collect();
        if words.contains(&"Skip") {
            return Role::Ignored;
        }
        let mut phases: Vec<Phase> = words.iter().filter_map(|w| Phase::parse(w)).collect();
        phases.sort();
        phases.dedup();
        return if phases.is_empty() {
            Role::Resource
        } else {
            Role::Hook(phases)
        };
    }
    if let Some(list) = annotation(object, HELM_HOOK) {
        let mut phases: Vec<Phase> = list
            .split(',')
            .filter_map(|w| match w.trim() {
                "pre-install" | "pre-upgrade" => Some(Phase::PreSync),
                "post-install" | "post-upgrade" => Some(Phase::PostSync),
                _ => None,
            })
            .collect();
        phases.sort();
        phases.dedup();
        return if phases.is_empty() {
            Role::Ignored
        } else {
            Role::Hook(phases)
        };
    }
    Role::Resource
}

/// Whether a live object is a hook (so never pruned nor compared).
pub fn is_hook(object: &Value) -> bool {
    annotation(object, HOOK).is_some() || annotation(object, HELM_HOOK).is_some()
}

/// When a hook is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeletePolicy {
    /// After the sync succeeds.
    pub succeeded: bool,
    /// After the sync fails.
    pub failed: bool,
    /// Before a new copy is created (the default when no policy is given).
    pub before_creation: bool,
}

/// The hook's delete policy.
pub fn delete_policy(object: &Value) -> DeletePolicy {
    let mut policy = DeletePolicy::default();
    let words = annotation(object, DELETE_POLICY)
        .or_else(|| annotation(object, HELM_DELETE_POLICY))
        .unwrap_or_default();
    for word in words.split(',').map(str::trim) {
        match word {
            "HookSucceeded" | "hook-succeeded" => policy.succeeded = true,
            "HookFailed" | "hook-failed" => policy.failed = true,
            "BeforeHookCreation" | "before-hook-creation" => policy.before_creation = true,
            _ => {}
        }
    }
    if policy == DeletePolicy::default() {
        policy.before_creation = true;
    }
    policy
}

/// The name of a hook that has only a `generateName`, as Argo CD forms it:
/// `<generateName><revision[0:7]>-<phase>-<startedAt as Unix seconds>`, lower-cased.
pub fn generated_name(generate_name: &str, revision: &str, phase: Phase, started: i64) -> String {
    let short: String = revision.chars().take(7).collect();
    format!("{generate_name}{short}-{}-{started}", phase.as_str()).to_lowercase()
}

/// The hook object with its name (from `generateName` when it has none) and the finalizer.
pub fn prepared(object: &Value, revision: &str, phase: Phase, started: i64) -> Value {
    let mut object = object.clone();
    if object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
        && let Some(generate) = object["metadata"]["generateName"].as_str()
    {
        let name = generated_name(generate, revision, phase, started);
        object["metadata"]["name"] = Value::String(name);
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("generateName");
    }
    let finalizers = &mut object["metadata"]["finalizers"];
    if !finalizers.is_array() {
        *finalizers = Value::Array(Vec::new());
    }
    if let Some(list) = finalizers.as_array_mut()
        && !list.iter().any(|f| f == FINALIZER)
    {
        list.push(Value::String(FINALIZER.into()));
    }
    object
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(annotations: Value) -> Value {
        json!({"metadata": {"name": "h", "annotations": annotations}})
    }

    #[test]
    fn argo_hooks_helm_hooks_and_skip() {
        assert_eq!(role(&with(json!({}))), Role::Resource);
        assert_eq!(
            role(&with(json!({HOOK: "PostSync, PreSync"}))),
            Role::Hook(vec![Phase::PreSync, Phase::PostSync])
        );
        assert_eq!(role(&with(json!({HOOK: "Skip"}))), Role::Ignored);
        assert_eq!(
            role(&with(json!({HELM_HOOK: "pre-install,pre-upgrade"}))),
            Role::Hook(vec![Phase::PreSync])
        );
        assert_eq!(role(&with(json!({HELM_HOOK: "test"}))), Role::Ignored);
        // The Argo CD annotation wins over Helm's.
        assert_eq!(
            role(&with(json!({HOOK: "SyncFail", HELM_HOOK: "post-install"}))),
            Role::Hook(vec![Phase::SyncFail])
        );
    }

    #[test]
    fn delete_policies_default_to_before_creation() {
        let default = delete_policy(&with(json!({HOOK: "PreSync"})));
        assert!(default.before_creation && !default.succeeded && !default.failed);
        let both = delete_policy(&with(json!({DELETE_POLICY: "HookSucceeded,HookFailed"})));
        assert!(both.succeeded && both.failed && !both.before_creation);
        let helm = delete_policy(&with(json!({HELM_DELETE_POLICY: "hook-succeeded"})));
        assert!(helm.succeeded);
    }

    #[test]
    fn generate_name_as_argo_cd_forms_it() {
        assert_eq!(
            generated_name("Migrate-", "0123456789abcdef", Phase::PreSync, 1700000000),
            "migrate-0123456-presync-1700000000"
        );
        let hook = json!({"metadata": {"generateName": "smoke-"}});
        let named = prepared(&hook, "abcdef012", Phase::PostSync, 5);
        assert_eq!(named["metadata"]["name"], "smoke-abcdef0-postsync-5");
        assert_eq!(named["metadata"]["finalizers"], json!([FINALIZER]));
        assert!(named["metadata"].get("generateName").is_none());
    }
}

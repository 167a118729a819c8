//! Argo CD's `AppProject` kind: which repositories, destinations and kinds an Application in
//! the project may use, its roles, sync windows and source-integrity rules.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ApplicationDestination, names};

/// A project: a logical group of Applications and the rules they deploy under.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AppProject",
    namespaced,
    status = "AppProjectStatus",
    shortname = "appproj",
    shortname = "appprojs",
    doc = "AppProject provides a logical grouping of applications",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectSpec {
    /// Repository URLs (globs) Applications may use.
    pub source_repos: Option<Vec<String>>,
    /// Destinations (globs over server, name and namespace) Applications may deploy to.
    pub destinations: Option<Vec<ApplicationDestination>>,
    /// Description.
    pub description: Option<String>,
    /// RBAC roles.
    pub roles: Option<Vec<ProjectRole>>,
    /// Cluster-scoped kinds allowed (none when empty).
    pub cluster_resource_whitelist: Option<Vec<ClusterResourceRestrictionItem>>,
    /// Namespaced kinds denied.
    pub namespace_resource_blacklist: Option<Vec<GroupKind>>,
    /// Orphaned-resource monitoring.
    pub orphaned_resources: Option<OrphanedResourcesMonitorSettings>,
    /// Windows in which syncs are allowed or denied.
    pub sync_windows: Option<Vec<SyncWindow>>,
    /// Namespaced kinds allowed (all when empty).
    pub namespace_resource_whitelist: Option<Vec<GroupKind>>,
    /// GPG keys commits must be signed with (deprecated by `sourceIntegrity`).
    pub signature_keys: Option<Vec<SignatureKey>>,
    /// Cluster-scoped kinds denied.
    pub cluster_resource_blacklist: Option<Vec<ClusterResourceRestrictionItem>>,
    /// Namespaces (globs) Applications of this project may live in.
    pub source_namespaces: Option<Vec<String>>,
    /// Only clusters scoped to this project may be destinations.
    pub permit_only_project_scoped_clusters: Option<bool>,
    /// Service accounts to impersonate per destination.
    pub destination_service_accounts: Option<Vec<ApplicationDestinationServiceAccount>>,
    /// Requirements on source integrity (signed commits).
    pub source_integrity: Option<SourceIntegrity>,
}

impl AppProject {
    /// The `default` project Argo CD creates when it is missing: any repository, any
    /// destination, every kind.
    pub fn default_project(namespace: &str) -> Self {
        let any = || Some("*".to_owned());
        Self {
            metadata: ObjectMeta {
                name: Some(names::argocd::DEFAULT_PROJECT.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            spec: AppProjectSpec {
                source_repos: Some(vec!["*".into()]),
                destinations: Some(vec![ApplicationDestination {
                    server: any(),
                    namespace: any(),
                    name: None,
                }]),
                cluster_resource_whitelist: Some(vec![ClusterResourceRestrictionItem {
                    group: "*".into(),
                    kind: "*".into(),
                    name: None,
                }]),
                ..AppProjectSpec::default()
            },
            status: None,
        }
    }
}

/// The status of an AppProject.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectStatus {
    /// Tokens issued, by role.
    pub jwt_tokens_by_role: Option<BTreeMap<String, JwtTokens>>,
}

/// A list of tokens.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct JwtTokens {
    /// The tokens.
    pub items: Option<Vec<JwtToken>>,
}

/// A token issued for a role (Argo CD's `JWTToken`).
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct JwtToken {
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: Option<i64>,
    /// Token id.
    pub id: Option<String>,
}

/// An RBAC role of a project.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRole {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Casbin policy lines.
    pub policies: Option<Vec<String>>,
    /// Tokens issued.
    #[serde(rename = "jwtTokens")]
    pub jwt_tokens: Option<Vec<JwtToken>>,
    /// OIDC groups bound to the role.
    pub groups: Option<Vec<String>>,
}

/// A cluster-scoped kind, optionally one name (a glob).
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub struct ClusterResourceRestrictionItem {
    /// API group (glob).
    pub group: String,
    /// Kind (glob).
    pub kind: String,
    /// Name (glob); absent or empty for any.
    pub name: Option<String>,
}

/// An API group and kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub struct GroupKind {
    /// API group (glob).
    pub group: String,
    /// Kind (glob).
    pub kind: String,
}

/// Orphaned-resource monitoring.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct OrphanedResourcesMonitorSettings {
    /// Raise an `OrphanedResourceWarning` condition.
    pub warn: Option<bool>,
    /// Resources not counted as orphaned.
    pub ignore: Option<Vec<OrphanedResourceKey>>,
}

/// A resource not counted as orphaned.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct OrphanedResourceKey {
    /// API group.
    pub group: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// A window in which syncs are allowed or denied.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// `allow` or `deny`.
    pub kind: Option<String>,
    /// Start, in cron syntax.
    pub schedule: Option<String>,
    /// Length (a Go duration).
    pub duration: Option<String>,
    /// Applications (globs) it applies to.
    pub applications: Option<Vec<String>>,
    /// Namespaces (globs) it applies to.
    pub namespaces: Option<Vec<String>>,
    /// Clusters (globs) it applies to.
    pub clusters: Option<Vec<String>>,
    /// Manual syncs are allowed even when the window blocks.
    pub manual_sync: Option<bool>,
    /// Time zone of `schedule` (default UTC).
    pub time_zone: Option<String>,
    /// Match applications, namespaces and clusters all together rather than any.
    pub and_operator: Option<bool>,
    /// Description.
    pub description: Option<String>,
    /// A sync in progress may run past the window's end (or into a deny window).
    pub sync_overrun: Option<bool>,
}

/// A GPG key commits must be signed with.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SignatureKey {
    /// Key id, hexadecimal.
    #[serde(rename = "keyID")]
    pub key_id: String,
}

/// The service account to impersonate for a destination.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDestinationServiceAccount {
    /// API server URL (glob).
    pub server: String,
    /// Namespace (glob).
    pub namespace: Option<String>,
    /// Service account (`namespace:name` or a name in the destination namespace).
    pub default_service_account: String,
}

/// Requirements on the integrity of sources.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SourceIntegrity {
    /// Git sources.
    pub git: SourceIntegrityGit,
}

/// Requirements on Git sources.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SourceIntegrityGit {
    /// Policies, each for some repositories.
    pub policies: Vec<SourceIntegrityGitPolicy>,
}

/// A Git policy for some repositories.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SourceIntegrityGitPolicy {
    /// The repositories it applies to.
    pub repos: Vec<SourceIntegrityGitPolicyRepo>,
    /// GPG verification.
    pub gpg: SourceIntegrityGitPolicyGpg,
}

/// A repository criterion.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SourceIntegrityGitPolicyRepo {
    /// URL glob; a leading `!` excludes.
    pub url: String,
}

/// GPG verification of commits or tags.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SourceIntegrityGitPolicyGpg {
    /// Verification mode (`none`, `head`, `strict`).
    pub mode: String,
    /// Trusted key ids.
    pub keys: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::{CustomResourceExt, Resource};
    use serde_json::json;

    #[test]
    fn default_project_allows_everything() {
        let project = AppProject::default_project("argocd");
        assert_eq!(
            serde_json::to_value(&project).unwrap(),
            json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default", "namespace": "argocd"},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            })
        );
    }

    #[test]
    fn names_match_argo_cd() {
        assert_eq!(AppProject::crd_name(), "appprojects.argoproj.io");
        assert_eq!(AppProject::shortnames(), ["appproj", "appprojs"]);
        assert_eq!(AppProject::plural(&()), "appprojects");
    }
}

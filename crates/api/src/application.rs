//! Argo CD's `Application` kind and its spec: where manifests come from, where they go, and
//! when and how they are synced.
//!
//! An Application carries a top-level `operation` beside `spec` and `status` (a requested sync,
//! written by a user or by auto-sync, cleared by the controller when it finishes). kube's
//! `CustomResource` derive cannot express a third top-level field, so [`Application`] is written
//! by hand here with the same traits the derive gives: [`kube::Resource`], [`Serialize`]
//! writing `apiVersion` and `kind`, [`Deserialize`], [`JsonSchema`] and
//! [`kube::CustomResourceExt`].
//!
//! Defaults are never serialized (DESIGN §5): the accessor methods return Argo CD's defaults.

use std::{borrow::Cow, collections::BTreeMap, time::Duration};

use k8s_openapi::{
    apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
        CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresources,
        CustomResourceValidation,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    CustomResourceExt,
    core::{NamespaceResourceScope, Resource, dynamic::ApiResource},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer, ser::SerializeStruct};

use crate::{
    ApplicationSource, ApplicationSourceDirectory, ApplicationSourceHelm,
    ApplicationSourceKustomize, ApplicationSourcePlugin, ApplicationStatus, Operation, SyncOptions,
    defaults,
    duration::{DurationError, parse_duration},
    names,
};

/// An Argo CD Application: a source of manifests kept in sync with a destination cluster.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(description = "Application is a definition of Application resource.")]
pub struct Application {
    /// Standard object metadata.
    #[schemars(skip)]
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: ApplicationSpec,
    /// A requested or running operation (a sync). Cleared when it completes.
    #[serde(default)]
    pub operation: Option<Operation>,
    /// What the controller observed.
    #[serde(default)]
    pub status: Option<ApplicationStatus>,
}

impl Application {
    /// An Application with a name and a spec.
    pub fn new(name: &str, spec: ApplicationSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            operation: None,
            status: None,
        }
    }

    /// The single effective source: the first of `spec.sources` when that is non-empty, else
    /// `spec.source` (see [`ApplicationSpec::source`]).
    pub fn source(&self) -> Option<&ApplicationSource> {
        self.spec.source()
    }

    /// Every effective source (see [`ApplicationSpec::sources`]).
    pub fn sources(&self) -> &[ApplicationSource] {
        self.spec.sources()
    }
}

impl Resource for Application {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Application".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        names::GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        names::VERSION.into()
    }

    fn api_version(_: &()) -> Cow<'_, str> {
        "argoproj.io/v1alpha1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "applications".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Serialize for Application {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 4 + usize::from(self.operation.is_some()) + usize::from(self.status.is_some());
        let mut object = serializer.serialize_struct("Application", fields)?;
        object.serialize_field("apiVersion", &Self::api_version(&()))?;
        object.serialize_field("kind", &Self::kind(&()))?;
        object.serialize_field("metadata", &self.metadata)?;
        object.serialize_field("spec", &self.spec)?;
        if let Some(operation) = &self.operation {
            object.serialize_field("operation", operation)?;
        }
        if let Some(status) = &self.status {
            object.serialize_field("status", status)?;
        }
        object.end()
    }
}

impl CustomResourceExt for Application {
    /// Argo CD's Application CRD: namespaced, short names `app` and `apps`, its four printer
    /// columns, and no subresources (status is written through the main resource).
    fn crd() -> CustomResourceDefinition {
        let column =
            |name: &str, json_path: &str, priority: Option<i32>| CustomResourceColumnDefinition {
                name: name.into(),
                type_: "string".into(),
                json_path: json_path.into(),
                priority,
                ..CustomResourceColumnDefinition::default()
            };
        CustomResourceDefinition {
            metadata: ObjectMeta {
                name: Some(Self::crd_name().into()),
                ..ObjectMeta::default()
            },
            spec: CustomResourceDefinitionSpec {
                group: names::GROUP.into(),
                names: CustomResourceDefinitionNames {
                    kind: "Application".into(),
                    plural: "applications".into(),
                    singular: Some("application".into()),
                    short_names: Some(Self::shortnames().iter().map(|s| s.to_string()).collect()),
                    ..CustomResourceDefinitionNames::default()
                },
                scope: "Namespaced".into(),
                versions: vec![CustomResourceDefinitionVersion {
                    name: names::VERSION.into(),
                    served: true,
                    storage: true,
                    additional_printer_columns: Some(vec![
                        column("Sync Status", ".status.sync.status", None),
                        column("Health Status", ".status.health.status", None),
                        column("Revision", ".status.sync.revision", Some(10)),
                        column("Project", ".spec.project", Some(10)),
                    ]),
                    schema: Some(CustomResourceValidation {
                        open_api_v3_schema: Some(crate::crd::root_schema_for::<Self>()),
                    }),
                    subresources: Some(CustomResourceSubresources::default()),
                    ..CustomResourceDefinitionVersion::default()
                }],
                ..CustomResourceDefinitionSpec::default()
            },
            status: None,
        }
    }

    fn crd_name() -> &'static str {
        "applications.argoproj.io"
    }

    fn api_resource() -> ApiResource {
        ApiResource::erase::<Self>(&())
    }

    fn shortnames() -> &'static [&'static str] {
        &["app", "apps"]
    }
}

/// The desired state of an Application.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The single source. Ignored when `sources` is non-empty.
    pub source: Option<ApplicationSource>,
    /// Where the manifests go.
    pub destination: ApplicationDestination,
    /// The AppProject. Empty means `default` ([`ApplicationSpec::project`]).
    pub project: String,
    /// When and how to sync.
    pub sync_policy: Option<SyncPolicy>,
    /// Differences to ignore when comparing.
    pub ignore_differences: Option<Vec<ResourceIgnoreDifferences>>,
    /// Free-form information shown with the Application.
    pub info: Option<Vec<Info>>,
    /// `status.history` entries to keep (default 10; 0 keeps none).
    pub revision_history_limit: Option<i64>,
    /// Several sources whose manifests are merged. Wins over `source` when non-empty.
    pub sources: Option<Vec<ApplicationSource>>,
    /// Render a dry source and commit the result to a branch, then sync from that branch.
    pub source_hydrator: Option<SourceHydrator>,
}

impl ApplicationSpec {
    /// The project, with `""` meaning `default`.
    pub fn project(&self) -> &str {
        if self.project.is_empty() {
            names::argocd::DEFAULT_PROJECT
        } else {
            &self.project
        }
    }

    /// `revisionHistoryLimit`, default 10.
    pub fn revision_history_limit(&self) -> i64 {
        self.revision_history_limit
            .unwrap_or(defaults::APP_REVISION_HISTORY_LIMIT)
    }

    /// Several sources are in use (`sources` is non-empty).
    pub fn has_multiple_sources(&self) -> bool {
        self.sources.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// The single effective source: the first of `sources` when that is non-empty, else
    /// `source`. Argo CD's `GetSource` also answers the hydrator's sync source when
    /// `sourceHydrator` is set; that needs the dry source's repository and is left to callers
    /// ([`SourceHydrator::sync_source`]).
    pub fn source(&self) -> Option<&ApplicationSource> {
        self.sources().first()
    }

    /// Every effective source: `sources` when non-empty, else `source` alone, else none.
    pub fn sources(&self) -> &[ApplicationSource] {
        match (&self.sources, &self.source) {
            (Some(sources), _) if !sources.is_empty() => sources,
            (_, Some(source)) => std::slice::from_ref(source),
            _ => &[],
        }
    }

    /// Automated sync is on ([`SyncPolicy::automated_enabled`]).
    pub fn automated_sync_enabled(&self) -> bool {
        self.sync_policy
            .as_ref()
            .is_some_and(SyncPolicy::automated_enabled)
    }

    /// The app-wide sync options (empty without a sync policy).
    pub fn sync_options(&self) -> SyncOptions<'_> {
        SyncOptions::new(
            self.sync_policy
                .as_ref()
                .and_then(|p| p.sync_options.as_deref())
                .unwrap_or_default(),
        )
    }
}

/// The cluster and namespace an Application deploys to.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDestination {
    /// API server URL of the cluster. Exactly one of `server` and `name` is expected.
    pub server: Option<String>,
    /// Namespace for namespaced resources that do not name one.
    pub namespace: Option<String>,
    /// Name of the cluster (its cluster secret), instead of `server`.
    pub name: Option<String>,
}

impl ApplicationDestination {
    /// The destination is the cluster the controller runs in (`https://kubernetes.default.svc`
    /// or `in-cluster`).
    pub fn is_in_cluster(&self) -> bool {
        self.server.as_deref() == Some(names::argocd::IN_CLUSTER_SERVER)
            || (self.server.as_deref().unwrap_or_default().is_empty()
                && self.name.as_deref() == Some(names::argocd::IN_CLUSTER_NAME))
    }
}

/// When and how an Application syncs.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Sync automatically when out of sync. Present means on unless `enabled: false`.
    pub automated: Option<SyncPolicyAutomated>,
    /// App-wide sync options (`CreateNamespace=true`, …; see [`SyncOptions`]).
    pub sync_options: Option<Vec<String>>,
    /// Retries of failed syncs.
    pub retry: Option<RetryStrategy>,
    /// Labels and annotations for the namespace `CreateNamespace=true` creates.
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
}

impl SyncPolicy {
    /// Automated sync is on: `automated` is present and `enabled` is not `false` (an absent
    /// `enabled` counts as enabled).
    pub fn automated_enabled(&self) -> bool {
        self.automated.as_ref().is_some_and(|a| a.enabled())
    }

    /// The sync options as a parsed view.
    pub fn sync_options(&self) -> SyncOptions<'_> {
        SyncOptions::new(self.sync_options.as_deref().unwrap_or_default())
    }

    /// One exact option is set (`has_option("CreateNamespace=true")`).
    pub fn has_option(&self, option: &str) -> bool {
        self.sync_options().has(option)
    }
}

/// Automated sync.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicyAutomated {
    /// Delete resources no longer in the source (default false: reported `PruneSkipped`).
    pub prune: Option<bool>,
    /// Sync again when the live state drifts with the revision unchanged (default false).
    pub self_heal: Option<bool>,
    /// Allow a sync that leaves the Application with no resources (default false).
    pub allow_empty: Option<bool>,
    /// `false` turns automated sync off while keeping its settings; absent means on.
    pub enabled: Option<bool>,
}

impl SyncPolicyAutomated {
    /// `enabled`, absent meaning on.
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// `prune`, default false.
    pub fn prune(&self) -> bool {
        self.prune.unwrap_or(false)
    }

    /// `selfHeal`, default false.
    pub fn self_heal(&self) -> bool {
        self.self_heal.unwrap_or(false)
    }

    /// `allowEmpty`, default false.
    pub fn allow_empty(&self) -> bool {
        self.allow_empty.unwrap_or(false)
    }
}

/// Retries of a failed sync.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Retries allowed: 0 (the default) none, negative unlimited.
    pub limit: Option<i64>,
    /// Waits between retries.
    pub backoff: Option<Backoff>,
    /// Retry against the latest revision instead of the one first tried.
    pub refresh: Option<bool>,
}

impl RetryStrategy {
    /// What auto-sync uses when `spec.syncPolicy.retry` is absent: five retries with the
    /// default back-off (`controller/appcontroller.go` `autoSync`).
    pub fn auto_sync_default() -> Self {
        Self {
            limit: Some(defaults::AUTO_SYNC_RETRY_LIMIT),
            ..Self::default()
        }
    }

    /// `limit`, default 0 (no retries); negative means unlimited.
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(0)
    }

    /// Another retry is allowed after `retry_count` retries.
    pub fn allows_retry(&self, retry_count: i64) -> bool {
        let limit = self.limit();
        limit < 0 || retry_count < limit
    }

    /// `refresh`, default false.
    pub fn refresh(&self) -> bool {
        self.refresh.unwrap_or(false)
    }

    /// The wait before retry number `attempt` (0 for the first retry): `duration ×
    /// factor^attempt`, capped at `maxDuration` when that is positive, as Argo CD's
    /// `NextRetryAt`. Defaults: duration 5s, factor 2, maxDuration 3m; durations are Go
    /// durations or a bare number of seconds.
    ///
    /// # Errors
    /// A malformed `duration` or `maxDuration`.
    pub fn next_retry_delay(&self, attempt: i64) -> Result<Duration, DurationError> {
        let backoff = self.backoff.clone().unwrap_or_default();
        let duration = backoff.duration()?;
        let max_duration = backoff.max_duration()?;
        let wait = duration.as_secs_f64() * (backoff.factor() as f64).powf(attempt as f64);
        let wait = if max_duration > Duration::ZERO {
            wait.min(max_duration.as_secs_f64())
        } else {
            wait
        };
        Ok(Duration::try_from_secs_f64(wait.max(0.0)).unwrap_or(Duration::MAX))
    }
}

/// Back-off between sync retries.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// The first wait: a Go duration or a number of seconds (default 5s).
    pub duration: Option<String>,
    /// Multiplier after each retry (default 2).
    pub factor: Option<i64>,
    /// The longest wait (default 3m).
    pub max_duration: Option<String>,
}

impl Backoff {
    /// `duration`, default 5s.
    ///
    /// # Errors
    /// Neither a number of seconds nor a Go duration.
    pub fn duration(&self) -> Result<Duration, DurationError> {
        parse_retry_duration(self.duration.as_deref(), defaults::SYNC_RETRY_DURATION)
    }

    /// `factor`, default 2.
    pub fn factor(&self) -> i64 {
        self.factor.unwrap_or(defaults::SYNC_RETRY_FACTOR)
    }

    /// `maxDuration`, default 3m.
    ///
    /// # Errors
    /// Neither a number of seconds nor a Go duration.
    pub fn max_duration(&self) -> Result<Duration, DurationError> {
        parse_retry_duration(
            self.max_duration.as_deref(),
            defaults::SYNC_RETRY_MAX_DURATION,
        )
    }
}

/// Argo CD's `parseStringToDuration`: empty means the default, digits are seconds, otherwise a
/// Go duration.
fn parse_retry_duration(text: Option<&str>, default: Duration) -> Result<Duration, DurationError> {
    match text {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(seconds) => u64::try_from(seconds)
                .map(Duration::from_secs)
                .map_err(|_| DurationError::Negative(text.to_owned())),
            Err(_) => parse_duration(text),
        },
    }
}

/// Metadata for the namespace `CreateNamespace=true` creates.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ManagedNamespaceMetadata {
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Fields to ignore when comparing resources that match a group, kind, name and namespace.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIgnoreDifferences {
    /// API group (`*` for any).
    pub group: Option<String>,
    /// Kind (`*` for any).
    pub kind: String,
    /// Name (exact; absent for any).
    pub name: Option<String>,
    /// Namespace (exact; absent for any).
    pub namespace: Option<String>,
    /// JSON pointers of ignored fields.
    pub json_pointers: Option<Vec<String>>,
    /// jq path expressions of ignored fields.
    pub jq_path_expressions: Option<Vec<String>>,
    /// Fields owned by these server-side-apply managers are ignored.
    pub managed_fields_managers: Option<Vec<String>>,
}

/// A name/value pair of free-form information.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Info {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Hydration: render the dry source, commit the result to a branch, sync from that branch.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceHydrator {
    /// Where the "don't repeat yourself" manifests live.
    pub dry_source: DrySource,
    /// Where hydrated manifests are committed and synced from.
    pub sync_source: SyncSource,
    /// A staging branch hydrated manifests are pushed to first.
    pub hydrate_to: Option<HydrateTo>,
}

impl SourceHydrator {
    /// The source the Application syncs from: the sync branch and path in the sync repository
    /// (default: the dry source's repository).
    pub fn sync_source(&self) -> ApplicationSource {
        ApplicationSource {
            repo_url: self
                .sync_source
                .repo_url
                .clone()
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| self.dry_source.repo_url.clone()),
            path: Some(self.sync_source.path.clone()),
            target_revision: Some(self.sync_source.target_branch.clone()),
            ..ApplicationSource::default()
        }
    }
}

/// The dry source of a hydrator.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrySource {
    /// Git repository URL.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Revision to hydrate.
    pub target_revision: String,
    /// Directory in the repository.
    pub path: String,
    /// Helm options.
    pub helm: Option<ApplicationSourceHelm>,
    /// Kustomize options.
    pub kustomize: Option<ApplicationSourceKustomize>,
    /// Directory options.
    pub directory: Option<ApplicationSourceDirectory>,
    /// Plugin options.
    pub plugin: Option<ApplicationSourcePlugin>,
}

/// Where hydrated manifests are committed and synced from.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSource {
    /// Branch.
    pub target_branch: String,
    /// Directory in the branch.
    pub path: String,
    /// Repository (default: the dry source's).
    #[serde(rename = "repoURL")]
    pub repo_url: Option<String>,
}

/// A staging branch for hydrated manifests.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HydrateTo {
    /// Branch.
    pub target_branch: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(path: &str) -> ApplicationSource {
        ApplicationSource {
            repo_url: "https://example.com/repo.git".into(),
            path: Some(path.into()),
            ..ApplicationSource::default()
        }
    }

    #[test]
    fn effective_source_prefers_non_empty_sources() {
        let mut spec = ApplicationSpec::default();
        assert_eq!(spec.source(), None);
        assert!(spec.sources().is_empty());
        spec.source = Some(source("single"));
        assert_eq!(spec.source().unwrap().path.as_deref(), Some("single"));
        spec.sources = Some(vec![]);
        assert_eq!(spec.source().unwrap().path.as_deref(), Some("single"));
        assert!(!spec.has_multiple_sources());
        spec.sources = Some(vec![source("first"), source("second")]);
        let app = Application::new("demo", spec);
        assert_eq!(app.source().unwrap().path.as_deref(), Some("first"));
        assert_eq!(app.sources().len(), 2);
    }

    #[test]
    fn defaults_as_argo_cd_applies_them() {
        let spec = ApplicationSpec::default();
        assert_eq!(spec.project(), "default");
        assert_eq!(spec.revision_history_limit(), 10);
        assert!(!spec.automated_sync_enabled());
        assert!(!spec.sync_options().create_namespace());
        let mut source = source("p");
        assert_eq!(source.target_revision(), "HEAD");
        source.target_revision = Some(String::new());
        assert_eq!(source.target_revision(), "HEAD");
        source.target_revision = Some("v1.2.3".into());
        assert_eq!(source.target_revision(), "v1.2.3");
    }

    #[test]
    fn automated_is_on_unless_disabled() {
        let mut policy = SyncPolicy::default();
        assert!(!policy.automated_enabled());
        policy.automated = Some(SyncPolicyAutomated::default());
        assert!(policy.automated_enabled());
        policy.automated.as_mut().unwrap().enabled = Some(false);
        assert!(!policy.automated_enabled());
        policy.sync_options = Some(vec!["CreateNamespace=true".into()]);
        assert!(policy.has_option("CreateNamespace=true"));
        assert!(policy.sync_options().create_namespace());
    }

    #[test]
    fn retry_back_off_doubles_up_to_the_cap() {
        let retry = RetryStrategy::auto_sync_default();
        let delays: Vec<u64> = (0..8)
            .map(|n| retry.next_retry_delay(n).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 180, 180]);
        assert!(retry.allows_retry(4));
        assert!(!retry.allows_retry(5));
        assert!(!RetryStrategy::default().allows_retry(0));
        let unlimited = RetryStrategy {
            limit: Some(-1),
            ..RetryStrategy::default()
        };
        assert!(unlimited.allows_retry(1_000));
    }

    #[test]
    fn retry_back_off_reads_seconds_and_go_durations() {
        let retry = RetryStrategy {
            backoff: Some(Backoff {
                duration: Some("10".into()),
                factor: Some(3),
                max_duration: Some("1m30s".into()),
            }),
            ..RetryStrategy::default()
        };
        let delays: Vec<u64> = (0..4)
            .map(|n| retry.next_retry_delay(n).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [10, 30, 90, 90]);
        let uncapped = RetryStrategy {
            backoff: Some(Backoff {
                duration: Some("250ms".into()),
                max_duration: Some("0".into()),
                ..Backoff::default()
            }),
            ..RetryStrategy::default()
        };
        assert_eq!(
            uncapped.next_retry_delay(10).unwrap(),
            Duration::from_millis(256_000)
        );
        let bad = RetryStrategy {
            backoff: Some(Backoff {
                duration: Some("soon".into()),
                ..Backoff::default()
            }),
            ..RetryStrategy::default()
        };
        assert!(bad.next_retry_delay(0).is_err());
    }

    #[test]
    fn in_cluster_destination() {
        let by_server = ApplicationDestination {
            server: Some("https://kubernetes.default.svc".into()),
            ..ApplicationDestination::default()
        };
        let by_name = ApplicationDestination {
            name: Some("in-cluster".into()),
            ..ApplicationDestination::default()
        };
        let remote = ApplicationDestination {
            server: Some("https://10.0.0.1:6443".into()),
            ..ApplicationDestination::default()
        };
        assert!(by_server.is_in_cluster());
        assert!(by_name.is_in_cluster());
        assert!(!remote.is_in_cluster());
    }

    #[test]
    fn hydrator_sync_source_defaults_to_the_dry_repository() {
        let hydrator = SourceHydrator {
            dry_source: DrySource {
                repo_url: "https://example.com/dry.git".into(),
                target_revision: "HEAD".into(),
                path: "app".into(),
                ..DrySource::default()
            },
            sync_source: SyncSource {
                target_branch: "env/prod".into(),
                path: "app-hydrated".into(),
                repo_url: None,
            },
            hydrate_to: None,
        };
        let source = hydrator.sync_source();
        assert_eq!(source.repo_url, "https://example.com/dry.git");
        assert_eq!(source.target_revision(), "env/prod");
        assert_eq!(source.path.as_deref(), Some("app-hydrated"));
    }

    #[test]
    fn serializes_type_meta_and_a_top_level_operation() {
        let mut app = Application::new("demo", ApplicationSpec::default());
        app.operation = Some(Operation::default());
        let value = serde_json::to_value(&app).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": "demo"},
                "spec": {"destination": {}, "project": ""},
                "operation": {},
            })
        );
        let back: Application = serde_json::from_value(value).unwrap();
        assert_eq!(back, app);
        assert_eq!(Application::plural(&()), "applications");
        assert_eq!(
            Application::api_resource().api_version,
            "argoproj.io/v1alpha1"
        );
    }
}

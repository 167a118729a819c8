//! Sync options: the `Key=value` strings of `spec.syncPolicy.syncOptions`,
//! `operation.sync.syncOptions` and the per-resource `argocd.argoproj.io/sync-options`
//! annotation (comma separated), read as a typed view.
//!
//! Argo CD matches options as exact strings (`CreateNamespace=true`; `SyncOptions.HasOption`),
//! so `CreateNamespace=True` is not the option. sluice does the same, trimming only the spaces
//! around each entry as gitops-engine does for the annotation.

/// How pruned objects are deleted (`PrunePropagationPolicy=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PropagationPolicy {
    /// Dependents are deleted first (Argo CD's default).
    #[default]
    Foreground,
    /// The object is deleted at once, dependents in the background.
    Background,
    /// Dependents are left behind.
    Orphan,
}

impl PropagationPolicy {
    /// The Kubernetes `propagationPolicy` value (`Foreground`, `Background`, `Orphan`).
    pub fn as_kubernetes_str(&self) -> &'static str {
        match self {
            Self::Foreground => "Foreground",
            Self::Background => "Background",
            Self::Orphan => "Orphan",
        }
    }
}

/// Sync option strings, as Argo CD spells them.
pub mod sync_option {
    /// Create the destination namespace.
    pub const CREATE_NAMESPACE: &str = "CreateNamespace=true";
    /// Apply only out-of-sync resources.
    pub const APPLY_OUT_OF_SYNC_ONLY: &str = "ApplyOutOfSyncOnly=true";
    /// Skip the dry run for kinds the cluster does not know yet.
    pub const SKIP_DRY_RUN_ON_MISSING_RESOURCE: &str = "SkipDryRunOnMissingResource=true";
    /// `kubectl apply --validate=false`.
    pub const VALIDATE_FALSE: &str = "Validate=false";
    /// Prune in a last, implicit wave.
    pub const PRUNE_LAST: &str = "PruneLast=true";
    /// Server-side apply.
    pub const SERVER_SIDE_APPLY: &str = "ServerSideApply=true";
    /// No server-side apply (per resource, overrides the app-wide option).
    pub const SERVER_SIDE_APPLY_FALSE: &str = "ServerSideApply=false";
    /// No managed-fields migration from client-side apply.
    pub const CLIENT_SIDE_APPLY_MIGRATION_FALSE: &str = "ClientSideApplyMigration=false";
    /// `kubectl replace` / `create` instead of apply.
    pub const REPLACE: &str = "Replace=true";
    /// Delete and re-create (with `Replace=true`).
    pub const FORCE: &str = "Force=true";
    /// Apply `ignoreDifferences` at sync time too.
    pub const RESPECT_IGNORE_DIFFERENCES: &str = "RespectIgnoreDifferences=true";
    /// Never prune.
    pub const PRUNE_FALSE: &str = "Prune=false";
    /// Prune only after a manual confirmation.
    pub const PRUNE_CONFIRM: &str = "Prune=confirm";
    /// Never delete on Application deletion.
    pub const DELETE_FALSE: &str = "Delete=false";
    /// Delete on Application deletion only after a manual confirmation.
    pub const DELETE_CONFIRM: &str = "Delete=confirm";
    /// Fail when a resource is tracked by another Application.
    pub const FAIL_ON_SHARED_RESOURCE: &str = "FailOnSharedResource=true";
    /// The key of the prune propagation policy option.
    pub const PRUNE_PROPAGATION_POLICY: &str = "PrunePropagationPolicy";
}

/// A read-only view of sync options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOptions<'a> {
    options: Vec<&'a str>,
}

impl<'a> SyncOptions<'a> {
    /// The options of a list (`syncPolicy.syncOptions`, `operation.sync.syncOptions`).
    pub fn new(options: &'a [String]) -> Self {
        Self {
            options: options.iter().map(|o| o.trim()).collect(),
        }
    }

    /// The options of an `argocd.argoproj.io/sync-options` annotation (`A=b,C=d`).
    pub fn from_annotation(value: &'a str) -> Self {
        Self {
            options: value
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    /// The options, trimmed.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.options.iter().copied()
    }

    /// One exact option is set (`has("CreateNamespace=true")`).
    pub fn has(&self, option: &str) -> bool {
        self.options.contains(&option)
    }

    /// The value of the last `key=value` option with this key.
    pub fn value(&self, key: &str) -> Option<&'a str> {
        self.options
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    }

    /// `CreateNamespace=true`.
    pub fn create_namespace(&self) -> bool {
        self.has(sync_option::CREATE_NAMESPACE)
    }

    /// `ApplyOutOfSyncOnly=true`.
    pub fn apply_out_of_sync_only(&self) -> bool {
        self.has(sync_option::APPLY_OUT_OF_SYNC_ONLY)
    }

    /// `SkipDryRunOnMissingResource=true`.
    pub fn skip_dry_run_on_missing_resource(&self) -> bool {
        self.has(sync_option::SKIP_DRY_RUN_ON_MISSING_RESOURCE)
    }

    /// Validation is on unless `Validate=false`.
    pub fn validate(&self) -> bool {
        !self.has(sync_option::VALIDATE_FALSE)
    }

    /// `PrunePropagationPolicy=foreground|background|orphan`; foreground when absent or not one
    /// of those. When several are given, background wins over foreground over orphan, as in
    /// Argo CD's `controller/sync.go`.
    pub fn prune_propagation_policy(&self) -> PropagationPolicy {
        let has = |value: &str| self.value_is(sync_option::PRUNE_PROPAGATION_POLICY, value);
        if has("background") {
            PropagationPolicy::Background
        } else if has("foreground") {
            PropagationPolicy::Foreground
        } else if has("orphan") {
            PropagationPolicy::Orphan
        } else {
            PropagationPolicy::Foreground
        }
    }

    /// Some `key=value` option has exactly this value.
    fn value_is(&self, key: &str, value: &str) -> bool {
        self.options
            .iter()
            .any(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')) == Some(value))
    }

    /// `PruneLast=true`.
    pub fn prune_last(&self) -> bool {
        self.has(sync_option::PRUNE_LAST)
    }

    /// `ServerSideApply=true`.
    pub fn server_side_apply(&self) -> bool {
        self.has(sync_option::SERVER_SIDE_APPLY)
    }

    /// `ServerSideApply=false` (a resource opting out of app-wide server-side apply).
    pub fn server_side_apply_disabled(&self) -> bool {
        self.has(sync_option::SERVER_SIDE_APPLY_FALSE)
    }

    /// The client-side-apply managed-fields migration runs unless
    /// `ClientSideApplyMigration=false`.
    pub fn client_side_apply_migration(&self) -> bool {
        !self.has(sync_option::CLIENT_SIDE_APPLY_MIGRATION_FALSE)
    }

    /// `Replace=true`.
    pub fn replace(&self) -> bool {
        self.has(sync_option::REPLACE)
    }

    /// `Force=true`.
    pub fn force(&self) -> bool {
        self.has(sync_option::FORCE)
    }

    /// `RespectIgnoreDifferences=true`.
    pub fn respect_ignore_differences(&self) -> bool {
        self.has(sync_option::RESPECT_IGNORE_DIFFERENCES)
    }

    /// `Prune=false`.
    pub fn prune_disabled(&self) -> bool {
        self.has(sync_option::PRUNE_FALSE)
    }

    /// `Prune=confirm`.
    pub fn prune_requires_confirmation(&self) -> bool {
        self.has(sync_option::PRUNE_CONFIRM)
    }

    /// `Delete=false`.
    pub fn delete_disabled(&self) -> bool {
        self.has(sync_option::DELETE_FALSE)
    }

    /// `Delete=confirm`.
    pub fn delete_requires_confirmation(&self) -> bool {
        self.has(sync_option::DELETE_CONFIRM)
    }

    /// `FailOnSharedResource=true`.
    pub fn fail_on_shared_resource(&self) -> bool {
        self.has(sync_option::FAIL_ON_SHARED_RESOURCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(options: &[&str]) -> Vec<String> {
        options.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn defaults_without_options() {
        let options = SyncOptions::default();
        assert!(!options.create_namespace());
        assert!(!options.apply_out_of_sync_only());
        assert!(!options.skip_dry_run_on_missing_resource());
        assert!(options.validate());
        assert_eq!(
            options.prune_propagation_policy(),
            PropagationPolicy::Foreground
        );
        assert!(!options.prune_last());
        assert!(!options.server_side_apply());
        assert!(options.client_side_apply_migration());
        assert!(!options.replace());
        assert!(!options.prune_disabled());
    }

    #[test]
    fn reads_every_option() {
        let raw = list(&[
            "Validate=false",
            "CreateNamespace=true",
            "PrunePropagationPolicy=orphan",
            "PruneLast=true",
            " ApplyOutOfSyncOnly=true ",
            "SkipDryRunOnMissingResource=true",
            "Replace=true",
            "ServerSideApply=true",
            "Prune=confirm",
            "Delete=false",
            "RespectIgnoreDifferences=true",
            "FailOnSharedResource=true",
            "ClientSideApplyMigration=false",
            "Force=true",
        ]);
        let options = SyncOptions::new(&raw);
        assert!(!options.validate());
        assert!(options.create_namespace());
        assert_eq!(
            options.prune_propagation_policy(),
            PropagationPolicy::Orphan
        );
        assert!(options.prune_last());
        assert!(options.apply_out_of_sync_only());
        assert!(options.skip_dry_run_on_missing_resource());
        assert!(options.replace());
        assert!(options.force());
        assert!(options.server_side_apply());
        assert!(options.prune_requires_confirmation());
        assert!(!options.prune_disabled());
        assert!(options.delete_disabled());
        assert!(options.respect_ignore_differences());
        assert!(options.fail_on_shared_resource());
        assert!(!options.client_side_apply_migration());
    }

    #[test]
    fn exact_matches_only() {
        let raw = list(&["CreateNamespace=True", "PrunePropagationPolicy=sideways"]);
        let options = SyncOptions::new(&raw);
        assert!(!options.create_namespace());
        assert_eq!(
            options.prune_propagation_policy(),
            PropagationPolicy::Foreground
        );
    }

    #[test]
    fn annotation_is_comma_separated() {
        let options = SyncOptions::from_annotation("Prune=false, ServerSideApply=false,,");
        assert!(options.prune_disabled());
        assert!(options.server_side_apply_disabled());
        assert!(!options.server_side_apply());
        assert_eq!(
            options.iter().collect::<Vec<_>>(),
            ["Prune=false", "ServerSideApply=false"]
        );
        let background = SyncOptions::from_annotation(
            "PrunePropagationPolicy=orphan,PrunePropagationPolicy=background",
        );
        assert_eq!(
            background.prune_propagation_policy().as_kubernetes_str(),
            "Background"
        );
    }
}

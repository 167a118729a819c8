//! `Application.operation`: a requested sync. A user (`argocd app sync`, `sluice app sync`)
//! or auto-sync writes it; the controller runs it, records its progress in
//! `status.operationState` and removes it when it completes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ApplicationSource, Info, RetryStrategy, SyncOptions};

/// A requested operation. Argo CD has one kind, a sync.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The sync to perform.
    pub sync: Option<SyncOperation>,
    /// Who asked for it. Argo CD always writes it (possibly `{}`).
    pub initiated_by: Option<OperationInitiator>,
    /// Free-form information about the operation.
    pub info: Option<Vec<Info>>,
    /// Retries if the sync fails. Argo CD always writes it (possibly `{}`, no retries).
    pub retry: Option<RetryStrategy>,
}

impl Operation {
    /// The retry strategy, `{}` (no retries) when absent.
    pub fn retry(&self) -> RetryStrategy {
        self.retry.clone().unwrap_or_default()
    }

    /// Started by auto-sync rather than a user.
    pub fn is_automated(&self) -> bool {
        self.initiated_by
            .as_ref()
            .is_some_and(|by| by.automated == Some(true))
    }
}

/// Who started an operation.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct OperationInitiator {
    /// The user.
    pub username: Option<String>,
    /// Started by the controller (auto-sync or self-heal).
    pub automated: Option<bool>,
}

/// A sync: apply the target state, optionally only some resources.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperation {
    /// Revision to sync to (default: the source's target revision).
    pub revision: Option<String>,
    /// Delete resources no longer in the source.
    pub prune: Option<bool>,
    /// Only dry-run every apply.
    pub dry_run: Option<bool>,
    /// Apply or hook (the default).
    pub sync_strategy: Option<SyncStrategy>,
    /// Only these resources (a selective sync; hooks do not run).
    pub resources: Option<Vec<SyncOperationResource>>,
    /// Source override for this sync.
    pub source: Option<ApplicationSource>,
    /// Local manifests instead of the source (development only).
    pub manifests: Option<Vec<String>>,
    /// Sync options for this sync, in addition to the Application's.
    pub sync_options: Option<Vec<String>>,
    /// Source overrides for this sync (multi-source).
    pub sources: Option<Vec<ApplicationSource>>,
    /// Revision of each source (multi-source).
    pub revisions: Option<Vec<String>>,
    /// Self-heal attempts for the current revision; reset when a new revision is synced.
    pub auto_heal_attempts_count: Option<i64>,
}

impl SyncOperation {
    /// `prune`, default false.
    pub fn prune(&self) -> bool {
        self.prune.unwrap_or(false)
    }

    /// `dryRun`, default false.
    pub fn dry_run(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }

    /// A selective sync (some resources named).
    pub fn is_selective(&self) -> bool {
        self.resources.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// The sync options of this sync.
    pub fn sync_options(&self) -> SyncOptions<'_> {
        SyncOptions::new(self.sync_options.as_deref().unwrap_or_default())
    }

    /// `autoHealAttemptsCount`, default 0.
    pub fn auto_heal_attempts_count(&self) -> i64 {
        self.auto_heal_attempts_count.unwrap_or(0)
    }

    /// The strategy resolved as Argo CD does (`IsApplyStrategy`, `SyncStrategy.Force`): apply
    /// whenever `apply` is given (it wins over `hook`), else hook, the default.
    pub fn strategy(&self) -> SyncStrategyKind {
        let strategy = self.sync_strategy.as_ref();
        match (
            strategy.and_then(|s| s.apply.as_ref()),
            strategy.and_then(|s| s.hook.as_ref()),
        ) {
            (Some(apply), _) => SyncStrategyKind::Apply {
                force: apply.force.unwrap_or(false),
            },
            (None, hook) => SyncStrategyKind::Hook {
                force: hook.and_then(|h| h.force).unwrap_or(false),
            },
        }
    }
}

/// A resource of a selective sync.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub struct SyncOperationResource {
    /// API group (empty for the core group).
    pub group: Option<String>,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: Option<String>,
}

/// How a sync applies resources.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SyncStrategy {
    /// Plain `kubectl apply`: hooks do not run.
    pub apply: Option<SyncStrategyApply>,
    /// Apply with hooks (the default).
    pub hook: Option<SyncStrategyHook>,
}

/// The apply strategy.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SyncStrategyApply {
    /// `kubectl apply --force`.
    pub force: Option<bool>,
}

/// The hook strategy.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SyncStrategyHook {
    /// `kubectl apply --force`.
    pub force: Option<bool>,
}

/// A sync strategy, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStrategyKind {
    /// Apply only; hooks are skipped.
    Apply {
        /// `--force`.
        force: bool,
    },
    /// Apply with hooks.
    Hook {
        /// `--force`.
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_is_apply_when_given_else_hook() {
        let mut sync = SyncOperation::default();
        assert_eq!(sync.strategy(), SyncStrategyKind::Hook { force: false });
        sync.sync_strategy = Some(SyncStrategy {
            apply: Some(SyncStrategyApply { force: Some(true) }),
            hook: None,
        });
        assert_eq!(sync.strategy(), SyncStrategyKind::Apply { force: true });
        sync.sync_strategy = Some(SyncStrategy {
            apply: Some(SyncStrategyApply::default()),
            hook: Some(SyncStrategyHook { force: Some(true) }),
        });
        assert_eq!(sync.strategy(), SyncStrategyKind::Apply { force: false });
        sync.sync_strategy = Some(SyncStrategy {
            apply: None,
            hook: Some(SyncStrategyHook { force: Some(true) }),
        });
        assert_eq!(sync.strategy(), SyncStrategyKind::Hook { force: true });
    }

    #[test]
    fn selective_and_automated() {
        let sync = SyncOperation {
            resources: Some(vec![SyncOperationResource {
                kind: "ConfigMap".into(),
                name: "x".into(),
                ..SyncOperationResource::default()
            }]),
            ..SyncOperation::default()
        };
        assert!(sync.is_selective());
        assert!(!SyncOperation::default().is_selective());
        let operation = Operation {
            initiated_by: Some(OperationInitiator {
                automated: Some(true),
                username: None,
            }),
            ..Operation::default()
        };
        assert!(operation.is_automated());
        assert_eq!(operation.retry().limit(), 0);
    }
}

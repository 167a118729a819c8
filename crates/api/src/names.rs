//! Every well-known name sluice shares with Argo: labels, annotations, condition types, condition
//! reasons and event reasons. Phases and pause reasons are enums ([`crate::RolloutPhase`],
//! [`crate::AnalysisPhase`], [`crate::PauseReason`]). Argo CD's names are in [`argocd`].

/// The API group of every kind here.
pub const GROUP: &str = "argoproj.io";
/// The API version of every kind here.
pub const VERSION: &str = "v1alpha1";

/// Label keys.
pub mod label {
    /// The pod-template hash on ReplicaSets, pods, Service selectors and AnalysisRuns.
    pub const POD_TEMPLATE_HASH: &str = "rollouts-pod-template-hash";
    /// The controller instance that owns a Rollout, AnalysisRun or Experiment.
    pub const CONTROLLER_INSTANCE_ID: &str = "argo-rollouts.argoproj.io/controller-instance-id";
    /// Why an AnalysisRun exists: `Step`, `Background`, `PrePromotion`, `PostPromotion`.
    pub const ROLLOUT_TYPE: &str = "rollout-type";
    /// The canary step of a step AnalysisRun.
    pub const STEP_INDEX: &str = "step-index";
    /// The AnalysisRun uid on a metric Job.
    pub const ANALYSIS_RUN_UID: &str = "analysisrun.argoproj.io/uid";

    /// Values of [`ROLLOUT_TYPE`].
    pub mod rollout_type {
        /// A canary step analysis.
        pub const STEP: &str = "Step";
        /// A canary background analysis.
        pub const BACKGROUND: &str = "Background";
        /// A blue-green pre-promotion analysis.
        pub const PRE_PROMOTION: &str = "PrePromotion";
        /// A blue-green post-promotion analysis.
        pub const POST_PROMOTION: &str = "PostPromotion";
    }
}

/// Annotation keys.
pub mod annotation {
    /// The revision of a Rollout, ReplicaSet, AnalysisRun or Experiment.
    pub const REVISION: &str = "rollout.argoproj.io/revision";
    /// Earlier revisions a ReplicaSet had, comma separated.
    pub const REVISION_HISTORY: &str = "rollout.argoproj.io/revision-history";
    /// `spec.replicas` of the Rollout when a ReplicaSet was last scaled.
    pub const DESIRED_REPLICAS: &str = "rollout.argoproj.io/desired-replicas";
    /// JSON of the ephemeral metadata injected into a ReplicaSet.
    pub const EPHEMERAL_METADATA: &str = "rollout.argoproj.io/ephemeral-metadata";
    /// Generation of the `workloadRef` target.
    pub const WORKLOAD_GENERATION: &str = "rollout.argoproj.io/workload-generation";
    /// When an old ReplicaSet is scaled down (RFC 3339). Argo gives it no prefix.
    pub const SCALE_DOWN_DEADLINE: &str = "scale-down-deadline";
    /// The Rollout that manages a Service or DestinationRule.
    pub const MANAGED_BY_ROLLOUTS: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
    /// When a ReplicaSet's pods were restarted.
    pub const RESTARTED_AFTER: &str = "argo-rollouts.argoproj.io/restarted-after";
    /// The Experiment that owns a ReplicaSet.
    pub const EXPERIMENT_NAME: &str = "experiment.argoproj.io/name";
    /// The experiment template of a ReplicaSet.
    pub const EXPERIMENT_TEMPLATE_NAME: &str = "experiment.argoproj.io/template-name";
    /// The AnalysisRun of a metric Job.
    pub const ANALYSIS_RUN_NAME: &str = "analysisrun.argoproj.io/name";
    /// The AnalysisRun namespace of a metric Job.
    pub const ANALYSIS_RUN_NAMESPACE: &str = "analysisrun.argoproj.io/namespace";
    /// The metric of a metric Job.
    pub const ANALYSIS_RUN_METRIC_NAME: &str = "analysisrun.argoproj.io/metric-name";
    /// ALB actions the controller manages on an Ingress.
    pub const MANAGED_ALB_ACTIONS: &str = "rollouts.argoproj.io/managed-alb-actions";
    /// ALB annotations the controller manages on an Ingress.
    pub const MANAGED_ALB_ANNOTATIONS: &str = "rollouts.argoproj.io/managed-alb-annotations";
    /// Notification deduplication state on a Rollout.
    pub const NOTIFIED: &str = "notified.notifications.argoproj.io";
    /// Client-side apply's record, never copied to ReplicaSets.
    pub const LAST_APPLIED_CONFIGURATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
    /// The default NGINX annotation prefix.
    pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io";
    /// The default ALB annotation prefix.
    pub const ALB_PREFIX: &str = "alb.ingress.kubernetes.io";
    /// sluice: on a canary Ingress the NGINX router writes, the hash of what it routes.
    pub const ROUTE_VERSION: &str = "sluice.dev/route-version";
    /// sluice: on an Ingress, the [`ROUTE_VERSION`] the embedded ingress serves (written by
    /// the data plane once its routing table holds it).
    pub const SERVED_ROUTE_VERSION: &str = "sluice.dev/served-route-version";
    /// sluice: on an Ingress, the `metadata.generation` the embedded ingress serves — the
    /// mark that the data plane reports back, so the router waits for
    /// [`SERVED_ROUTE_VERSION`].
    pub const SERVED_GENERATION: &str = "sluice.dev/served-generation";
}

/// Condition types of Rollouts and Experiments.
pub mod condition {
    /// The update is moving (or not).
    pub const PROGRESSING: &str = "Progressing";
    /// Minimum availability reached.
    pub const AVAILABLE: &str = "Available";
    /// Paused.
    pub const PAUSED: &str = "Paused";
    /// The desired ReplicaSet is the stable one.
    pub const COMPLETED: &str = "Completed";
    /// Every pod updated and available, strategy complete.
    pub const HEALTHY: &str = "Healthy";
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// A ReplicaSet failed to create pods.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    /// Experiment: running.
    pub const RUNNING: &str = "Running";
}

/// Condition reasons.
pub mod reason {
    /// A new ReplicaSet was created.
    pub const NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
    /// An existing ReplicaSet matches the template.
    pub const FOUND_NEW_REPLICA_SET: &str = "FoundNewReplicaSet";
    /// The new ReplicaSet changed.
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    /// The new ReplicaSet is available.
    pub const NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// The ReplicaSet could not be created.
    pub const REPLICA_SET_CREATE_ERROR: &str = "ReplicaSetCreateError";
    /// The progress deadline passed.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// The rollout was paused.
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// The rollout was resumed.
    pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
    /// The rollout was retried after an abort.
    pub const ROLLOUT_RETRY: &str = "RolloutRetry";
    /// The rollout was aborted.
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    /// The rollout completed.
    pub const ROLLOUT_COMPLETED: &str = "RolloutCompleted";
    /// The rollout is healthy.
    pub const ROLLOUT_HEALTHY: &str = "RolloutHealthy";
    /// Minimum availability.
    pub const AVAILABLE: &str = "AvailableReason";
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Kubernetes event reasons the controllers emit.
pub mod event {
    /// The controller saw the rollout for the first time.
    pub const ROLLOUT_ADDED_TO_INFORMER: &str = "RolloutAddedToInformer";
    /// The rollout's template changed.
    pub const ROLLOUT_UPDATED: &str = "RolloutUpdated";
    /// A ReplicaSet was created.
    pub const NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
    /// A ReplicaSet was scaled: `Scaled up ReplicaSet x (revision N) from a to b`.
    pub const SCALING_REPLICA_SET: &str = "ScalingReplicaSet";
    /// A Service selector changed: `Switched selector for service 'x' from 'a' to 'b'`.
    pub const SWITCH_SERVICE: &str = "SwitchService";
    /// The update completed.
    pub const ROLLOUT_COMPLETED: &str = "RolloutCompleted";
    /// The update did not complete.
    pub const ROLLOUT_NOT_COMPLETED: &str = "RolloutNotCompleted";
    /// A canary step completed: `Rollout step i/n completed (setWeight: 50)`.
    pub const ROLLOUT_STEP_COMPLETED: &str = "RolloutStepCompleted";
    /// The rollout paused: `Rollout is paused (CanaryPauseStep)`.
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// The rollout resumed.
    pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
    /// The rollout aborted.
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    /// The update made no progress within `progressDeadlineSeconds`.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// Router weights changed.
    pub const TRAFFIC_WEIGHT_UPDATED: &str = "TrafficWeightUpdated";
    /// The router failed (or could not express a route step).
    pub const TRAFFIC_ROUTING_ERROR: &str = "TrafficRoutingError";
    /// The NGINX router created the canary Ingress.
    pub const CREATING_CANARY_INGRESS: &str = "CreatingCanaryIngress";
    /// The NGINX router patched the canary Ingress.
    pub const PATCHING_CANARY_INGRESS: &str = "PatchingCanaryIngress";
    /// An AnalysisRun is running.
    pub const ANALYSIS_RUN_RUNNING: &str = "AnalysisRunRunning";
    /// An AnalysisRun succeeded.
    pub const ANALYSIS_RUN_SUCCESSFUL: &str = "AnalysisRunSuccessful";
    /// An AnalysisRun failed.
    pub const ANALYSIS_RUN_FAILED: &str = "AnalysisRunFailed";
    /// An AnalysisRun errored.
    pub const ANALYSIS_RUN_ERROR: &str = "AnalysisRunError";
    /// An AnalysisRun was inconclusive.
    pub const ANALYSIS_RUN_INCONCLUSIVE: &str = "AnalysisRunInconclusive";
    /// Steps were skipped: `Rollback to stable ReplicaSets`.
    pub const SKIP_STEPS: &str = "SkipSteps";
    /// An Istio DestinationRule changed.
    pub const UPDATED_DESTINATION_RULE: &str = "UpdatedDestinationRule";
    /// An SMI TrafficSplit was created.
    pub const TRAFFIC_SPLIT_CREATED: &str = "TrafficSplitCreated";
    /// ALB target group weights verified.
    pub const TARGET_GROUP_VERIFIED: &str = "TargetGroupVerified";
    /// ALB target group weights not verified.
    pub const TARGET_GROUP_UNVERIFIED: &str = "TargetGroupUnverified";
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Argo CD's well-known names: the annotations, labels and finalizers its controller reads and
/// writes, and the defaults for the in-cluster destination, namespace and project.
pub mod argocd {
    /// The in-cluster destination's API server URL.
    pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
    /// The in-cluster destination's name.
    pub const IN_CLUSTER_NAME: &str = "in-cluster";
    /// The namespace Argo CD (and sluice's GitOps controller) runs in and keeps Applications in.
    pub const DEFAULT_NAMESPACE: &str = "argocd";
    /// The project of an Application with `spec.project: ""`, created when missing.
    pub const DEFAULT_PROJECT: &str = "default";
    /// The field manager of server-side applies.
    pub const FIELD_MANAGER: &str = "argocd-controller";

    /// Annotation keys.
    pub mod annotation {
        /// Resource tracking: `<app>:<group>/<kind>:<namespace>/<name>` (Argo CD's default
        /// tracking method).
        pub const TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
        /// Per-resource sync options, comma separated (`Prune=false,ServerSideApply=true`).
        pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
        /// Per-resource compare options (`IgnoreExtraneous`, `ServerSideDiff=true`).
        pub const COMPARE_OPTIONS: &str = "argocd.argoproj.io/compare-options";
        /// On an Application: request a refresh (`normal` or `hard`); removed when done.
        pub const REFRESH: &str = "argocd.argoproj.io/refresh";
        /// On an Application: request hydration (`normal`); removed when done.
        pub const HYDRATE: &str = "argocd.argoproj.io/hydrate";
        /// A resource's sync wave (an integer, default 0).
        pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
        /// Hook types, comma separated (`PreSync`, `Sync`, `PostSync`, `SyncFail`, `Skip`, …).
        pub const HOOK: &str = "argocd.argoproj.io/hook";
        /// When hooks are deleted: `HookSucceeded`, `HookFailed`, `BeforeHookCreation`.
        pub const HOOK_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
        /// `"true"` leaves a resource out of the Application's health.
        pub const IGNORE_HEALTHCHECK: &str = "argocd.argoproj.io/ignore-healthcheck";
        /// Helm's hook annotation, which Argo CD maps onto its hooks.
        pub const HELM_HOOK: &str = "helm.sh/hook";
        /// Helm's hook deletion policy.
        pub const HELM_HOOK_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";
        /// Helm's hook weight, used as the wave of a Helm hook.
        pub const HELM_HOOK_WEIGHT: &str = "helm.sh/hook-weight";
        /// Client-side apply's record of the last applied object.
        pub const LAST_APPLIED_CONFIGURATION: &str =
            super::super::annotation::LAST_APPLIED_CONFIGURATION;

        /// Values of [`REFRESH`].
        pub mod refresh {
            /// Compare again, using cached manifests when the revision is unchanged.
            pub const NORMAL: &str = "normal";
            /// Regenerate manifests too.
            pub const HARD: &str = "hard";
        }

        /// Values of [`HOOK_DELETE_POLICY`].
        pub mod hook_delete_policy {
            /// Delete after the hook succeeds.
            pub const HOOK_SUCCEEDED: &str = "HookSucceeded";
            /// Delete after the hook fails.
            pub const HOOK_FAILED: &str = "HookFailed";
            /// Delete an old hook before creating the new one (the default).
            pub const BEFORE_HOOK_CREATION: &str = "BeforeHookCreation";
        }

        /// Values of [`COMPARE_OPTIONS`].
        pub mod compare_option {
            /// An extraneous resource does not make the Application OutOfSync.
            pub const IGNORE_EXTRANEOUS: &str = "IgnoreExtraneous";
            /// Diff against a server-side apply dry run (on the Application).
            pub const SERVER_SIDE_DIFF: &str = "ServerSideDiff=true";
        }
    }

    /// Label keys.
    pub mod label {
        /// Resource tracking by label (Argo CD's legacy `label` tracking method; the value is
        /// the Application name).
        pub const APP_INSTANCE: &str = "app.kubernetes.io/instance";
        /// Marks Argo CD's Secrets (`cluster`, `repository`, `repo-creds`).
        pub const SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";
    }

    /// Finalizers.
    pub mod finalizer {
        /// On an Application: delete its resources (foreground) before it goes. On an
        /// AppProject: keep it while Applications refer to it.
        pub const RESOURCES: &str = "resources-finalizer.argocd.argoproj.io";
        /// On an Application: delete its resources with background propagation.
        pub const RESOURCES_BACKGROUND: &str = "resources-finalizer.argocd.argoproj.io/background";
        /// On an Application: run PreDelete hooks first.
        pub const PRE_DELETE: &str = "pre-delete-finalizer.argocd.argoproj.io";
        /// On an Application: run PostDelete hooks after.
        pub const POST_DELETE: &str = "post-delete-finalizer.argocd.argoproj.io";
    }
}

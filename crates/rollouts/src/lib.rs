//! The Rollout controller, built as DESIGN §5 says: observe → pure plan → apply.
//!
//! - The model every strategy shares ([`model`]) and the phase with its reason ([`phase`]);
//! - the one [`plan`]: classify the Rollout into a stage, plan the common stages, hand the
//!   others to the strategy's planner ([`blue_green`], [`canary`]) through the shared toolkit
//!   ([`planner`]) and the analysis gate ([`gate`]); the canary's replica math
//!   ([`replica_math`]);
//! - a Rollout's analyses made ready to run ([`analyses`]) and its AnalysisRuns — reading,
//!   creating, terminating, pruning them ([`runs`]);
//! - the status the plan leads to ([`status`]) and its conditions ([`conditions`]);
//! - a Rollout's ReplicaSets — naming, finding the current template's, revisions
//!   ([`replicasets`]);
//! - `spec.restartAt`: pods replaced through evictions ([`restart`]); `spec.workloadRef`: the
//!   template from a Deployment, and what becomes of it ([`workload`]);
//! - around them: reading the informer stores ([`observe`]), carrying out a plan and writing
//!   the status ([`apply`]), indexes over the stores ([`index`]), the wiring ([`controller`])
//!   and Argo's metrics ([`metrics`]);
//! - Argo Rollouts' own controller running beside sluice, found and warned about ([`rival`]).
//!
//! What every controller shares (informers, expectations, events, back-off, Lease election,
//! the pod-template hash) lives in `sluice-reconcile`.

pub mod analyses;
pub mod apply;
pub mod blue_green;
pub mod canary;
pub mod conditions;
pub mod controller;
pub mod gate;
pub mod index;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod phase;
pub mod plan;
pub mod planner;
pub mod replica_math;
pub mod replicasets;
pub mod restart;
pub mod rival;
pub mod routed;
pub mod router;
pub mod runs;
pub mod status;
pub mod stored;
pub mod workload;

//! What every sluice controller shares — the cluster's own controllers, the Rollout
//! controller, and the analysis and GitOps controllers to come — and no planner logic:
//!
//! - [`informer`]: a watch feeding a store, shared or private, with `managedFields` dropped;
//! - [`expectations`]: writes a controller made that its stores do not show yet (client-go's
//!   model), so no reconcile plans from a store older than its own last write;
//! - [`events`]: Kubernetes events with a message digest in their `action`;
//! - [`backoff`]: failure back-off per object;
//! - [`lease`]: leader election on a `coordination.k8s.io` Lease;
//! - [`exposition`]: the Prometheus text format;
//! - [`hash`]: the pod-template hash (FNV-1a of canonical JSON, Kubernetes' safe alphabet);
//! - [`transport`]: pooled HTTP(S) clients over rustls, verifying or not.

pub mod backoff;
pub mod events;
pub mod expectations;
pub mod exposition;
pub mod hash;
pub mod informer;
pub mod lease;
pub mod transport;

//! The embedded Kubernetes-compatible control plane behind `sluice up`: the object store, the
//! HTTP API server that kube-rs and kubectl talk to, and the cluster's own controllers.
//!
//! Its rooms import downward only (DESIGN §4):
//!
//! ```text
//!   cluster                       wires everything; hands the kubelet to the API server
//!     │
//!   controllers, gc ─ kubelet ─ proxy ─ ingress     clients of the API server (kube-rs)
//!     │                 │ implements node::NodeOps
//!   serve ─▶ apiserver ─┴──▶ node (NodeOps: exec, attach, logs, usage)
//!            └ kubectl/ (tables, OpenAPI, protobuf, pod streams)
//!     │                        │
//!   object, admission, defaults, schema, registry, selector       os (process groups,
//!     │                                                               pty, /proc)
//!   api_error ─▶ store
//! ```
//!
//! Beside them, [`prometheus`] runs the `prometheus` binary for `sluice up --prometheus` and
//! follows pods into its scrape targets (a kube-rs client too, using `os` for its process).
//!
//! The API server never imports the kubelet, the controllers or the garbage collector; the
//! object code never imports the API server (its error type is [`api_error`]); patch
//! semantics are the `sluice-patch` crate's.

pub mod admission;
pub mod api_error;
pub mod apiserver;
pub mod authn;
pub mod cluster;
pub mod controllers;
pub mod data_dir;
pub mod defaults;
pub mod events;
pub mod gc;
pub mod ingress;
pub mod kubeconfig;
pub mod node;
pub mod object;
pub mod os;
pub mod prometheus;
pub mod proxy;
pub mod quantity;
pub mod rbac;
pub mod registry;
pub mod scheduling;
pub mod schema;
pub mod selector;
pub mod serve;
pub mod store;
pub mod tls;

pub use cluster::{Cluster, ClusterConfig, ClusterError, IngressConfig};
pub use data_dir::{DataDir, DataDirError};
pub mod kubelet;

//! The embedded Kubernetes-compatible control plane behind `sluice up`: the object store, the
//! HTTP API server that kube-rs and kubectl talk to, and the cluster's own controllers.

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
pub mod proxy;
pub mod quantity;
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

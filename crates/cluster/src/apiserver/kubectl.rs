//! The API server's kubectl-fidelity corner: what a generic resource handler needs only so
//! kubectl (and client-go) behave exactly as against a real cluster — server-side printing
//! (`table`, for `kubectl get`), the OpenAPI v3 documents kubectl validates and explains
//! against (`openapi`), the protobuf request bodies kubectl's typed generators send
//! ([`protobuf`]), and the upgraded pod streams of `exec`, `attach`, `cp` and `port-forward`
//! over SPDY and WebSocket ([`streaming`]).
//!
//! Layering: inside the API server, over the store and the object code; the streams reach the
//! node through [`crate::node::NodeOps`] and the OS through [`crate::os`], never the kubelet.

pub(super) mod openapi;
pub mod protobuf;
pub mod streaming;
pub(super) mod table;

//! sluice's GitOps side, Argo CD's job: an `Application` names a Git repository, a revision
//! and a path; the controller renders the path's manifests, compares them with the cluster
//! (Argo CD's three-way diff and health), and syncs — applies what differs, prunes what Git
//! dropped — when a user or auto-sync asks, with self-heal and retry as Argo CD times them.
//!
//! - [`repository`]: bare mirrors of git repositories, fetched and read with libgit2;
//! - [`manifests`]: a directory source's objects;
//! - [`sources`]: which tool renders a source; [`kustomize`]: kustomize sources; [`helm`]:
//!   Helm charts; [`charts`]: Helm chart repositories;
//! - [`tracking`]: which Application an object belongs to;
//! - [`diff`]: whether a live object differs from Git;
//! - [`health`]: resource health per kind;
//! - [`credentials`]: repository Secrets; [`known_hosts`]: trusted ssh host keys;
//!   [`webhook`]: Git push webhooks.

pub mod apply;
pub mod autosync;
pub mod charts;
pub mod compare;
pub mod controller;
pub mod credentials;
pub mod diff;
pub mod health;
pub mod helm;
pub mod hooks;
pub mod ignore;
pub mod jq;
pub mod known_hosts;
pub mod kustomize;
pub mod live;
pub mod manifests;
pub mod operation;
pub mod project;
pub mod render;
pub mod repository;
pub mod sources;
pub mod status;
pub mod sync;
pub mod tracking;
pub mod watch;
pub mod webhook;

//! What the operating system offers local containers and the commands `exec` runs, below both
//! the kubelet and the API server's streams: process groups with a parent-death signal and
//! their signals ([`group`]), pseudo-terminals ([`terminal`]) and the CPU and memory processes
//! use, read from `/proc` ([`usage`]). Linux only; no Kubernetes objects here.
//!
//! Layering: the lowest room of the control plane next to the store — it imports nothing from
//! the crate, and the kubelet, the API server's streams and the metrics API use it.

pub mod group;
pub mod terminal;
pub mod usage;

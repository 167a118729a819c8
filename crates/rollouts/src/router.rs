//! The seam between the canary planner and the traffic routers (Argo's
//! `TrafficRoutingReconciler`): a [`Router`] is built from the objects it owns as the stores
//! hold them, is told what the canary's traffic should be — hashes, header and mirror routes,
//! the weight — in Argo's order, and answers with the writes that bring its objects there and
//! whether the data plane already serves what it last wrote. Pure: the writes are actions of
//! the plan, carried out by [`crate::apply`]. One module per router: [`nginx`].
//!
//! What the next routers need from this seam: Istio (VirtualService weights by host or
//! subset, DestinationRule subsets through [`Router::update_hash`], header and mirror routes
//! as managed HTTP routes), SMI (a `TrafficSplit` it creates and owns), Gateway API (an
//! `HTTPRoute`'s backend weights, header matches as extra rules) and Traefik (a weighted
//! `TraefikService`) each need their objects observed (a store per kind), a [`RouteWrite`]
//! variant that patches an object of any kind, and — ALB — a [`Router::verify_weight`] that
//! reads what the load balancer reports.

pub mod nginx;

use serde_json::Value;
use sluice_api::{SetHeaderRoute, SetMirrorRoute};

/// A write a router asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteWrite {
    /// Create an Ingress (the whole object).
    CreateIngress {
        /// Its name.
        name: String,
        /// The object.
        object: Value,
        /// Argo's event for it: reason and message.
        event: (&'static str, String),
    },
    /// Merge-patch an Ingress.
    PatchIngress {
        /// Its name.
        name: String,
        /// The merge patch.
        patch: Value,
        /// Argo's event for it: reason and message.
        event: (&'static str, String),
    },
}

/// Whether a router could express a route step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Done (or nothing to do).
    Done,
    /// The router cannot express it: why (a Warning event; the step completes, as in Argo).
    Unsupported(String),
}

/// A Rollout's router as observed, ready to be told what to do.
#[derive(Debug, Clone)]
pub enum Observed {
    /// NGINX.
    Nginx(nginx::Nginx),
}

impl Observed {
    /// A router to tell this reconcile's split to.
    pub fn start(&self) -> Box<dyn Router> {
        match self {
            Self::Nginx(nginx) => Box::new(nginx.clone()),
        }
    }
}

/// A traffic router, holding what it observed of its objects and what it was told so far.
pub trait Router {
    /// Its name in events (Argo's `Type()`: `Nginx`, …).
    fn name(&self) -> &'static str;
    /// The canary and stable hashes (routers that split by subset point them there).
    fn update_hash(&mut self, canary: &str, stable: &str);
    /// The canary's weight out of `maxTrafficWeight`.
    fn set_weight(&mut self, weight: i32);
    /// A header route (`setHeaderRoute`; no match removes it).
    fn set_header_route(&mut self, route: &SetHeaderRoute) -> Support;
    /// A mirror route (`setMirrorRoute`; no match removes it).
    fn set_mirror_route(&mut self, route: &SetMirrorRoute) -> Support;
    /// Drops every header and mirror route (promotion, abort, a canary with no pods).
    fn remove_managed_routes(&mut self);
    /// Whether the data plane serves what [`Router::writes`] leads to: `None` when it cannot
    /// tell (a router that does not report back).
    fn verify_weight(&self) -> Option<bool>;
    /// The writes that bring the live objects to what the router was told.
    fn writes(&self) -> Vec<RouteWrite>;
}

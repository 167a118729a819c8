//! Kubernetes' "expectations": pods a controller created or deleted that its store may not show
//! yet. The next reconcile of the owner waits for them (briefly), so it never acts on a stale
//! view and, say, creates the same pods twice.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// How long to wait for the store before acting anyway.
const PATIENCE: Duration = Duration::from_secs(5);

struct Expected {
    created: Vec<String>,
    deleted: Vec<String>,
    since: Instant,
}

/// Expectations per owner uid.
#[derive(Default)]
pub struct Expectations(Mutex<HashMap<String, Expected>>);

impl Expectations {
    /// Records what a reconcile of `owner` did.
    pub fn expect(&self, owner: &str, created: Vec<String>, deleted: Vec<String>) {
        if created.is_empty() && deleted.is_empty() {
            return;
        }
        let expected = Expected {
            created,
            deleted,
            since: Instant::now(),
        };
        self.lock().insert(owner.to_owned(), expected);
    }

    /// Whether `owned` (what the store shows) reflects the last reconcile of `owner`.
    pub fn satisfied(&self, owner: &str, owned: &[&Pod]) -> bool {
        let mut map = self.lock();
        let Some(expected) = map.get(owner) else {
            return true;
        };
        let seen = |name: &String| owned.iter().find(|p| p.name_any() == *name);
        let created = expected.created.iter().all(|n| seen(n).is_some());
        let deleted = expected
            .deleted
            .iter()
            .all(|n| seen(n).is_none_or(|p| p.metadata.deletion_timestamp.is_some()));
        if (created && deleted) || expected.since.elapsed() > PATIENCE {
            map.remove(owner);
            return true;
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expected>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

//! Failure back-off per object: a failed reconcile is retried after 0.5 s, doubling with each
//! failure in a row of the same object up to 5 minutes, so a lasting error (RBAC, a rejected
//! write) does not spin; a success forgets the count.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Duration};

/// The first retry.
const FIRST: Duration = Duration::from_millis(500);
/// The longest wait.
const LONGEST: Duration = Duration::from_secs(300);
/// Objects failing at once that are counted; past it the counts start over (a controller
/// that never reports successes keys by object version, so its map must not grow forever).
const CAPACITY: usize = 4096;

/// Failures in a row, per object.
#[derive(Debug)]
pub struct Backoff<K> {
    failures: Mutex<HashMap<K, u32>>,
}

impl<K> Default for Backoff<K> {
    fn default() -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> Backoff<K> {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<K, u32>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a failure of `key`: how many in a row, and how long to wait before retrying.
    pub fn failed(&self, key: K) -> (u32, Duration) {
        let failures = {
            let mut map = self.map();
            if map.len() >= CAPACITY && !map.contains_key(&key) {
                map.clear();
            }
            let count = map.entry(key).or_default();
            *count = count.saturating_add(1);
            *count
        };
        let delay = FIRST
            .saturating_mul(1 << failures.saturating_sub(1).min(10))
            .min(LONGEST);
        (failures, delay)
    }

    /// `key` succeeded: its count starts again.
    pub fn succeeded(&self, key: &K) {
        self.map().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_five_minutes_and_a_success_resets_them() {
        let backoff = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| backoff.failed("a").1).collect();
        assert_eq!(waits[0], Duration::from_millis(500));
        assert_eq!(waits[1], Duration::from_secs(1));
        assert_eq!(waits[3], Duration::from_secs(4));
        assert_eq!(waits[11], Duration::from_secs(300));
        assert_eq!(backoff.failed("b"), (1, Duration::from_millis(500)));
        backoff.succeeded(&"a");
        assert_eq!(backoff.failed("a").0, 1);
    }
}

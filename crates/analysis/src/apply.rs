//! Carrying out a pass: the status written through the run itself (AnalysisRun has no status
//! subresource) as a merge patch carrying the `resourceVersion` it was planned from, so a run
//! changed meanwhile (a `terminate`, another controller's write) is a conflict, not an
//! overwrite; the events; the deletion of a run whose TTL passed. Every write is recorded as an
//! expectation, so no pass plans from a store older than the last write.

use jiff::Timestamp;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Map, Value, json};
use sluice_api::{AnalysisRun, AnalysisRunStatus};
use sluice_reconcile::{
    events::{self, Recorder},
    expectations::Expectations,
};

use crate::plan::Event;

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The run changed since it was read (HTTP 409).
    #[error("the AnalysisRun changed since it was read")]
    Conflict,
    /// Another API error.
    #[error("API call failed: {0}")]
    Api(#[from] kube::Error),
    /// The status could not be encoded.
    #[error("encoding the status: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The fields of `new` that differ from `old`, as a JSON merge patch (`null` for removed
/// ones); `None` when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return (old != new).then(|| new.clone());
    };
    let mut patch = Map::new();
    for (key, want) in new {
        match old.get(key) {
            Some(have) if have == want => {}
            Some(have @ Value::Object(_)) if want.is_object() => {
                if let Some(inner) = merge_diff(have, want) {
                    patch.insert(key.clone(), inner);
                }
            }
            _ => {
                patch.insert(key.clone(), want.clone());
            }
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The expectation owner of a run.
pub fn owner_key(run: &AnalysisRun) -> String {
    format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any())
}

/// Where a pass writes.
pub struct Target<'a> {
    /// The client.
    pub client: &'a Client,
    /// The event recorder.
    pub recorder: &'a Recorder,
    /// Writes not yet seen in the store.
    pub expectations: &'a Expectations,
    /// The run as read.
    pub run: &'a AnalysisRun,
}

impl Target<'_> {
    fn api(&self) -> Api<AnalysisRun> {
        Api::namespaced(
            self.client.clone(),
            &self.run.namespace().unwrap_or_default(),
        )
    }

    /// Writes `status` when it differs from the run's; whether it wrote.
    ///
    /// # Errors
    /// [`ApplyError::Conflict`] when the run changed since it was read.
    pub async fn write_status(&self, status: &AnalysisRunStatus) -> Result<bool, ApplyError> {
        let old = serde_json::to_value(&self.run.status)?;
        let new = serde_json::to_value(status)?;
        let Some(diff) = merge_diff(&old, &new) else {
            return Ok(false);
        };
        let patch = json!({
            "metadata": {"resourceVersion": self.run.resource_version()},
            "status": diff,
        });
        match self
            .api()
            .patch(
                &self.run.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(written) => {
                self.expectations.wrote(&owner_key(self.run), &written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Err(ApplyError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Records `events` on the run.
    pub async fn record(&self, events: &[Event]) {
        let reference = self.run.object_ref(&());
        for event in events {
            events::record(
                self.recorder,
                &reference,
                event.warning,
                &event.reason,
                event.message.clone(),
            )
            .await;
        }
    }

    /// Deletes the run (its TTL passed); a run already gone is fine.
    ///
    /// # Errors
    /// The API's.
    pub async fn delete(&self, now: Timestamp) -> Result<(), ApplyError> {
        tracing::info!(
            "analysisrun {}: TTL passed at {now}, deleting",
            owner_key(self.run)
        );
        match self
            .api()
            .delete(&self.run.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.expectations.deleted(
                    &owner_key(self.run),
                    sluice_reconcile::expectations::key(self.run),
                );
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_fields_become_null_and_equal_ones_are_left_out() {
        let old =
            json!({"phase": "Running", "message": "x", "runSummary": {"count": 1, "error": 0}});
        let new = json!({"phase": "Failed", "runSummary": {"count": 1, "error": 1}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"phase": "Failed", "message": null, "runSummary": {"error": 1}}))
        );
        assert_eq!(merge_diff(&new, &new), None);
        assert_eq!(merge_diff(&Value::Null, &new), Some(new.clone()));
    }
}

//! Kubernetes patch semantics as pure functions over JSON values, shared by the embedded API
//! server and the coming GitOps diff (which may not depend on the cluster crate): JSON merge
//! patch (RFC 7386) and JSON patch (RFC 6902) by media type ([`apply`](fn@apply)), strategic merge
//! patch with its schema knowledge — the merge keys Kubernetes' `patchMergeKey` tags give
//! ([`strategic`]), the three-way patch `kubectl apply` and Argo CD's diff compute from
//! last-applied, desired and live ([`three_way`](mod@three_way)), and the server-side apply merge
//! with its field ownership ([`mod@apply`]). No IO; the API server maps [`PatchError`] to `Status`
//! answers (and refuses strategic patches for custom resources).

pub mod apply;
pub mod strategic;
pub mod three_way;

pub use three_way::three_way;

use serde_json::Value;

/// The patch formats clients send, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// The kind for a `Content-Type` header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Why a patch was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not a patch of its kind (400).
    #[error("the patch does not decode: {0}")]
    Decode(String),
    /// The patch does not apply to the document, or a `test` failed (422).
    #[error("the patch does not apply: {0}")]
    Apply(String),
    /// This server does not apply patches of this kind (415).
    #[error("patches of this kind are not supported")]
    Unsupported,
}

/// Applies `patch` to `document` in place. On error the document is unchanged.
///
/// # Errors
/// [`PatchError`] as above.
pub fn apply(kind: PatchKind, document: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match kind {
        PatchKind::Merge => {
            json_patch::merge(document, patch);
            Ok(())
        }
        PatchKind::Json => {
            let operations: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| PatchError::Decode(e.to_string()))?;
            let mut patched = document.clone();
            json_patch::patch(&mut patched, &operations)
                .map_err(|e| PatchError::Apply(e.to_string()))?;
            *document = patched;
            Ok(())
        }
        PatchKind::Strategic => {
            let mut patched = document.clone();
            strategic::apply(&mut patched, patch)?;
            *document = patched;
            Ok(())
        }
        PatchKind::Apply => Err(PatchError::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_replaces_lists_and_null_deletes() {
        let mut doc = json!({"a": 1, "b": [1, 2], "c": {"d": 1, "e": 2}});
        apply(
            PatchKind::Merge,
            &mut doc,
            &json!({"a": null, "b": [3], "c": {"e": null}}),
        )
        .unwrap();
        assert_eq!(doc, json!({"b": [3], "c": {"d": 1}}));
    }

    #[test]
    fn json_patch_test_failure_changes_nothing() {
        let mut doc = json!({"a": 1});
        let patch = json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 1}]);
        assert!(matches!(
            apply(PatchKind::Json, &mut doc, &patch),
            Err(PatchError::Apply(_))
        ));
        assert_eq!(doc, json!({"a": 1}));
        assert!(matches!(
            apply(PatchKind::Json, &mut doc, &json!({"op": "x"})),
            Err(PatchError::Decode(_))
        ));
    }

    #[test]
    fn content_types_map_to_kinds() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
        assert_eq!(PatchKind::from_content_type("text/plain"), None);
    }
}

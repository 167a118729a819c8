//! API errors in Kubernetes' own shape: every failure answers with a `Status` object carrying
//! the HTTP code, a machine-readable reason, a message and, where known, the object's details.
//!
//! Layering: below the API server and the object code alike — `object`, `admission` and the
//! garbage collector fail with it, and the API server answers it; it knows only the registry's
//! resource types and the store's errors.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};

use crate::{registry::ResourceType, store::StoreError};

/// One field problem inside an `Invalid` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, …
    pub reason: &'static str,
    /// Path of the field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// An error answered as a `Status`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes reason (`NotFound`, `Conflict`, …).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details` of the Status, when the error concerns one object.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, rt: &ResourceType, name: &str) -> Self {
        self.details = Some(json!({"name": name, "group": rt.group, "kind": rt.resource}));
        self
    }

    /// 404: the object does not exist.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified_name()),
        )
        .with_details(rt, name)
    }

    /// 404: a namespace does not exist.
    pub fn namespace_not_found(namespace: &str) -> Self {
        let mut err = Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        );
        err.details = Some(json!({"name": namespace, "kind": "namespaces"}));
        err
    }

    /// 404: the server has no such path or resource. Its details are empty, as Kubernetes
    /// sends them (kubectl tells a missing route from a missing object by that).
    pub fn no_route(what: &str) -> Self {
        let mut err = Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({what})"),
        );
        err.details = Some(json!({}));
        err
    }

    /// 409: the object already exists.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_name()),
        )
        .with_details(rt, name)
    }

    /// 409: the write was based on a stale resourceVersion or failed a precondition.
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified_name()
            ),
        )
        .with_details(rt, name)
    }

    /// 409 for a stale resourceVersion.
    pub fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: the object is invalid.
    pub fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = format!(
            "{}.{} \"{name}\" is invalid: {}",
            rt.kind,
            if rt.group.is_empty() {
                "core"
            } else {
                &rt.group
            },
            summary.join(", ")
        );
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        let mut err = Self::new(422, "Invalid", message);
        err.details =
            Some(json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes}));
        err
    }

    /// 422 for one invalid field.
    pub fn invalid_field(
        rt: &ResourceType,
        name: &str,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        Self::invalid(
            rt,
            name,
            vec![Cause {
                reason: "FieldValueInvalid",
                field: field.into(),
                message: message.into(),
            }],
        )
    }

    /// 400: the request cannot be understood.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401: no valid bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403: the request is not allowed.
    pub fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {why}", rt.qualified_name()),
        )
        .with_details(rt, name)
    }

    /// 403 from authorization, as Kubernetes' `NewForbidden`: `{resource}[.{group}] ["{name}"]
    /// is forbidden: {why}` (`forbidden: {why}` for a non-resource URL), with `details` naming
    /// what is set of the group, the resource (as `kind`) and the object.
    pub fn forbidden_request(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let message = match (resource.is_empty(), name.is_empty()) {
            (true, _) => format!("forbidden: {why}"),
            (false, true) => format!("{qualified} is forbidden: {why}"),
            (false, false) => format!("{qualified} {name:?} is forbidden: {why}"),
        };
        let mut details = serde_json::Map::new();
        for (field, value) in [("name", name), ("group", group), ("kind", resource)] {
            if !value.is_empty() {
                details.insert(field.into(), json!(value));
            }
        }
        let mut error = Self::new(403, "Forbidden", message);
        error.details = Some(Value::Object(details));
        error
    }

    /// 405: the verb is not supported on this path.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 410: a resourceVersion is older than the retained history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 413: the body is too large.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415: the patch type is not supported for this kind.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"
            ),
        )
    }

    /// 500: the server failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!("object store: {err}");
        Self::internal(format!("storage error: {err}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// Result of an API operation.
pub type ApiResult<T> = Result<T, ApiError>;

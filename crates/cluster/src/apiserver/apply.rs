//! Server-side apply requests (`PATCH` with `application/apply-patch+yaml`): create when
//! absent (201), else merge the applied config under the field manager's ownership; a field
//! another manager owns with another value is a 409 naming it, unless `force`. The merge and
//! the ownership rules are `sluice_patch::apply`'s.

use axum::response::Response;
use http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    ApiError, ApiResult, ApiServer, Cause, ResourceRequest, json_bytes, view,
    write::{create_object, modify, validate_fields, with_warnings},
};
use sluice_patch as patch;

use crate::{object, store::ObjectKey};

/// Server-side apply: create when absent (201), else merge the applied config under the field
/// manager's ownership (409 on another applier's field unless `force`).
pub(super) fn server_side_apply(
    server: &ApiServer,
    request: &ResourceRequest,
) -> ApiResult<Response> {
    let rt = request.rt.clone();
    let manager = request
        .query
        .get("fieldManager")
        .ok_or_else(|| ApiError::bad_request("fieldManager is required for apply requests"))?
        .to_owned();
    let force = request.query.flag("force");
    let mut applied: Value = match serde_json::from_slice(&request.body) {
        Ok(value) => value,
        Err(_) => std::str::from_utf8(&request.body)
            .ok()
            .and_then(|text| serde_saphyr::from_str(text).ok())
            .ok_or_else(|| ApiError::bad_request("the apply body is neither JSON nor YAML"))?,
    };
    object::check_body(
        &rt,
        &request.path.version,
        request.namespace(),
        &mut applied,
    )?;
    let name = request.path.name.clone().unwrap_or_default();
    if object::meta_str(&applied, "name") != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            object::meta_str(&applied, "name")
        )));
    }
    let now = object::timestamp(Timestamp::now());
    let api_version = rt.api_version(&request.path.version);
    let key = ObjectKey::new(request.namespace().unwrap_or_default(), &name);
    let conflict = |conflicts: Vec<patch::apply::Conflict>| {
        let causes = conflicts
            .iter()
            .map(|c| Cause {
                reason: "FieldManagerConflict",
                field: c.field.clone(),
                message: format!("conflict with \"{}\"", c.manager),
            })
            .collect::<Vec<_>>();
        let summary: Vec<String> = conflicts
            .iter()
            .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
            .collect();
        let mut err = ApiError::conflict(
            &rt,
            &name,
            &format!(
                "Apply failed with {} conflict(s): {}",
                conflicts.len(),
                summary.join(", ")
            ),
        );
        if let Some(details) = err.details.as_mut() {
            details["causes"] = serde_json::to_value(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default();
        }
        err
    };
    if server.store.get(&rt.storage, &key).is_none() {
        let warnings = validate_fields(&rt, &request.path.version, &request.query, &mut applied)?;
        let fresh = patch::apply::apply(
            &json!({"metadata": {}}),
            &applied,
            &manager,
            force,
            &api_version,
            &now,
        )
        .map_err(conflict)?;
        let mut object = applied.clone();
        object["metadata"]["managedFields"] = fresh["metadata"]["managedFields"].clone();
        let created = create_object(
            server,
            &rt,
            view::input(&rt, object),
            request.query.dry_run(),
        )?;
        let body = serde_json::to_vec(&view::output_value(&rt, &request.path.version, &created))
            .unwrap_or_default();
        return Ok(with_warnings(
            json_bytes(StatusCode::CREATED, body),
            &warnings,
        ));
    }
    let version = request.path.version.clone();
    let rt_inner = rt.clone();
    modify(server, request, move |current| {
        let rt = rt_inner;
        let document = view::output_value(&rt, &version, current);
        let result = patch::apply::apply(&document, &applied, &manager, force, &api_version, &now)
            .map_err(conflict)?;
        Ok(view::input(&rt, result))
    })
}

//! Create-only kinds answered per request and never stored: access reviews (`kubectl auth
//! can-i`, `can-i --list`), identity reviews (`kubectl auth whoami`, TokenReview), and the
//! `serviceaccounts/token` subresource (`kubectl create token`). Access reviews ask the same
//! RBAC policy that authorizes requests ([`crate::rbac`]), so they answer truthfully: a
//! SubjectAccessReview for the user and groups it names, a SelfSubjectAccessReview and a
//! SelfSubjectRulesReview for the requester, a LocalSubjectAccessReview in its namespace.

use axum::response::Response;
use http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiServer, Cause, ResourceRequest, json_value};
use crate::{
    authn::{API_AUDIENCE, Claims, User},
    object,
    rbac::{Attributes, PolicyRule, ResourceAttributes},
    store::{ObjectKey, ResourceKey},
};

/// The shortest and longest token lifetimes Kubernetes accepts, and its default.
const TOKEN_SECONDS: (i64, i64, i64) = (600, 1 << 32, 3600);

fn body(request: &ResourceRequest) -> ApiResult<Value> {
    let mut value = super::write::parse_body(request)?;
    object::check_body(
        &request.rt,
        &request.path.version,
        request.namespace(),
        &mut value,
    )?;
    Ok(value)
}

/// The user a request was authenticated as (in-process clients are the administrator).
fn requester(request: &ResourceRequest) -> User {
    request.user.clone().unwrap_or_else(User::admin)
}

/// `POST` to a review kind: the review with its `status` filled in (201, as Kubernetes).
pub fn create(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let mut review = body(request)?;
    let status = match request.rt.resource.as_str() {
        "selfsubjectaccessreviews" => access(server, &requester(request), &review["spec"]),
        "subjectaccessreviews" => access(server, &subject(&review["spec"]), &review["spec"]),
        "localsubjectaccessreviews" => {
            let namespace = request.namespace().unwrap_or_default();
            let asked = review["spec"]["resourceAttributes"]["namespace"]
                .as_str()
                .unwrap_or_default();
            if asked != namespace {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {namespace}"
                )));
            }
            access(server, &subject(&review["spec"]), &review["spec"])
        }
        "selfsubjectrulesreviews" => {
            let namespace = review["spec"]["namespace"].as_str().unwrap_or_default();
            rules(server, &requester(request), namespace)
        }
        "selfsubjectreviews" => json!({"userInfo": requester(request).to_json()}),
        "tokenreviews" => token_review(server, &review["spec"]),
        other => return Err(ApiError::no_route(other)),
    };
    review["status"] = status;
    review["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_value(StatusCode::CREATED, &review))
}

/// The user a SubjectAccessReview asks about.
fn subject(spec: &Value) -> User {
    let text = |field: &str| spec[field].as_str().unwrap_or_default().to_owned();
    User {
        username: text("user"),
        uid: text("uid"),
        groups: spec["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The status of an access review: `allowed`, and the reason RBAC gives.
fn access(server: &ApiServer, user: &User, spec: &Value) -> Value {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let asked = if spec["resourceAttributes"].is_object() {
        let r = &spec["resourceAttributes"];
        Attributes::resource(
            &text(&r["verb"]),
            ResourceAttributes {
                namespace: text(&r["namespace"]),
                group: text(&r["group"]),
                resource: text(&r["resource"]),
                subresource: text(&r["subresource"]),
                name: text(&r["name"]),
            },
        )
    } else {
        let n = &spec["nonResourceAttributes"];
        Attributes::non_resource(&text(&n["verb"]), &text(&n["path"]))
    };
    let decision = server.authorize(user, &asked);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    status
}

/// The status of a SelfSubjectRulesReview: every rule the user holds in `namespace`, split
/// as Kubernetes splits them, and `incomplete` with the errors of bindings to missing roles.
fn rules(server: &ApiServer, user: &User, namespace: &str) -> Value {
    let (rules, errors) = server.policy().rules_for(user, namespace);
    let resource: Vec<Value> = rules
        .iter()
        .filter(|r| !r.resources.is_empty())
        .map(|r| {
            PolicyRule {
                non_resource_urls: Vec::new(),
                ..r.clone()
            }
            .to_json()
        })
        .collect();
    let non_resource: Vec<Value> = rules
        .iter()
        .filter(|r| !r.non_resource_urls.is_empty())
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({
        "resourceRules": resource,
        "nonResourceRules": non_resource,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}

fn token_review(server: &ApiServer, spec: &Value) -> Value {
    let token = spec["token"].as_str().unwrap_or_default();
    let asked: Vec<&str> = spec["audiences"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let audiences = if asked.is_empty() {
        vec![API_AUDIENCE]
    } else {
        asked
    };
    match server.authenticate(token, &audiences) {
        Some(user) => {
            json!({"authenticated": true, "user": user.to_json(), "audiences": audiences})
        }
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    }
}

/// `POST serviceaccounts/{name}/token`: a TokenRequest answered with a token for that account.
pub fn token(server: &ApiServer, request: &ResourceRequest) -> ApiResult<Response> {
    let name = request.path.name.clone().unwrap_or_default();
    let namespace = request.namespace().unwrap_or_default().to_owned();
    let account = server
        .store
        .get(
            &ResourceKey::new("", "serviceaccounts"),
            &ObjectKey::new(&namespace, &name),
        )
        .ok_or_else(|| ApiError::not_found(&request.rt, &name))?
        .value();
    let mut token_request = super::write::parse_body(request)?;
    if !token_request.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a TokenRequest object",
        ));
    }
    let spec = &mut token_request["spec"];
    let seconds = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(TOKEN_SECONDS.2);
    let problem = if seconds < TOKEN_SECONDS.0 {
        Some("may not specify a duration less than 10 minutes")
    } else if seconds > TOKEN_SECONDS.1 {
        Some("may not specify a duration larger than 2^32 seconds")
    } else {
        None
    };
    if let Some(problem) = problem {
        let token_request = crate::registry::ResourceType {
            group: "authentication.k8s.io".into(),
            kind: "TokenRequest".into(),
            ..(*request.rt).clone()
        };
        return Err(ApiError::invalid(
            &token_request,
            &name,
            vec![Cause {
                reason: "FieldValueInvalid",
                field: "spec.expirationSeconds".into(),
                message: format!("Invalid value: {seconds}: {problem}"),
            }],
        ));
    }
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![API_AUDIENCE.to_owned()]);
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(seconds);
    let claims = Claims {
        namespace: namespace.clone(),
        name: name.clone(),
        uid: object::meta_str(&account, "uid").to_owned(),
        audiences,
    };
    let now = Timestamp::now();
    let bound = spec["boundObjectRef"].clone();
    // Kubernetes' --service-account-extend-token-expiration (on by default): a kubelet's
    // projected token (3607 s, bound to a pod) lives a year, so pods need no rotation.
    let lifetime = if seconds == crate::authn::PROJECTED_TOKEN_SECONDS && bound["kind"] == "Pod" {
        crate::authn::EXTENDED_TOKEN_SECONDS
    } else {
        seconds
    };
    let token = server.authenticator.issue(&claims, now, lifetime, bound);
    let expires = now + SignedDuration::from_secs(seconds);
    token_request["apiVersion"] = json!("authentication.k8s.io/v1");
    token_request["kind"] = json!("TokenRequest");
    token_request["metadata"] =
        json!({"name": name, "namespace": namespace, "creationTimestamp": null});
    token_request["status"] = json!({
        "token": token,
        "expirationTimestamp": object::timestamp(expires),
    });
    Ok(json_value(StatusCode::CREATED, &token_request))
}

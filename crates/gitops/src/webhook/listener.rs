//! The webhook endpoint: `POST /api/webhook` on its own listener (`--webhook-listen`). Each
//! request is read up to [`MAX_PAYLOAD`](super::MAX_PAYLOAD), verified with the secrets of
//! `argocd-secret` as they are at that moment, and every Application in the controller's
//! namespace whose source the push concerns is given Argo CD's refresh annotation
//! (`argocd.argoproj.io/refresh: normal`) — the controller then fetches and reconciles it at
//! once, without waiting for its poll. Answers: `200` with how many Applications were
//! refreshed, `400` with Argo CD's message for anything refused, `405` for other methods.

use std::{collections::BTreeMap, net::SocketAddr};

use axum::{
    Router,
    extract::{Request, State},
    http::StatusCode,
    routing::post,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{Headers, MAX_PAYLOAD, Push, Secrets, WebhookError, parse};
use crate::{credentials::redact, status::REFRESH};

/// The Secret holding the webhook secrets (Argo CD's).
pub const ARGOCD_SECRET: &str = "argocd-secret";

#[derive(Clone)]
struct Shared {
    client: Client,
    namespace: String,
}

/// Serves the webhook endpoint on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    client: Client,
    namespace: &str,
) -> std::io::Result<()> {
    let shared = Shared {
        client,
        namespace: namespace.to_owned(),
    };
    let app = Router::new()
        .route("/api/webhook", post(webhook))
        .with_state(shared);
    axum::serve(listener, app).await
}

/// Binds `address` and serves there (in a spawned task); the bound address.
pub async fn start(
    address: SocketAddr,
    client: Client,
    namespace: &str,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let namespace = namespace.to_owned();
    tokio::spawn(async move {
        if let Err(e) = serve(listener, client, &namespace).await {
            tracing::warn!("webhook listener on {bound}: {e}");
        }
    });
    Ok(bound)
}

async fn webhook(State(shared): State<Shared>, request: Request) -> (StatusCode, String) {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        return refused(WebhookError::Payload);
    };
    let headers: Headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let secrets = match secrets(&shared).await {
        Ok(secrets) => secrets,
        Err(e) => {
            tracing::warn!("webhook: reading {ARGOCD_SECRET}: {e}");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Webhook processing failed: settings unavailable".into(),
            );
        }
    };
    let push = match parse(&headers, &body, &secrets) {
        Ok(Some(push)) => push,
        Ok(None) => return (StatusCode::OK, String::new()),
        Err(e) => return refused(e),
    };
    match refresh(&shared, &push).await {
        Ok(count) => (
            StatusCode::OK,
            format!("refreshed {count} application(s)\n"),
        ),
        Err(e) => {
            tracing::warn!("webhook: refreshing applications: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Webhook processing failed: applications unavailable".into(),
            )
        }
    }
}

fn refused(error: WebhookError) -> (StatusCode, String) {
    tracing::info!("webhook refused: {error}");
    (StatusCode::BAD_REQUEST, error.to_string())
}

/// The webhook secrets as `argocd-secret` holds them now (none when it does not exist).
async fn secrets(shared: &Shared) -> Result<Secrets, kube::Error> {
    let api: Api<Secret> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let Some(secret) = api.get_opt(ARGOCD_SECRET).await? else {
        return Ok(Secrets::default());
    };
    let mut data: BTreeMap<String, String> = secret
        .data
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    data.extend(secret.string_data.into_iter().flatten());
    Ok(Secrets::from_data(&data))
}

/// The (repoURL, targetRevision) of each source of an Application.
fn sources(app: &Value) -> Vec<(String, String)> {
    let spec = &app["spec"];
    let many = spec["sources"].as_array().filter(|s| !s.is_empty());
    let list: Vec<&Value> = match many {
        Some(list) => list.iter().collect(),
        None => vec![&spec["source"]],
    };
    list.into_iter()
        .filter_map(|s| {
            Some((
                s["repoURL"].as_str()?.to_owned(),
                s["targetRevision"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// Asks every Application the push concerns for a refresh; how many.
async fn refresh(shared: &Shared, push: &Push) -> Result<usize, kube::Error> {
    // As JSON: decoding the deep Application type needs more stack than a server task has.
    let resource = ApiResource::erase::<sluice_api::Application>(&());
    let api: Api<DynamicObject> =
        Api::namespaced_with(shared.client.clone(), &shared.namespace, &resource);
    let mut count = 0;
    for app in api.list(&ListParams::default()).await? {
        let name = app.metadata.name.clone().unwrap_or_default();
        let value = serde_json::to_value(&app).unwrap_or_default();
        let Some((url, _)) = sources(&value)
            .into_iter()
            .find(|(url, revision)| push.refreshes(url, revision))
        else {
            continue;
        };
        let patch = json!({"metadata": {"annotations": {REFRESH: "normal"}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(
            "webhook: push to {} ({}): refreshing application {name}",
            redact(&url),
            push.revision
        );
        count += 1;
    }
    Ok(count)
}

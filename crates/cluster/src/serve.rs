//! The HTTPS listener: TLS, bearer-token authentication, HTTP/1.1 and HTTP/2, and a graceful
//! stop that does not wait forever for long-lived watches.
//!
//! Layering: above the API server, whose router it serves.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::Request, middleware::Next, response::IntoResponse};
use http::header::AUTHORIZATION;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::TlsAcceptor;

use crate::{api_error::ApiError, apiserver::ApiServer};

/// Paths anyone may read, as on a real cluster (`system:public-info-viewer`).
fn public(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
}

/// Wraps a router so every request but the public ones needs a bearer token `api` accepts;
/// the request then carries its [`crate::authn::User`] (or the one it may impersonate).
pub fn authenticated(router: Router, api: Arc<ApiServer>) -> Router {
    router.layer(axum::middleware::from_fn(
        move |mut request: Request<Body>, next: Next| {
            let api = api.clone();
            async move {
                let user = request
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|header| api.authenticate_header(header));
                match user.map(|user| api.impersonate(user, request.headers())) {
                    Some(Ok(user)) => {
                        request.extensions_mut().insert(user);
                        next.run(request).await
                    }
                    Some(Err(refused)) => refused.into_response(),
                    None if public(request.uri().path()) => next.run(request).await,
                    None => ApiError::unauthorized().into_response(),
                }
            }
        },
    ))
}

/// Serves `router` over TLS on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let service = TowerToHyperService::new(router.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        tracing::debug!("TLS handshake with {peer} failed");
                        return;
                    };
                    let builder = Builder::new(TokioExecutor::new());
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(err) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!("connection from {peer}: {err}");
                    }
                });
            }
        }
    }
    // Let short requests finish; watches end with the process.
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}

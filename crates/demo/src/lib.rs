//! The demo application that local pods run (`sluice demo-app`): Argo's rollouts-demo `/color`
//! contract and page, with the error rate and latency meaning what they say (P(500) =
//! `ERROR_RATE` %, fractional seconds), podinfo's health and readiness endpoints, Prometheus
//! metrics, an `X-Version` header and one log line per request.

mod config;
mod metrics;
mod page;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header::CONTENT_TYPE},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use serde::Deserialize;

pub use config::{COLORS, ConfigError, DemoConfig};
use metrics::Metrics;

/// The running app's state.
pub struct Demo {
    config: DemoConfig,
    ready: AtomicBool,
    metrics: Metrics,
}

impl Demo {
    /// A demo app with `config`, ready.
    pub fn new(config: DemoConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            ready: AtomicBool::new(true),
            metrics: Metrics::default(),
        })
    }

    /// Marks the app not ready (as during shutdown).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(page::index))
            .route("/color", any(color))
            .route(
                "/healthz",
                get(|| async { (StatusCode::OK, "{\"status\":\"OK\"}") }),
            )
            .route("/readyz", get(readyz))
            .route("/readyz/enable", post(enable))
            .route("/readyz/disable", post(disable))
            .route("/version", get(version))
            .route("/metrics", get(metrics))
            .layer(middleware::from_fn_with_state(self.clone(), observe))
            .with_state(self.clone())
    }
}

/// One entry of the optional `/color` body the rollouts-demo page sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ColorOverride {
    color: String,
    #[serde(default)]
    delay_length: Option<f64>,
    #[serde(default)]
    return500: Option<f64>,
}

async fn color(State(demo): State<Arc<Demo>>, body: Bytes) -> Response {
    let color = demo.config.color();
    let overrides: Vec<ColorOverride> = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(entries) => entries,
            Err(err) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response();
            }
        }
    };
    let entry = overrides.iter().find(|e| e.color == color);
    let delay = entry
        .and_then(|e| e.delay_length)
        .filter(|d| *d > 0.0)
        .map_or(demo.config.latency, Duration::from_secs_f64);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let error_percent = entry
        .and_then(|e| e.return500)
        .unwrap_or(demo.config.error_rate);
    let status = if error_percent > 0.0 && fastrand::f64() * 100.0 < error_percent {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let mut response = (status, format!("\"{color}\"")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn readyz(State(demo): State<Arc<Demo>>) -> Response {
    if demo.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "{\"status\":\"OK\"}").into_response()
    } else {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

async fn enable(State(demo): State<Arc<Demo>>) -> StatusCode {
    demo.set_ready(true);
    StatusCode::ACCEPTED
}

async fn disable(State(demo): State<Arc<Demo>>) -> StatusCode {
    demo.set_ready(false);
    StatusCode::ACCEPTED
}

async fn version(State(demo): State<Arc<Demo>>) -> Response {
    let body = serde_json::json!({"version": demo.config.version, "color": demo.config.color()});
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn metrics(State(demo): State<Arc<Demo>>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        demo.metrics.render(),
    )
        .into_response()
}

/// Counts and times every request, logs one line for it, and stamps `X-Version`.
async fn observe(State(demo): State<Arc<Demo>>, request: Request<Body>, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if path != "/metrics" {
        demo.metrics.observe(&method, &path, status, elapsed);
    }
    if let Ok(value) = HeaderValue::from_str(&demo.config.version) {
        response.headers_mut().insert("x-version", value);
    }
    println!(
        "{status} {method} {path} {} ({:.3}s)",
        demo.config.color(),
        elapsed.as_secs_f64()
    );
    response
}

/// Serves the app on `listener` until `stop` resolves, then stops answering readiness, waits
/// the termination delay (so load balancers stop sending traffic) and shuts down.
///
/// # Errors
/// When serving fails.
pub async fn serve(
    demo: Arc<Demo>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let delay = demo.config.termination_delay;
    let router = demo.router();
    let shutdown = async move {
        stop.await;
        demo.set_ready(false);
        tracing::info!("stopping: waiting {:?} before closing", delay);
        tokio::time::sleep(delay).await;
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
        body: &'static str,
    ) -> (StatusCode, Option<String>, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let version = response
            .headers()
            .get("x-version")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            version,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn color_answers_any_method_with_its_colour_and_version() {
        let router = Demo::new(DemoConfig::from_tag("blue").unwrap()).router();
        for method in ["GET", "POST", "PUT"] {
            let (status, version, body) = call(&router, method, "/color", "").await;
            assert_eq!(
                (status, version.as_deref(), body.as_str()),
                (StatusCode::OK, Some("blue"), "\"blue\"")
            );
        }
    }

    #[tokio::test]
    async fn the_error_rate_means_what_it_says() {
        let router = Demo::new(DemoConfig::from_tag("bad-red").unwrap()).router();
        let mut errors = 0;
        for _ in 0..1000 {
            if call(&router, "GET", "/color", "").await.0 == StatusCode::INTERNAL_SERVER_ERROR {
                errors += 1;
            }
        }
        assert!(
            (110..=190).contains(&errors),
            "15 ± 4 % of 1,000 requests fail, got {errors}"
        );
    }

    #[tokio::test]
    async fn the_page_can_override_errors_and_bad_bodies_fail() {
        let router = Demo::new(DemoConfig::from_tag("green").unwrap()).router();
        let (status, _, _) = call(
            &router,
            "POST",
            "/color",
            r#"[{"color":"green","return500":100}]"#,
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let (status, _, _) = call(
            &router,
            "POST",
            "/color",
            r#"[{"color":"red","return500":100}]"#,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "overrides for other colours do not apply"
        );
        let (status, _, _) = call(&router, "POST", "/color", "{not json").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn readiness_toggles_and_health_stays() {
        let router = Demo::new(DemoConfig::default()).router();
        assert_eq!(call(&router, "GET", "/readyz", "").await.0, StatusCode::OK);
        assert_eq!(
            call(&router, "POST", "/readyz/disable", "").await.0,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            call(&router, "GET", "/readyz", "").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(call(&router, "GET", "/healthz", "").await.0, StatusCode::OK);
        assert_eq!(
            call(&router, "POST", "/readyz/enable", "").await.0,
            StatusCode::ACCEPTED
        );
        assert_eq!(call(&router, "GET", "/readyz", "").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_count_requests_by_status() {
        let router = Demo::new(DemoConfig::from_tag("blue").unwrap()).router();
        for _ in 0..3 {
            call(&router, "GET", "/color", "").await;
        }
        call(&router, "GET", "/nope", "").await;
        let (_, _, text) = call(&router, "GET", "/metrics", "").await;
        assert!(
            text.contains("http_requests_total{status=\"200\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("http_requests_total{status=\"404\"} 1"),
            "{text}"
        );
        assert!(text.contains("http_request_duration_seconds_count{method=\"GET\",path=\"/color\",status=\"200\"} 3"), "{text}");
    }
}

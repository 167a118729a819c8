//! The `web` provider, Argo's `webmetric`: one HTTP request (GET, POST or PUT; headers; a
//! `body` or a `jsonBody`; `timeoutSeconds`, default 10; `insecure` skips TLS verification),
//! a non-2xx answer is an Error, a JSON answer is narrowed by `jsonPath` (Kubernetes' syntax,
//! `{$.data.ok}`, default the whole document) and judged by the metric's conditions; an answer
//! that is not JSON is judged as a string. The value is stored as JSON text, as Argo stores it.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use jsonpath_rust::JsonPath;
use sluice_api::{AnalysisPhase, Measurement, Metric, WebMetric};
use sluice_expr::MeasurementPhase;

use super::{
    Provider, RunContext, error, finished, started,
    transport::{Transport, chain},
};

/// The largest answer read.
const MAX_BODY: usize = 16 << 20;

/// Web metrics: requests through the shared [`Transport`].
#[derive(Clone, Default)]
pub struct Web {
    transport: Transport,
}

impl Web {
    /// Web metrics with their own clients.
    pub fn new() -> Self {
        Self::with_transport(Transport::new())
    }

    /// Web metrics through `transport` (shared with other providers).
    pub fn with_transport(transport: Transport) -> Self {
        Self { transport }
    }

    async fn measure(&self, web: &WebMetric, metric: &Metric) -> Measurement {
        let measurement = started();
        let method = web
            .method
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or("GET");
        let body = match (
            web.body.as_deref().filter(|b| !b.is_empty()),
            &web.json_body,
        ) {
            (Some(_), Some(_)) => {
                return error(
                    measurement,
                    "use either Body or JSONBody; both cannot exists for WebMetric payload",
                );
            }
            (None, None) => None,
            _ if method == "GET" => {
                return error(
                    measurement,
                    "Body/JSONBody can only be used with POST or PUT WebMetric Method types",
                );
            }
            (Some(text), None) => Some(Bytes::from(text.to_owned())),
            (None, Some(json)) => Some(Bytes::from(json.to_string())),
        };
        let mut request = http::Request::builder().method(method).uri(&web.url);
        for header in web.headers.iter().flatten() {
            request = request.header(&header.key, &header.value);
        }
        if web.json_body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = match request.body(Full::new(body.unwrap_or_default())) {
            Ok(request) => request,
            Err(e) => return error(measurement, format!("{method} {:?}: {e}", web.url)),
        };
        let client = self.transport.client(web.insecure.unwrap_or(false));
        let timeout = Duration::from_secs(
            web.timeout_seconds
                .filter(|s| *s > 0)
                .map_or(10, |s| s.unsigned_abs()),
        );
        let exchange = async {
            let response = client.request(request).await.map_err(|e| chain(&e))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("Received no bytes in response: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                return error(
                    measurement,
                    format!(
                        "{method} {:?}: no answer within {}s (timeoutSeconds)",
                        web.url,
                        timeout.as_secs()
                    ),
                );
            }
            Ok(Err(e)) => return error(measurement, format!("{method} {:?}: {e}", web.url)),
            Ok(Ok(answer)) => answer,
        };
        if !status.is_success() {
            return error(
                measurement,
                format!("received non 2xx response code: {}", status.as_u16()),
            );
        }
        match judge(web, metric, &body) {
            Ok((value, phase)) => {
                let mut measurement = finished(measurement, phase);
                measurement.value = Some(value);
                measurement
            }
            Err((value, message)) => {
                let mut measurement = error(measurement, message);
                measurement.value = value;
                measurement
            }
        }
    }
}

/// Kubernetes' JSONPath template (`{$.a.b}`, `{.a.b}`) as a JSONPath query (`$.a.b`).
fn query(json_path: Option<&str>) -> String {
    let path = json_path
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or("{$}");
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path)
        .trim();
    if path.starts_with('$') {
        path.to_owned()
    } else {
        format!("${path}")
    }
}

/// The value (as stored) and phase of an answer, or the value (when there is one) and the
/// message of the Error.
fn judge(
    web: &WebMetric,
    metric: &Metric,
    body: &[u8],
) -> Result<(String, AnalysisPhase), (Option<String>, String)> {
    let assess = |value: &sluice_expr::Value| {
        sluice_expr::assess(
            metric.success_condition.as_deref(),
            metric.failure_condition.as_deref(),
            value,
        )
        .map(|phase| match phase {
            MeasurementPhase::Successful => AnalysisPhase::Successful,
            MeasurementPhase::Failed => AnalysisPhase::Failed,
            MeasurementPhase::Inconclusive => AnalysisPhase::Inconclusive,
        })
    };
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body).into_owned();
        return match assess(&sluice_expr::Value::from(text.as_str())) {
            Ok(phase) => Ok((text, phase)),
            Err(e) => Err((Some(text), e.to_string())),
        };
    };
    let path = query(web.json_path.as_deref());
    let found = document
        .query(&path)
        .map_err(|e| (None, format!("Could not find JSONPath in body: {e}")))?;
    let Some(value) = found.first() else {
        return Err((None, "result of web metric produced no value".to_owned()));
    };
    let text = value.to_string();
    match assess(&sluice_expr::Value::from(*value)) {
        Ok(phase) => Ok((text, phase)),
        Err(e) => Err((Some(text), e.to_string())),
    }
}

impl Provider for Web {
    fn kind(&self) -> &'static str {
        "Web"
    }

    fn run<'a>(&'a self, _run: &'a RunContext, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            match &metric.provider.web {
                Some(web) => self.measure(web, metric).await,
                None => error(started(), "not a web metric"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_json_paths_become_queries() {
        assert_eq!(query(None), "$");
        assert_eq!(query(Some("{$.data.ok}")), "$.data.ok");
        assert_eq!(query(Some("{.data}")), "$.data");
        assert_eq!(query(Some("$.x")), "$.x");
    }
}

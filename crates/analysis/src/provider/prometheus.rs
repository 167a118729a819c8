//! The `prometheus` provider, Argo's `metricproviders/prometheus`: an instant query
//! (`/api/v1/query` at now) or, with `rangeQuery`, a range query (`/api/v1/query_range`, its
//! `start` and `end` expressions such as `now() - duration("5m")` evaluated at now, its `step` a
//! Go duration), sent as a form POST (GET when the server answers 405) as Prometheus' Go client
//! sends it.
//!
//! The address is the template's, else the controller's default (`--prometheus-address`, the
//! Prometheus `sluice up --prometheus` starts, or `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`); without
//! one the measurement is an Error saying which flag to pass. `timeout` (seconds, default 30)
//! bounds the whole exchange; `headers` are sent as written; `insecure` skips TLS verification;
//! `authentication.basicAuth` and `authentication.oauth2` (client credentials, the token cached
//! until it expires, [`super::oauth2`]) authenticate; `sigv4` for Amazon's managed Prometheus
//! is an Error: sluice does not sign requests.
//!
//! Results convert as Argo converts them: a scalar is a number, a vector an array of its
//! samples' values (an empty vector is `[]`), a matrix one array of every sample of every
//! series; NaN and ±Inf stay numbers (`result[0] >= 0.95` is false for NaN). The stored value
//! is Go's text (`[0.99,NaN,+Inf]`). Prometheus' warnings go into the measurement's metadata;
//! a query error, an unreachable server or a timeout is an Error measurement with
//! Prometheus' (or Go's) message, counted against `consecutiveErrorLimit` like any Error.

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use jiff::Timestamp;
use serde::Deserialize;
use sluice_api::{AnalysisPhase, Measurement, Metric, PrometheusMetric};
use sluice_expr::{ExprError, MeasurementPhase, Value};

use super::{
    Provider, RunContext, error, finished,
    oauth2::{Credentials, TokenError, Tokens},
    started,
    transport::{Transport, chain},
};

/// The metric result's metadata key holding the query as sent (Argo's).
pub const RESOLVED_QUERY: &str = "ResolvedPrometheusQuery";

/// The environment variable Argo's controller reads its default address from.
pub const ADDRESS_ENV: &str = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS";

/// The timeout when the metric gives none (Argo's).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read.
const MAX_BODY: usize = 64 << 20;

/// Why a query has no result; the messages are Argo's and Prometheus' Go client's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Neither the metric nor the controller names a server.
    #[error(
        "prometheus address is not configured: give the metric an address, or start sluice up with --prometheus (or sluice controller with --prometheus-address, or set {ADDRESS_ENV})"
    )]
    NoAddress,
    /// The address is not a URL with a scheme and a host.
    #[error("prometheus address is not is url format: {0:?}")]
    NotUrl(String),
    /// `timeout` is negative.
    #[error("prometheus timeout should not be negative")]
    NegativeTimeout,
    /// Basic authentication lacks its user name or password.
    #[error("missing mandatory parameter in metric for basic auth setup: {0}")]
    BasicAuth(&'static str),
    /// OAuth2 lacks its client id or secret.
    #[error("missing mandatory parameter in metric for OAuth2 setup")]
    OAuth2,
    /// SigV4 signing (Amazon Managed Service for Prometheus).
    #[error(
        "authentication.sigv4 (Amazon Managed Service for Prometheus) is not supported by sluice: use a Prometheus reachable without request signing, or headers/basicAuth/oauth2"
    )]
    Sigv4,
    /// `rangeQuery.start` is not a time.
    #[error("failed to parse rangeQuery.start as time: {0}")]
    Start(ExprError),
    /// `rangeQuery.end` is not a time.
    #[error("failed to parse rangeQuery.end as time: {0}")]
    End(ExprError),
    /// `rangeQuery.step` is not a duration.
    #[error("failed to parse rangeQuery.step as duration: {0}")]
    Step(String),
    /// The request could not be sent or answered (Go's `url.Error`).
    #[error("{method} {url:?}: {reason}")]
    Request {
        /// `Post` or `Get`.
        method: &'static str,
        /// The endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Prometheus answered with an error (`bad_data: 1:8: parse error: …`).
    #[error("{kind}: {message}")]
    Api {
        /// Prometheus' `errorType`, or the Go client's (`server_error`, `bad_response`).
        kind: String,
        /// The message.
        message: String,
    },
    /// A result type Argo does not convert (`string`).
    #[error("Prometheus metric type not supported")]
    Unsupported,
}

/// Prometheus metrics.
pub struct Prometheus {
    transport: Transport,
    default_address: Option<String>,
    tokens: Tokens,
}

impl Prometheus {
    /// Prometheus metrics through `transport`, with the controller's `default_address` for
    /// metrics that name none.
    pub fn new(transport: Transport, default_address: Option<String>) -> Self {
        Self {
            transport,
            default_address: default_address.filter(|a| !a.is_empty()),
            tokens: Tokens::default(),
        }
    }

    /// The server a metric queries.
    fn address(&self, prometheus: &PrometheusMetric) -> Result<String, QueryError> {
        let address = prometheus
            .address
            .as_deref()
            .filter(|a| !a.is_empty())
            .or(self.default_address.as_deref())
            .ok_or(QueryError::NoAddress)?;
        let url_like = address
            .split_once("://")
            .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty());
        if !url_like {
            return Err(QueryError::NotUrl(address.to_owned()));
        }
        Ok(address.to_owned())
    }

    async fn measure(&self, prometheus: &PrometheusMetric, metric: &Metric) -> Measurement {
        let measurement = started();
        let timeout = match prometheus.timeout {
            None => DEFAULT_TIMEOUT,
            Some(seconds) if seconds < 0 => {
                return error(measurement, QueryError::NegativeTimeout.to_string());
            }
            Some(seconds) => Duration::from_secs(seconds.unsigned_abs()),
        };
        let query = match self
            .address(prometheus)
            .and_then(|address| Query::new(prometheus, &address, Timestamp::now()))
        {
            Ok(query) => query,
            Err(e) => return error(measurement, e.to_string()),
        };
        let answer = match tokio::time::timeout(timeout, self.send(prometheus, &query)).await {
            Ok(answer) => answer,
            Err(_) => Err(QueryError::Request {
                method: "Post",
                url: query.url.clone(),
                reason: format!(
                    "context deadline exceeded (no answer within {}s, the metric's timeout)",
                    timeout.as_secs()
                ),
            }),
        };
        let answer = match answer.and_then(|body| Answer::parse(&body)) {
            Ok(answer) => answer,
            Err(e) => return error(measurement, e.to_string()),
        };
        let (text, value) = match answer.result() {
            Ok(result) => result,
            Err(e) => return error(measurement, e.to_string()),
        };
        let mut measurement = match assess(metric, &value) {
            Ok(phase) => finished(measurement, phase),
            Err(e) => error(measurement, e.to_string()),
        };
        measurement.value = Some(text);
        if !answer.warnings.is_empty() {
            let warnings: Vec<String> = answer.warnings.iter().map(|w| format!("{w:?}")).collect();
            let warnings = warnings.join(", ");
            tracing::warn!("Prometheus returned the following warnings: {warnings}");
            measurement.metadata = Some(BTreeMap::from([("warnings".to_owned(), warnings)]));
        }
        measurement
    }

    /// Sends the query with the metric's headers and authentication: the answer's body, the
    /// HTTP status already judged as Prometheus' Go client judges it.
    async fn send(
        &self,
        prometheus: &PrometheusMetric,
        query: &Query,
    ) -> Result<Bytes, QueryError> {
        let client = self.transport.client(prometheus.insecure.unwrap_or(false));
        let auth = prometheus.authentication.clone().unwrap_or_default();
        let mut authorization = None;
        if let Some(basic) = &auth.basic_auth {
            let (user, password) = (
                basic.username.as_deref().unwrap_or_default(),
                basic.password.as_deref().unwrap_or_default(),
            );
            if !user.is_empty() || !password.is_empty() {
                if user.is_empty() {
                    return Err(QueryError::BasicAuth("username"));
                }
                if password.is_empty() {
                    return Err(QueryError::BasicAuth("password"));
                }
                use base64::Engine;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                authorization = Some(format!("Basic {encoded}"));
            }
        }
        let sigv4 = auth.sigv4.as_ref().is_some_and(|s| {
            [&s.region, &s.profile, &s.role_arn]
                .iter()
                .any(|f| f.as_deref().is_some_and(|v| !v.is_empty()))
        });
        if sigv4 && query.url.contains("aps-workspaces") {
            return Err(QueryError::Sigv4);
        }
        if let Some(oauth2) = &auth.oauth2
            && let Some(token_url) = oauth2.token_url.as_deref().filter(|u| !u.is_empty())
        {
            let (id, secret) = (
                oauth2.client_id.as_deref().unwrap_or_default(),
                oauth2.client_secret.as_deref().unwrap_or_default(),
            );
            if id.is_empty() || secret.is_empty() {
                return Err(QueryError::OAuth2);
            }
            let credentials = Credentials {
                token_url: token_url.to_owned(),
                client_id: id.to_owned(),
                client_secret: secret.to_owned(),
                scopes: oauth2.scopes.clone().unwrap_or_default(),
            };
            let header = self
                .tokens
                .authorization(client, &credentials, std::time::Instant::now())
                .await
                .map_err(|e: TokenError| QueryError::Request {
                    method: "Post",
                    url: query.url.clone(),
                    reason: e.to_string(),
                })?;
            authorization = Some(header);
        }
        let exchange = |method: &'static str| {
            let mut request = if method == "Post" {
                http::Request::post(&query.url)
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(Full::new(Bytes::from(query.form.clone())))
            } else {
                http::Request::get(format!("{}?{}", query.url, query.form))
                    .body(Full::new(Bytes::new()))
            }
            .map_err(|e| QueryError::Request {
                method,
                url: query.url.clone(),
                reason: e.to_string(),
            });
            if let Ok(request) = &mut request {
                let headers = request.headers_mut();
                for header in prometheus.headers.iter().flatten() {
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::from_bytes(header.key.as_bytes()),
                        http::HeaderValue::from_str(&header.value),
                    ) {
                        headers.insert(name, value);
                    }
                }
                if let Some(value) = authorization
                    .as_deref()
                    .and_then(|v| http::HeaderValue::from_str(v).ok())
                {
                    headers.insert(http::header::AUTHORIZATION, value);
                }
            }
            async move {
                let failed = |reason: String| QueryError::Request {
                    method,
                    url: query.url.clone(),
                    reason,
                };
                let response = client
                    .request(request?)
                    .await
                    .map_err(|e| failed(chain(&e)))?;
                let status = response.status();
                let body = Limited::new(response.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .to_bytes();
                Ok::<_, QueryError>((status, body))
            }
        };
        let (mut status, mut body) = exchange("Post").await?;
        if status == http::StatusCode::METHOD_NOT_ALLOWED {
            (status, body) = exchange("Get").await?;
        }
        // Prometheus answers its own errors with 400, 422 or 503 and a JSON body; any other
        // status that is not 2xx is the Go client's `client_error`/`server_error`.
        let api_error = matches!(status.as_u16(), 400 | 422 | 503);
        if !status.is_success() && !api_error {
            let kind = if status.is_server_error() {
                "server_error"
            } else {
                "client_error"
            };
            return Err(QueryError::Api {
                kind: kind.into(),
                message: format!(
                    "server returned HTTP status {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or_default()
                ),
            });
        }
        Ok(body)
    }
}

/// A query ready to send: the endpoint and its form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    url: String,
    form: String,
}

impl Query {
    /// The instant or range query of `prometheus` against `address`, with `now` for the
    /// instant query's time and the range's expressions.
    fn new(
        prometheus: &PrometheusMetric,
        address: &str,
        now: Timestamp,
    ) -> Result<Self, QueryError> {
        let endpoint = |path: &str| format!("{}/{path}", address.trim_end_matches('/'));
        let text = prometheus.query.as_deref().unwrap_or_default();
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("query", text);
        let Some(range) = &prometheus.range_query else {
            form.append_pair("time", &seconds(now));
            return Ok(Self {
                url: endpoint("api/v1/query"),
                form: form.finish(),
            });
        };
        let start = sluice_expr::evaluate_time(range.start.as_deref().unwrap_or_default(), now)
            .map_err(QueryError::Start)?;
        let end = sluice_expr::evaluate_time(range.end.as_deref().unwrap_or_default(), now)
            .map_err(QueryError::End)?;
        let step = sluice_api::duration::parse_duration(range.step.as_deref().unwrap_or_default())
            .map_err(|e| QueryError::Step(e.to_string()))?;
        form.append_pair("start", &seconds(start));
        form.append_pair("end", &seconds(end));
        form.append_pair("step", &number(step.as_secs_f64()));
        Ok(Self {
            url: endpoint("api/v1/query_range"),
            form: form.finish(),
        })
    }
}

/// A time as Prometheus' Go client sends it: Unix seconds with the fraction, computed and
/// written as Go does (`float64(Unix) + float64(Nanosecond)/1e9`).
fn seconds(time: Timestamp) -> String {
    number(time.as_second() as f64 + f64::from(time.subsec_nanosecond()) / 1e9)
}

/// A number as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it: `NaN`, `+Inf`, `-Inf`,
/// else the shortest decimal without an exponent.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    }
}

/// A sample's value as Prometheus writes it (`"0.5"`, `"NaN"`, `"+Inf"`).
fn sample(value: &serde_json::Value) -> Result<f64, QueryError> {
    let bad = || QueryError::Api {
        kind: "bad_response".into(),
        message: format!("not a sample value: {value}"),
    };
    let text = value.as_str().ok_or_else(bad)?;
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text.parse().map_err(|_| bad()),
    }
}

/// Prometheus' answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

impl Answer {
    fn parse(body: &[u8]) -> Result<Self, QueryError> {
        let answer: Answer = serde_json::from_slice(body).map_err(|e| QueryError::Api {
            kind: "bad_response".into(),
            message: e.to_string(),
        })?;
        if answer.status == "error" {
            return Err(QueryError::Api {
                kind: answer.error_type.clone().unwrap_or_default(),
                message: answer.error.clone().unwrap_or_default(),
            });
        }
        Ok(answer)
    }

    /// The stored text and the condition's `result`.
    fn result(&self) -> Result<(String, Value), QueryError> {
        let data = self.data.as_ref().ok_or(QueryError::Unsupported)?;
        let bad = |what: &str| QueryError::Api {
            kind: "bad_response".into(),
            message: format!("malformed {what} in the answer"),
        };
        let pair_value = |pair: &serde_json::Value| match pair.as_array().map(Vec::as_slice) {
            Some([_, value]) => sample(value),
            _ => Err(bad("sample")),
        };
        let values: Vec<f64> = match data.result_type.as_str() {
            "scalar" => {
                let value = pair_value(&data.result)?;
                return Ok((number(value), Value::Number(value)));
            }
            "vector" => {
                let samples = data.result.as_array().ok_or_else(|| bad("vector"))?;
                samples
                    .iter()
                    .filter_map(|s| s.get("value"))
                    .map(pair_value)
                    .collect::<Result<_, _>>()?
            }
            "matrix" => {
                let series = data.result.as_array().ok_or_else(|| bad("matrix"))?;
                let mut values = Vec::new();
                for one in series {
                    for pair in one
                        .get("values")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                    {
                        values.push(pair_value(pair)?);
                    }
                }
                values
            }
            _ => return Err(QueryError::Unsupported),
        };
        let text: Vec<String> = values.iter().copied().map(number).collect();
        Ok((format!("[{}]", text.join(",")), Value::from(values)))
    }
}

fn assess(metric: &Metric, value: &Value) -> Result<AnalysisPhase, ExprError> {
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
}

impl Provider for Prometheus {
    fn kind(&self) -> &'static str {
        "Prometheus"
    }

    fn run<'a>(&'a self, _run: &'a RunContext, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            match &metric.provider.prometheus {
                Some(prometheus) => self.measure(prometheus, metric).await,
                None => error(started(), "not a prometheus metric"),
            }
        })
    }

    fn metadata(&self, metric: &Metric) -> Option<BTreeMap<String, String>> {
        let query = metric.provider.prometheus.as_ref()?.query.as_deref()?;
        (!query.is_empty()).then(|| BTreeMap::from([(RESOLVED_QUERY.to_owned(), query.to_owned())]))
    }
}

#[cfg(test)]
mod tests;

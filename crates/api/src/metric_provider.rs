//! Metric providers: where an analysis metric's measurements come from.

use std::collections::BTreeMap;

use k8s_openapi::{api::batch::v1::JobSpec, apimachinery::pkg::util::intstr::IntOrString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{PodMetadata, Preserved};

/// The provider of a metric. Exactly one is set.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    /// A Prometheus query.
    pub prometheus: Option<PrometheusMetric>,
    /// An HTTP request whose JSON answer is the result.
    pub web: Option<WebMetric>,
    /// A Kubernetes Job whose success is the result.
    pub job: Option<JobMetric>,
    /// Kayenta canary analysis.
    pub kayenta: Option<KayentaMetric>,
    /// Datadog.
    pub datadog: Option<DatadogMetric>,
    /// Wavefront.
    pub wavefront: Option<WavefrontMetric>,
    /// New Relic.
    pub new_relic: Option<NewRelicMetric>,
    /// Amazon CloudWatch.
    pub cloud_watch: Option<CloudWatchMetric>,
    /// Graphite.
    pub graphite: Option<GraphiteMetric>,
    /// InfluxDB.
    pub influxdb: Option<InfluxdbMetric>,
    /// Apache SkyWalking.
    pub skywalking: Option<SkyWalkingMetric>,
    /// Metric plugins by name, with free-form configuration.
    #[serde(default)]
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub plugin: Option<BTreeMap<String, serde_json::Value>>,
}

/// A Prometheus instant or range query.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Server address (default: `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    pub address: Option<String>,
    /// PromQL query.
    pub query: Option<String>,
    /// Authentication.
    pub authentication: Option<Authentication>,
    /// Request timeout in seconds (default 30).
    pub timeout: Option<i64>,
    /// Skip TLS verification.
    pub insecure: Option<bool>,
    /// Extra request headers.
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Run a range query instead of an instant query.
    pub range_query: Option<PrometheusRangeQueryArgs>,
}

/// A Prometheus range query window.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRangeQueryArgs {
    /// Start (an expression such as `now() - duration("1h")`).
    pub start: Option<String>,
    /// End.
    pub end: Option<String>,
    /// Resolution step.
    pub step: Option<String>,
}

/// Authentication for Prometheus and web metrics.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// AWS SigV4.
    pub sigv4: Option<Sigv4Config>,
    /// OAuth2 client credentials.
    pub oauth2: Option<OAuth2Config>,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
}

/// AWS SigV4 signing.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sigv4Config {
    /// Region.
    pub region: Option<String>,
    /// Profile.
    pub profile: Option<String>,
    /// Role ARN.
    pub role_arn: Option<String>,
}

/// OAuth2 client credentials.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Config {
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<String>,
    /// Scopes.
    pub scopes: Option<Vec<String>>,
}

/// HTTP basic authentication.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct BasicAuth {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// An HTTP request header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct WebMetricHeader {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// An HTTP request; the JSON answer (or a JSONPath into it) is the result.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// `GET` (default), `POST` or `PUT`.
    pub method: Option<String>,
    /// URL.
    pub url: String,
    /// Request headers.
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Request body as a string.
    pub body: Option<String>,
    /// Request body as JSON.
    #[serde(default)]
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub json_body: Option<serde_json::Value>,
    /// Timeout in seconds (default 10).
    pub timeout_seconds: Option<i64>,
    /// JSONPath into the answer (default `{$}`).
    pub json_path: Option<String>,
    /// Skip TLS verification.
    pub insecure: Option<bool>,
    /// Authentication.
    pub authentication: Option<Authentication>,
}

/// A Job; Complete is success, Failed is failure.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct JobMetric {
    /// Labels and annotations for the Job.
    pub metadata: Option<PodMetadata>,
    /// The Job spec, kept exactly as written (newer pod fields included).
    pub spec: Preserved<JobSpec>,
}

/// Kayenta canary analysis.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaMetric {
    /// Kayenta address.
    pub address: String,
    /// Application name.
    pub application: String,
    /// Canary config.
    pub canary_config_name: String,
    /// Metrics account.
    pub metrics_account_name: String,
    /// Configuration account.
    pub configuration_account_name: String,
    /// Storage account.
    pub storage_account_name: String,
    /// Score thresholds.
    pub threshold: KayentaThreshold,
    /// Scopes to compare.
    pub scopes: Vec<KayentaScope>,
    /// Whether to look back.
    pub lookback: Option<bool>,
}

/// Kayenta score thresholds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct KayentaThreshold {
    /// Passing score.
    pub pass: i64,
    /// Marginal score.
    pub marginal: i64,
}

/// A Kayenta scope pair.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaScope {
    /// Scope name.
    pub name: String,
    /// Baseline scope.
    pub control_scope: ScopeDetail,
    /// Canary scope.
    pub experiment_scope: ScopeDetail,
}

/// One side of a Kayenta scope.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ScopeDetail {
    /// Scope expression.
    pub scope: String,
    /// Region.
    pub region: String,
    /// Step in seconds.
    pub step: i64,
    /// Start time.
    pub start: Option<String>,
    /// End time.
    pub end: Option<String>,
}

/// Datadog.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatadogMetric {
    /// Query window (default 5m).
    pub interval: Option<String>,
    /// One query.
    pub query: Option<String>,
    /// Named queries, combined by `formula`.
    pub queries: Option<BTreeMap<String, String>>,
    /// Formula over `queries`.
    pub formula: Option<String>,
    /// `v1` (default) or `v2`.
    pub api_version: Option<String>,
    /// Aggregator.
    pub aggregator: Option<String>,
    /// Secret with the API keys.
    pub secret_ref: Option<SecretRef>,
    /// Request timeout.
    pub request_timeout: Option<String>,
}

/// A Secret holding provider credentials.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SecretRef {
    /// Secret name.
    pub name: Option<String>,
    /// Whether the Secret is in the run's namespace.
    pub namespaced: Option<bool>,
}

/// Wavefront.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct WavefrontMetric {
    /// Address.
    pub address: Option<String>,
    /// Query.
    pub query: Option<String>,
}

/// New Relic.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NewRelicMetric {
    /// Credentials profile.
    pub profile: Option<String>,
    /// NRQL query.
    pub query: String,
    /// Timeout in seconds.
    pub timeout: Option<i64>,
}

/// Amazon CloudWatch.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetric {
    /// Query window.
    pub interval: Option<String>,
    /// Queries.
    pub metric_data_queries: Vec<CloudWatchMetricDataQuery>,
}

/// A CloudWatch metric data query.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricDataQuery {
    /// Query id.
    pub id: Option<String>,
    /// Metric math expression.
    pub expression: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// The metric and statistic.
    pub metric_stat: Option<CloudWatchMetricStat>,
    /// Period.
    pub period: Option<IntOrString>,
    /// Whether to return the data.
    pub return_data: Option<bool>,
}

/// A CloudWatch metric and statistic.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CloudWatchMetricStat {
    /// The metric.
    pub metric: Option<CloudWatchMetricStatMetric>,
    /// Period.
    pub period: Option<IntOrString>,
    /// Statistic.
    pub stat: Option<String>,
    /// Unit.
    pub unit: Option<String>,
}

/// A CloudWatch metric.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetric {
    /// Dimensions.
    pub dimensions: Option<Vec<CloudWatchMetricStatMetricDimension>>,
    /// Metric name.
    pub metric_name: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
}

/// A CloudWatch dimension.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CloudWatchMetricStatMetricDimension {
    /// Name.
    pub name: Option<String>,
    /// Value.
    pub value: Option<String>,
}

/// Graphite.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct GraphiteMetric {
    /// Address.
    pub address: Option<String>,
    /// Query.
    pub query: Option<String>,
}

/// InfluxDB.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct InfluxdbMetric {
    /// Credentials profile.
    pub profile: Option<String>,
    /// Flux query.
    pub query: Option<String>,
}

/// Apache SkyWalking.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct SkyWalkingMetric {
    /// Address.
    pub address: Option<String>,
    /// GraphQL query.
    pub query: Option<String>,
    /// Interval.
    pub interval: Option<String>,
}

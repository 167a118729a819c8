//! Metric providers behind one trait, Argo's `Provider` interface: [`Provider::run`] takes a
//! measurement (finished, or in flight with a `resumeAt`), [`Provider::resume`] checks on one
//! in flight, [`Provider::terminate`] stops one when the run ends first, and
//! [`Provider::garbage_collect`] removes what trimmed measurements left behind. One module per
//! provider: [`web`], [`job`], [`prometheus`] (with [`oauth2`] tokens); the HTTP clients
//! the network providers share are [`transport`]'s.
//!
//! A provider never fails: whatever goes wrong is an Error measurement whose message says why
//! ([`error`]), as in Argo.

pub mod job;
pub mod oauth2;
pub mod prometheus;
pub use sluice_reconcile::transport;
pub mod web;

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sluice_api::{AnalysisPhase, Measurement, Metric};

/// The run a measurement belongs to.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The run's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its uid (Job metrics name and label their Jobs with it).
    pub uid: String,
    /// Measurements this metric has finished so far, errors included (Argo numbers a metric's
    /// Jobs `count + error + 1`).
    pub taken: i32,
}

/// Where measurements come from.
pub trait Provider: Send + Sync {
    /// Argo's provider type (`Web`, `Job`), for metrics and logs.
    fn kind(&self) -> &'static str;

    /// Takes a measurement of `metric` (its arguments resolved, secrets included).
    fn run<'a>(&'a self, run: &'a RunContext, metric: &'a Metric) -> BoxFuture<'a, Measurement>;

    /// Checks on an in-flight measurement. Providers whose measurements finish in
    /// [`Provider::run`] hand it back unchanged.
    fn resume<'a>(
        &'a self,
        run: &'a RunContext,
        metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        let _ = (run, metric);
        Box::pin(async move { measurement })
    }

    /// Stops an in-flight measurement because the run is terminating.
    fn terminate<'a>(
        &'a self,
        run: &'a RunContext,
        metric: &'a Metric,
        measurement: Measurement,
    ) -> BoxFuture<'a, Measurement> {
        let _ = (run, metric);
        Box::pin(async move { measurement })
    }

    /// Removes what measurements beyond the newest `keep` left behind.
    fn garbage_collect<'a>(
        &'a self,
        run: &'a RunContext,
        metric: &'a Metric,
        keep: usize,
    ) -> BoxFuture<'a, ()> {
        let _ = (run, metric, keep);
        Box::pin(async {})
    }

    /// Details kept on the metric's result (Prometheus' resolved query).
    fn metadata(&self, metric: &Metric) -> Option<BTreeMap<String, String>> {
        let _ = metric;
        None
    }
}

/// A measurement started now.
pub fn started() -> Measurement {
    Measurement {
        phase: AnalysisPhase::Running,
        message: None,
        started_at: Some(Time(Timestamp::now())),
        finished_at: None,
        value: None,
        metadata: None,
        resume_at: None,
    }
}

/// `measurement` ended in Error with `message` (Argo's `MarkMeasurementError`).
pub fn error(mut measurement: Measurement, message: impl Into<String>) -> Measurement {
    measurement.phase = AnalysisPhase::Error;
    measurement.message = Some(message.into());
    measurement
        .finished_at
        .get_or_insert_with(|| Time(Timestamp::now()));
    measurement
}

/// `measurement` finished now with `phase`.
pub fn finished(mut measurement: Measurement, phase: AnalysisPhase) -> Measurement {
    measurement.phase = phase;
    measurement.finished_at = Some(Time(Timestamp::now()));
    measurement.resume_at = None;
    measurement
}

/// The name of the provider a metric uses (`prometheus`, `web`, …), for messages.
pub fn provider_name(metric: &Metric) -> &'static str {
    let p = &metric.provider;
    [
        (p.prometheus.is_some(), "prometheus"),
        (p.web.is_some(), "web"),
        (p.job.is_some(), "job"),
        (p.kayenta.is_some(), "kayenta"),
        (p.datadog.is_some(), "datadog"),
        (p.wavefront.is_some(), "wavefront"),
        (p.new_relic.is_some(), "newRelic"),
        (p.cloud_watch.is_some(), "cloudWatch"),
        (p.graphite.is_some(), "graphite"),
        (p.influxdb.is_some(), "influxdb"),
        (p.skywalking.is_some(), "skywalking"),
        (p.plugin.is_some(), "plugin"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
    .unwrap_or("none")
}

/// The providers a controller has.
pub struct Providers {
    /// Web metrics.
    pub web: web::Web,
    /// Job metrics (absent: no cluster client, e.g. in unit tests).
    pub job: Option<job::JobProvider>,
    /// Prometheus metrics.
    pub prometheus: prometheus::Prometheus,
}

impl Providers {
    /// The provider for `metric`, or the message of the Error measurement when there is none
    /// (a provider sluice does not have yet).
    pub fn for_metric(&self, metric: &Metric) -> Result<&dyn Provider, String> {
        if metric.provider.web.is_some() {
            return Ok(&self.web);
        }
        if metric.provider.prometheus.is_some() {
            return Ok(&self.prometheus);
        }
        if metric.provider.job.is_some()
            && let Some(job) = &self.job
        {
            return Ok(job);
        }
        Err(format!(
            "the {} metric provider is not supported by sluice yet",
            provider_name(metric)
        ))
    }
}

//! Standalone AnalysisRuns from the command line, as `kubectl argo rollouts` has them:
//! `create analysisrun --from TEMPLATE | --from-file FILE [--global] [-a NAME=VALUE]
//! [--name N | --generate-name P] [--instance-id ID]` (nested templates followed, through
//! `sluice-analysis`'s [`Catalog`]), `terminate analysisrun NAME`, and sluice's `get
//! analysisrun NAME [-w]`: the run, its metrics and each measurement, redrawn on every change.
//! Secret argument values are never read here, and status never holds them.

use std::{io::IsTerminal, time::Duration};

use anyhow::Context;
use futures::StreamExt;
use jiff::Timestamp;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use sluice_analysis::{Catalog, RunOptions, assess::phase_name};
use sluice_api::{
    AnalysisPhase, AnalysisRun, AnalysisTemplate, AnalysisTemplateRef, AnalysisTemplateSpec,
    Argument, ClusterAnalysisTemplate, names::label,
};

use crate::tree::age;

/// How `create analysisrun` names its run and where its templates come from.
#[derive(Debug, clap::Args)]
pub struct CreateRun {
    /// An AnalysisTemplate (with `--global`, a ClusterAnalysisTemplate) in the cluster.
    #[arg(long, value_name = "TEMPLATE")]
    from: Option<String>,
    /// An AnalysisTemplate or ClusterAnalysisTemplate in a local YAML file.
    #[arg(long, value_name = "FILE")]
    from_file: Option<std::path::PathBuf>,
    /// `--from` names a ClusterAnalysisTemplate.
    #[arg(long)]
    global: bool,
    /// Arguments to the template, `NAME=VALUE`.
    #[arg(short = 'a', long = "argument", value_name = "NAME=VALUE")]
    arguments: Vec<String>,
    /// The run's name.
    #[arg(long, conflicts_with = "generate_name")]
    name: Option<String>,
    /// The run's generateName [default: TEMPLATE-]
    #[arg(long, value_name = "PREFIX")]
    generate_name: Option<String>,
    /// Label the run for the controller with this instance id.
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
}

/// `NAME=VALUE` arguments.
fn arguments(flags: &[String]) -> anyhow::Result<Vec<Argument>> {
    flags
        .iter()
        .map(|flag| {
            let (name, value) = flag
                .split_once('=')
                .context("arguments must be in the form NAME=VALUE")?;
            Ok(Argument {
                name: name.to_owned(),
                value: Some(value.to_owned()),
                value_from: None,
            })
        })
        .collect()
}

/// A template read from a file: its name, spec and whether it is cluster-scoped.
fn template_file(path: &std::path::Path) -> anyhow::Result<(String, AnalysisTemplateSpec, bool)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let kind = value["kind"].as_str().unwrap_or_default();
    let cluster = match kind {
        "AnalysisTemplate" => false,
        "ClusterAnalysisTemplate" => true,
        other => anyhow::bail!(
            "{}: expected an AnalysisTemplate or ClusterAnalysisTemplate, found kind {other:?}",
            path.display()
        ),
    };
    let name = value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let spec = serde_json::from_value(value["spec"].clone())
        .with_context(|| format!("{}: spec", path.display()))?;
    Ok((name, spec, cluster))
}

/// `create analysisrun`: prints `analysisrun.argoproj.io/NAME created`.
pub async fn create(client: Client, namespace: &str, flags: &CreateRun) -> anyhow::Result<()> {
    let mut catalog = Catalog::default();
    let templates: Api<AnalysisTemplate> = Api::namespaced(client.clone(), namespace);
    for t in templates.list(&ListParams::default()).await?.items {
        catalog.templates.insert(t.name_any(), t.spec);
    }
    let cluster: Api<ClusterAnalysisTemplate> = Api::all(client.clone());
    match cluster.list(&ListParams::default()).await {
        Ok(list) => {
            for t in list.items {
                catalog
                    .cluster_templates
                    .insert(t.name_any(), t.spec.template);
            }
        }
        Err(e) => tracing::debug!("listing ClusterAnalysisTemplates: {e}"),
    }
    let (template, cluster_scope) = match (&flags.from, &flags.from_file) {
        (Some(name), None) => (name.clone(), flags.global),
        (None, Some(path)) => {
            let (name, spec, cluster) = template_file(path)?;
            let map = if cluster {
                &mut catalog.cluster_templates
            } else {
                &mut catalog.templates
            };
            map.insert(name.clone(), spec);
            (name, cluster)
        }
        _ => anyhow::bail!("one of --from or --from-file must be specified"),
    };
    let options = RunOptions {
        args: arguments(&flags.arguments)?,
        ..RunOptions::default()
    };
    let reference = AnalysisTemplateRef {
        template_name: Some(template.clone()),
        cluster_scope: Some(cluster_scope),
    };
    let spec = catalog.run_spec(&[reference], &options)?;
    let (name, generate_name) = match (&flags.name, &flags.generate_name) {
        (Some(name), _) => (Some(name.clone()), None),
        (None, Some(prefix)) => (None, Some(prefix.clone())),
        (None, None) if template.is_empty() => anyhow::bail!("name is invalid"),
        (None, None) => (None, Some(format!("{template}-"))),
    };
    let mut run = AnalysisRun::new("", spec);
    run.metadata.name = name;
    run.metadata.generate_name = generate_name;
    run.metadata.namespace = Some(namespace.to_owned());
    if let Some(id) = &flags.instance_id {
        run.metadata.labels = Some([(label::CONTROLLER_INSTANCE_ID.to_owned(), id.clone())].into());
    }
    let runs: Api<AnalysisRun> = Api::namespaced(client, namespace);
    let created = runs
        .create(&PostParams::default(), &run)
        .await
        .map_err(api_message)?;
    println!("analysisrun.argoproj.io/{} created", created.name_any());
    Ok(())
}

fn api_message(e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(status) => anyhow::anyhow!("{}", status.message),
        other => other.into(),
    }
}

/// `terminate analysisrun NAME`: prints `analysisRun 'NAME' terminated` (Argo's casing).
pub async fn terminate(client: Client, namespace: &str, name: &str) -> anyhow::Result<()> {
    let runs: Api<AnalysisRun> = Api::namespaced(client, namespace);
    let patch = json!({"spec": {"terminate": true}});
    runs.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_message)?;
    println!("analysisRun '{name}' terminated");
    Ok(())
}

fn icon(phase: AnalysisPhase) -> &'static str {
    match phase {
        AnalysisPhase::Successful => "✔",
        AnalysisPhase::Failed | AnalysisPhase::Error => "✖",
        AnalysisPhase::Inconclusive => "⚠",
        AnalysisPhase::Running | AnalysisPhase::Pending => "◌",
    }
}

/// The run as `get analysisrun` draws it.
pub fn render(run: &AnalysisRun, now: Timestamp) -> String {
    let mut out = String::new();
    let status = run.status.as_ref();
    let phase = status.map_or(AnalysisPhase::Pending, |s| s.phase);
    let line = |out: &mut String, key: &str, value: &str| {
        out.push_str(&format!("{:<15}{value}\n", format!("{key}:")));
    };
    line(&mut out, "Name", &run.name_any());
    line(&mut out, "Namespace", &run.namespace().unwrap_or_default());
    line(
        &mut out,
        "Status",
        &format!("{} {}", icon(phase), phase_name(phase)),
    );
    if let Some(message) = status.and_then(|s| s.message.as_deref()) {
        line(&mut out, "Message", message);
    }
    if let Some(started) = status.and_then(|s| s.started_at.as_ref()) {
        line(
            &mut out,
            "Started",
            &format!("{} ({} ago)", started.0, age(Some(started.0), now)),
        );
    }
    if let Some(summary) = status.and_then(|s| s.run_summary.as_ref()) {
        line(
            &mut out,
            "Metrics",
            &format!(
                "{} ({} successful, {} failed, {} inconclusive, {} error)",
                summary.count.unwrap_or(0),
                summary.successful.unwrap_or(0),
                summary.failed.unwrap_or(0),
                summary.inconclusive.unwrap_or(0),
                summary.error.unwrap_or(0)
            ),
        );
    }
    let results = status.and_then(|s| s.metric_results.as_ref());
    for metric in &run.spec.metrics {
        let result = results.and_then(|r| r.iter().find(|r| r.name == metric.name));
        let phase = result.map_or(AnalysisPhase::Pending, |r| r.phase);
        out.push_str(&format!(
            "\n{} {}  {}",
            icon(phase),
            metric.name,
            phase_name(phase)
        ));
        if let Some(r) = result {
            out.push_str(&format!(
                "  (count {}, successful {}, failed {}, inconclusive {}, error {})",
                r.count.unwrap_or(0),
                r.successful.unwrap_or(0),
                r.failed.unwrap_or(0),
                r.inconclusive.unwrap_or(0),
                r.error.unwrap_or(0)
            ));
            if r.dry_run == Some(true) {
                out.push_str("  [dry run]");
            }
        }
        out.push('\n');
        if let Some(message) = result.and_then(|r| r.message.as_deref()) {
            out.push_str(&format!("    {message}\n"));
        }
        for m in result
            .and_then(|r| r.measurements.as_ref())
            .into_iter()
            .flatten()
        {
            let started = m
                .started_at
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "    {} {:<12} {started}",
                icon(m.phase),
                phase_name(m.phase)
            ));
            if let Some(value) = &m.value {
                out.push_str(&format!("  value={value}"));
            }
            if let Some(job) = m.metadata.as_ref().and_then(|d| d.get("job-name")) {
                out.push_str(&format!("  job={job}"));
            }
            if let Some(message) = &m.message {
                out.push_str(&format!("  {message}"));
            }
            out.push('\n');
        }
    }
    out
}

/// `get analysisrun NAME [-w]`.
pub async fn get(
    client: Client,
    namespace: &str,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let runs: Api<AnalysisRun> = Api::namespaced(client, namespace);
    let run = runs.get(name).await.map_err(api_message)?;
    print!("{}", render(&run, Timestamp::now()));
    if !watch {
        return Ok(());
    }
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut changes = watcher(runs, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let clear = std::io::stdout().is_terminal();
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::MAX / 4));
    tokio::pin!(deadline);
    let mut shown = render(&run, Timestamp::now());
    loop {
        let run = tokio::select! {
            () = &mut deadline => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            next = changes.next() => match next {
                Some(Ok(run)) => run,
                Some(Err(_)) => continue,
                None => return Ok(()),
            },
        };
        let picture = render(&run, Timestamp::now());
        if picture != shown {
            if clear {
                print!("\x1b[H\x1b[2J");
            } else {
                println!();
            }
            print!("{picture}");
            shown = picture;
        }
        if run.status.as_ref().is_some_and(|s| s.phase.completed()) {
            return Ok(());
        }
    }
}

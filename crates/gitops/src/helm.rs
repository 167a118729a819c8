//! Helm sources rendered as Argo CD's repo-server renders them: `helm template` on the chart
//! (a Git path holding `Chart.yaml`, checked out whole, or a package from a chart repository,
//! [`crate::charts`]) with the Application's `source.helm`:
//!
//! - the release name (`releaseName`, else the Application's name) and the namespace
//!   (`helm.namespace`, else the destination's);
//! - `valueFiles` in order, relative to the chart, never outside the repository (missing ones
//!   skipped with `ignoreMissingValueFiles`; `http(s)://` ones passed to Helm as they are),
//!   then the inline values (`valuesObject`, else `values`) as the last values file;
//! - `parameters` as `--set` (`--set-string` with `forceString`) and `fileParameters` as
//!   `--set-file`;
//! - `--include-crds` unless `skipCrds`, `--skip-tests`, `--skip-schema-validation`,
//!   `--kube-version`, `--api-versions`;
//! - `helm dependency build` first when `Chart.yaml` lists dependencies and the chart has no
//!   `charts/` directory.
//!
//! Helm's own directories (`HELM_CACHE_HOME`, `HELM_CONFIG_HOME`, `HELM_DATA_HOME`) are the
//! rendering's scratch directory, so no user's Helm configuration changes what renders. Hooks
//! keep their `helm.sh/hook` annotations, which the sync maps to Argo CD's phases.

use std::{
    ffi::OsString,
    path::{Component, Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use sluice_api::ApplicationSourceHelm;

use crate::sources::on_path;

/// How long one `helm` command may run (Argo CD's exec timeout).
const HELM_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a chart did not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelmError {
    /// No `helm` on `PATH`.
    #[error(
        "Helm source: `helm template` needs the `helm` binary on PATH, and none was found: install Helm 3 or 4 (a release binary from helm.sh; Debian has no package)"
    )]
    NoBinary,
    /// A values or parameter file is missing or outside the repository.
    #[error("{0}")]
    File(String),
    /// Writing the inline values failed.
    #[error("writing {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// `helm` failed.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command line (no secrets: charts and values files only).
        command: String,
        /// Its standard error (trimmed).
        message: String,
    },
}

/// What renders a chart besides `source.helm`.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    /// The Application's name: the release name when `releaseName` is unset.
    pub app: &'a str,
    /// The destination namespace.
    pub namespace: &'a str,
    /// The chart's directory.
    pub chart: &'a Path,
    /// The directory value files may not leave (the checkout, or the unpacked chart).
    pub root: &'a Path,
    /// A scratch directory for the inline values and Helm's own directories.
    pub work: &'a Path,
}

/// `path`, relative to `base`, made absolute and lexically normalised; `None` when it leaves
/// `root`.
fn within(root: &Path, base: &Path, path: &str) -> Option<PathBuf> {
    let mut out = if Path::new(path).is_absolute() {
        root.to_path_buf()
    } else {
        base.to_path_buf()
    };
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    out.starts_with(root).then_some(out)
}

/// The arguments of `helm template` for `release` with `helm` (pure: the inline values file is
/// named, not written; files are checked by [`template`]).
pub fn template_args(
    release: &Release<'_>,
    helm: &ApplicationSourceHelm,
    value_files: &[OsString],
    inline_values: Option<&Path>,
) -> Vec<OsString> {
    let name = helm
        .release_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| release.app.to_owned());
    let namespace = helm
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| release.namespace.to_owned());
    let mut args: Vec<OsString> = vec![
        "template".into(),
        name.into(),
        release.chart.as_os_str().to_owned(),
    ];
    if !namespace.is_empty() {
        args.extend(["--namespace".into(), namespace.into()]);
    }
    if let Some(version) = helm.kube_version.as_ref().filter(|v| !v.is_empty()) {
        args.extend(["--kube-version".into(), version.into()]);
    }
    for api in helm.api_versions.iter().flatten() {
        args.extend(["--api-versions".into(), api.into()]);
    }
    for file in value_files {
        args.extend(["--values".into(), file.clone()]);
    }
    if let Some(inline) = inline_values {
        args.extend(["--values".into(), inline.as_os_str().to_owned()]);
    }
    for parameter in helm.parameters.iter().flatten() {
        let Some(name) = parameter.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let flag = if parameter.force_string.unwrap_or(false) {
            "--set-string"
        } else {
            "--set"
        };
        let value = parameter.value.as_deref().unwrap_or_default();
        args.extend([flag.into(), format!("{name}={value}").into()]);
    }
    if !helm.skip_crds.unwrap_or(false) {
        args.push("--include-crds".into());
    }
    if helm.skip_tests.unwrap_or(false) {
        args.push("--skip-tests".into());
    }
    if helm.skip_schema_validation.unwrap_or(false) {
        args.push("--skip-schema-validation".into());
    }
    args
}

/// The inline values of `helm`: `valuesObject` wins over `values`; none when both are empty.
fn inline_values(helm: &ApplicationSourceHelm) -> Option<String> {
    match &helm.values_object {
        Some(object) if !object.is_null() => serde_json::to_string(object).ok(),
        _ => helm.values.clone().filter(|v| !v.trim().is_empty()),
    }
}

/// The value files as Helm is given them: remote ones as written, local ones checked.
fn value_files(
    release: &Release<'_>,
    helm: &ApplicationSourceHelm,
) -> Result<Vec<OsString>, HelmError> {
    let mut out = Vec::new();
    for file in helm.value_files.iter().flatten() {
        if file.starts_with("http://") || file.starts_with("https://") {
            out.push(file.into());
            continue;
        }
        let path = within(release.root, release.chart, file).ok_or_else(|| {
            HelmError::File(format!(
                "value file {file:?} resolved to outside repository root"
            ))
        })?;
        if path.is_file() {
            out.push(path.into_os_string());
        } else if !helm.ignore_missing_value_files.unwrap_or(false) {
            return Err(HelmError::File(format!(
                "value file {file:?}: open {}: no such file or directory",
                path.strip_prefix(release.root).unwrap_or(&path).display()
            )));
        }
    }
    Ok(out)
}

/// `--set-file` arguments, each file within the repository.
fn file_parameters(
    release: &Release<'_>,
    helm: &ApplicationSourceHelm,
) -> Result<Vec<OsString>, HelmError> {
    let mut args = Vec::new();
    for parameter in helm.file_parameters.iter().flatten() {
        let (Some(name), Some(file)) = (parameter.name.as_deref(), parameter.path.as_deref())
        else {
            continue;
        };
        let path = within(release.root, release.chart, file).ok_or_else(|| {
            HelmError::File(format!(
                "file parameter {name}: {file:?} resolved to outside repository root"
            ))
        })?;
        args.push("--set-file".into());
        args.push(format!("{name}={}", path.display()).into());
    }
    Ok(args)
}

/// Whether `Chart.yaml` lists dependencies and `charts/` does not exist.
fn needs_dependencies(chart: &Path) -> bool {
    if chart.join("charts").is_dir() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(chart.join("Chart.yaml")) else {
        return false;
    };
    serde_saphyr::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|c| c.get("dependencies").and_then(|d| d.as_array()).cloned())
        .is_some_and(|d| !d.is_empty())
}

/// Renders `release` with `helm` (or no `source.helm`): the text of `helm template`.
pub async fn template(
    release: &Release<'_>,
    helm: Option<&ApplicationSourceHelm>,
) -> Result<String, HelmError> {
    if !on_path("helm") {
        return Err(HelmError::NoBinary);
    }
    let default = ApplicationSourceHelm::default();
    let helm = helm.unwrap_or(&default);
    let files = value_files(release, helm)?;
    let inline = match inline_values(helm) {
        Some(values) => {
            let path = release.work.join("values-inline.yaml");
            std::fs::write(&path, values).map_err(|e| HelmError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            Some(path)
        }
        None => None,
    };
    if needs_dependencies(release.chart) {
        let args: Vec<OsString> = vec![
            "dependency".into(),
            "build".into(),
            release.chart.as_os_str().to_owned(),
        ];
        run(release.work, &args).await?;
    }
    let mut args = template_args(release, helm, &files, inline.as_deref());
    args.extend(file_parameters(release, helm)?);
    run(release.work, &args).await
}

/// Runs `helm ARGS` with Helm's directories under `work`; its standard output.
async fn run(work: &Path, args: &[OsString]) -> Result<String, HelmError> {
    let command_line = format!(
        "helm {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let home = work.join(".helm");
    let mut command = tokio::process::Command::new("helm");
    command
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let failed = |message: String| HelmError::Command {
        command: command_line.clone(),
        message,
    };
    let output = tokio::time::timeout(HELM_TIMEOUT, command.output())
        .await
        .map_err(|_| failed(format!("timed out after {HELM_TIMEOUT:?}")))?
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests;

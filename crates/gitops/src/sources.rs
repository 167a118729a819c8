//! Which tool renders a source, as Argo CD's repo-server decides (`GetAppSourceType`): the
//! type the source names explicitly (`directory`, `kustomize`, `helm` or `plugin`; more than
//! one is an error), else what the path holds — a `kustomization.yaml` (Kustomize, which wins
//! over a `Chart.yaml`), a `Chart.yaml` (Helm), otherwise a plain directory.

use sluice_api::ApplicationSource;

use crate::{kustomize, repository::SourceFile};

/// How a source is rendered (`status.sourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceType {
    /// Plain manifests.
    Directory,
    /// `kustomize build`.
    Kustomize,
    /// `helm template`.
    Helm,
}

impl SourceType {
    /// The name Argo CD writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "Directory",
            Self::Kustomize => "Kustomize",
            Self::Helm => "Helm",
        }
    }
}

/// Why a source's type cannot be decided or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceTypeError {
    /// More than one of `directory`, `kustomize`, `helm`, `plugin` is set.
    #[error("multiple application sources defined: {0}")]
    Multiple(String),
    /// A Config Management Plugin source.
    #[error("config management plugins (spec.source.plugin) are not supported")]
    Plugin,
}

/// The type of `source` whose path holds `files`.
pub fn detect(
    source: &ApplicationSource,
    files: &[SourceFile],
) -> Result<SourceType, SourceTypeError> {
    let explicit: Vec<&str> = [
        ("Directory", source.directory.is_some()),
        ("Kustomize", source.kustomize.is_some()),
        ("Helm", source.helm.is_some() || source.chart.is_some()),
        ("Plugin", source.plugin.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| *name)
    .collect();
    let kind = match explicit.as_slice() {
        [] if kustomize::is_kustomization(files) => "Kustomize",
        [] if files.iter().any(|f| f.path == "Chart.yaml") => "Helm",
        [] => "Directory",
        [one] => one,
        many => return Err(SourceTypeError::Multiple(many.join(", "))),
    };
    match kind {
        "Kustomize" => Ok(SourceType::Kustomize),
        "Helm" => Ok(SourceType::Helm),
        "Plugin" => Err(SourceTypeError::Plugin),
        _ => Ok(SourceType::Directory),
    }
}

/// Whether `name` is an executable file on `PATH`.
pub(crate) fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: Vec::new(),
        }
    }

    fn source() -> ApplicationSource {
        ApplicationSource {
            repo_url: "https://example.com/cd.git".into(),
            ..Default::default()
        }
    }

    #[test]
    fn discovery_then_explicit_types() {
        let plain = [file("a.yaml")];
        let kustomized = [file("kustomization.yaml"), file("Chart.yaml")];
        assert_eq!(detect(&source(), &plain), Ok(SourceType::Directory));
        assert_eq!(detect(&source(), &kustomized), Ok(SourceType::Kustomize));
        let mut explicit = source();
        explicit.kustomize = Some(Default::default());
        assert_eq!(detect(&explicit, &plain), Ok(SourceType::Kustomize));
        explicit.directory = Some(Default::default());
        assert_eq!(
            detect(&explicit, &plain).unwrap_err().to_string(),
            "multiple application sources defined: Directory, Kustomize"
        );
    }

    #[test]
    fn a_chart_is_helm_unless_kustomize_is_there_too() {
        let chart = [file("Chart.yaml"), file("templates/a.yaml")];
        assert_eq!(detect(&source(), &chart), Ok(SourceType::Helm));
        let mut from_repository = source();
        from_repository.chart = Some("argo-rollouts".into());
        assert_eq!(detect(&from_repository, &[]), Ok(SourceType::Helm));
    }
}

//! Directory sources: the manifests of an Application's `path`, as Argo CD's repo-server finds
//! them for a plain directory — `.yaml`, `.yml` and `.json` files at the top level (or below,
//! with `directory.recurse`), kept or dropped by the `directory.include` / `exclude` globs
//! (brace lists allowed, matched against the path below the source path), multi-document YAML
//! split, empty documents skipped, `kind: List` expanded.
//!
//! A file that does not parse, or a document that is not a Kubernetes object, fails the whole
//! rendering with an error naming the file and the line: nothing of a broken revision is ever
//! applied or pruned.

use globset::{Glob, GlobMatcher};
use serde_json::Value;

use crate::repository::SourceFile;

/// Why a source did not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A file is not valid YAML or JSON.
    #[error("failed to unmarshal {file}: line {line}: {message}")]
    Parse {
        /// The file, below the source path.
        file: String,
        /// 1-based line of the error (0 when unknown).
        line: u64,
        /// The parser's message.
        message: String,
    },
    /// A document is not a Kubernetes object.
    #[error("{file}: document {document}: {message}")]
    NotAnObject {
        /// The file.
        file: String,
        /// 1-based document number in the file.
        document: usize,
        /// What is missing.
        message: String,
    },
    /// An include or exclude pattern is not a glob.
    #[error("invalid glob pattern '{pattern}': {message}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// Why.
        message: String,
    },
}

/// How the files of a directory source are chosen (`spec.source.directory`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// Descend into subdirectories.
    pub recurse: bool,
    /// Only paths matching this glob (Argo CD: empty means all).
    pub include: Option<String>,
    /// No path matching this glob.
    pub exclude: Option<String>,
}

/// One object of the rendered source and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The object as written.
    pub object: Value,
    /// The file below the source path.
    pub file: String,
}

fn glob(pattern: &Option<String>) -> Result<Option<GlobMatcher>, ManifestError> {
    let Some(pattern) = pattern.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    Glob::new(pattern)
        .map(|g| Some(g.compile_matcher()))
        .map_err(|e| ManifestError::Glob {
            pattern: pattern.to_owned(),
            message: e.kind().to_string(),
        })
}

/// Whether a file's name marks it as a manifest.
fn is_manifest(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// The objects of the chosen files, in path order, each file's documents in order.
pub fn render(files: &[SourceFile], directory: &Directory) -> Result<Vec<Manifest>, ManifestError> {
    let include = glob(&directory.include)?;
    let exclude = glob(&directory.exclude)?;
    let mut chosen: Vec<&SourceFile> = files
        .iter()
        .filter(|f| directory.recurse || !f.path.contains('/'))
        .filter(|f| is_manifest(&f.path))
        .filter(|f| include.as_ref().is_none_or(|g| g.is_match(&f.path)))
        .filter(|f| exclude.as_ref().is_none_or(|g| !g.is_match(&f.path)))
        .collect();
    chosen.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::new();
    for file in chosen {
        for (index, document) in documents(file)?.into_iter().enumerate() {
            expand(&file.path, index + 1, document, &mut out)?;
        }
    }
    Ok(out)
}

/// The objects of one rendered stream (a tool's output, named `file` in errors): documents
/// split, empty ones skipped, `List`s expanded, each checked to be an object.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Vec<Manifest>, ManifestError> {
    let source = SourceFile {
        path: file.to_owned(),
        bytes: bytes.to_vec(),
    };
    let mut out = Vec::new();
    for (index, document) in documents(&source)?.into_iter().enumerate() {
        expand(file, index + 1, document, &mut out)?;
    }
    Ok(out)
}

/// The documents of one file (YAML streams split; JSON is YAML).
fn documents(file: &SourceFile) -> Result<Vec<Value>, ManifestError> {
    let text = String::from_utf8_lossy(&file.bytes);
    serde_saphyr::from_multiple::<Value>(&text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or_default();
        let message = e.to_string();
        let message = message.lines().next().unwrap_or_default().to_owned();
        ManifestError::Parse {
            file: file.path.clone(),
            line,
            message,
        }
    })
}

/// Adds a document's object (or a `List`'s items) to `out`; empty documents add nothing.
fn expand(
    file: &str,
    document: usize,
    value: Value,
    out: &mut Vec<Manifest>,
) -> Result<(), ManifestError> {
    let not_an_object = |message: &str| ManifestError::NotAnObject {
        file: file.to_owned(),
        document,
        message: message.to_owned(),
    };
    let object = match value {
        Value::Null => return Ok(()),
        Value::Object(map) if map.is_empty() => return Ok(()),
        Value::Object(map) => map,
        _ => return Err(not_an_object("not a YAML mapping")),
    };
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    if kind.is_empty() {
        return Err(not_an_object("Object 'Kind' is missing"));
    }
    if api_version.is_none_or(str::is_empty) {
        return Err(not_an_object("Object 'apiVersion' is missing"));
    }
    if kind.ends_with("List") && api_version == Some("v1") {
        let items = object.get("items").and_then(Value::as_array);
        for item in items.into_iter().flatten() {
            expand(file, document, item.clone(), out)?;
        }
        return Ok(());
    }
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str);
    if name.is_none_or(str::is_empty) {
        return Err(not_an_object(&format!("{kind} has no metadata.name")));
    }
    out.push(Manifest {
        object: Value::Object(object),
        file: file.to_owned(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn names(manifests: &[Manifest]) -> Vec<String> {
        manifests
            .iter()
            .map(|m| m.object["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: NAME\n";

    #[test]
    fn top_level_yaml_and_json_only_unless_recursing() {
        let files = [
            file("b.yaml", &SERVICE.replace("NAME", "b")),
            file("a.yml", &SERVICE.replace("NAME", "a")),
            file(
                "c.json",
                r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"c"}}"#,
            ),
            file("README.md", "# not a manifest"),
            file("sub/d.yaml", &SERVICE.replace("NAME", "d")),
        ];
        let top = render(&files, &Directory::default()).unwrap();
        assert_eq!(names(&top), ["a", "b", "c"]);
        let all = render(
            &files,
            &Directory {
                recurse: true,
                ..Directory::default()
            },
        )
        .unwrap();
        assert_eq!(names(&all), ["a", "b", "c", "d"]);
    }

    #[test]
    fn include_and_exclude_globs_with_brace_lists() {
        let files = [
            file("a.yaml", &SERVICE.replace("NAME", "a")),
            file("b.yaml", &SERVICE.replace("NAME", "b")),
            file("c.yaml", &SERVICE.replace("NAME", "c")),
        ];
        let dir = Directory {
            recurse: false,
            include: Some("{a,b}.yaml".into()),
            exclude: Some("b.*".into()),
        };
        assert_eq!(names(&render(&files, &dir).unwrap()), ["a"]);
    }

    #[test]
    fn multi_document_files_skip_empty_documents_and_expand_lists() {
        let text = format!(
            "---\n{}---\n# only a comment\n---\n{}---\napiVersion: v1\nkind: List\nitems:\n- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: l}}}}\n",
            SERVICE.replace("NAME", "x"),
            SERVICE.replace("NAME", "y2")
        );
        let out = render(&[file("all.yaml", &text)], &Directory::default()).unwrap();
        assert_eq!(names(&out), ["x", "y2", "l"]);
    }

    #[test]
    fn a_broken_file_names_itself_and_its_line() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: [a\n";
        let err = render(&[file("svc.yaml", text)], &Directory::default()).unwrap_err();
        let ManifestError::Parse { file, line, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(file, "svc.yaml");
        assert!(*line >= 5, "{err}");
        assert!(
            err.to_string()
                .starts_with("failed to unmarshal svc.yaml: line"),
            "{err}"
        );
    }

    #[test]
    fn documents_that_are_not_objects_are_errors() {
        let no_kind = "apiVersion: v1\nmetadata:\n  name: x\n";
        let err = render(&[file("x.yaml", no_kind)], &Directory::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.yaml: document 1: Object 'Kind' is missing"
        );
        let scalar = "just a string\n";
        assert!(render(&[file("s.yaml", scalar)], &Directory::default()).is_err());
    }
}

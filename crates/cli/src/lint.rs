//! `sluice lint -f FILE`: checks a manifest file without a cluster, as `kubectl argo rollouts
//! lint` does (`cmd/lint/lint.go`): every Rollout of the (multi-document YAML or JSON) file
//! through the same validation the controller turns into `InvalidSpec`
//! ([`sluice_api::validation`]), fields the Rollout kind does not have (Argo decodes strictly),
//! and the Services and Ingresses of the same file that each Rollout names
//! ([`sluice_api::validation::validate_service`], [`validate_ingress`]).
//!
//! Nothing is printed for a good file (exit 0). Otherwise each problem is a line on stdout,
//! `FILE:LINE: PATH: PROBLEM`, the line being the deepest part of the field's path the file
//! has; stderr ends with `Error: ` and the first problem, as Argo's does; exit 1.
//!
//! [`validate_ingress`]: sluice_api::validation::validate_ingress

use std::{path::PathBuf, process::ExitCode};

use clap::Args;
use k8s_openapi::api::{core::v1::Service, networking::v1::Ingress};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use sluice_api::{Rollout, validation};

use crate::image_set::yaml::{self, Node};

/// Flags of `sluice lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The file to lint (YAML, several documents allowed, or JSON).
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    file: PathBuf,
}

/// One problem: where, and what (`PATH: PROBLEM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file's 1-based line, when known.
    pub line: Option<usize>,
    /// The field path and what is wrong with it, Kubernetes' `field.Error` text.
    pub text: String,
}

/// A document of the file: its JSON, and its nodes with their places when they are known.
struct Document<'a> {
    value: Value,
    nodes: Option<&'a Node>,
}

impl Document<'_> {
    fn kind(&self) -> (&str, &str) {
        let api_version = self.value["apiVersion"].as_str().unwrap_or_default();
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        (group, self.value["kind"].as_str().unwrap_or_default())
    }

    /// The line of the deepest part of `path` (`spec.strategy.canary.steps[1].setWeight`)
    /// that the document has.
    fn line_of(&self, source: &str, path: &str) -> Option<usize> {
        let mut node = self.nodes?;
        let mut offset = node.span.start;
        for segment in path.split('.') {
            let (key, indexes) = match segment.find('[') {
                Some(at) => (&segment[..at], &segment[at..]),
                None => (segment, ""),
            };
            let Some((key_node, value)) = node.entry(key) else {
                break;
            };
            offset = key_node.span.start;
            node = value;
            for index in indexes
                .split(['[', ']'])
                .filter(|s| !s.is_empty())
                .filter_map(|i| i.parse::<usize>().ok())
            {
                let Some(item) = node.items().get(index) else {
                    return Some(yaml::line_of(source, offset));
                };
                offset = item.span.start;
                node = item;
            }
        }
        Some(yaml::line_of(source, offset))
    }
}

/// Every problem of the manifest `source`; an error when it is not readable at all.
pub fn lint(source: &str) -> Result<Vec<Problem>, String> {
    let values: Vec<Value> = serde_saphyr::from_multiple(source).map_err(|e| e.to_string())?;
    let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
    // The same documents with their places; without them problems have no line.
    let nodes: Vec<Node> = yaml::parse_stream(source)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !matches!(n.as_str(), Some("" | "~" | "null" | "Null" | "NULL")))
        .collect();
    let aligned = nodes.len() == values.len();
    let documents: Vec<Document<'_>> = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| Document {
            value,
            nodes: aligned.then(|| &nodes[i]),
        })
        .collect();
    let mut problems = Vec::new();
    let mut rollouts = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        let at = |path: &str| document.line_of(source, path);
        let mut report = |path: &str, text: String| {
            problems.push(Problem {
                line: at(path),
                text,
            })
        };
        if !document.value.is_object() {
            report("", format!("document {}: not an object", i + 1));
            continue;
        }
        if document.value["kind"].as_str().is_none_or(str::is_empty) {
            report("", format!("document {}: Object 'Kind' is missing", i + 1));
            continue;
        }
        let strict = match document.kind() {
            ("argoproj.io", "Rollout") => match strictly::<Rollout>(&document.value) {
                Ok((rollout, unknown)) => {
                    rollouts.push((i, rollout));
                    Ok(unknown)
                }
                Err(err) => {
                    report("", format!("Rollout: {err}"));
                    continue;
                }
            },
            ("", "Service") => unknown_fields::<Service>(&document.value),
            ("networking.k8s.io", "Ingress")
                if document.value["apiVersion"] == "networking.k8s.io/v1" =>
            {
                unknown_fields::<Ingress>(&document.value)
            }
            _ => Ok(Vec::new()),
        };
        match strict {
            Ok(unknown) => {
                for path in unknown {
                    let key = path.rsplit('.').next().unwrap_or_default();
                    let key = key.split('[').next().unwrap_or_default();
                    report(&path, format!("{path}: json: unknown field {key:?}"));
                }
            }
            Err(err) => report("", format!("{}: {err}", document.kind().1)),
        }
    }
    for (i, rollout) in &rollouts {
        let document = &documents[*i];
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let mut errors = validation::validate_rollout(&rollout.spec);
        for other in &documents {
            match other.kind() {
                ("", "Service") => errors.extend(validation::validate_service(
                    &name,
                    &rollout.spec,
                    &other.value,
                )),
                ("networking.k8s.io" | "extensions", "Ingress") => {
                    errors.extend(validation::validate_ingress(&rollout.spec, &other.value))
                }
                _ => {}
            }
        }
        for error in errors {
            problems.push(Problem {
                line: document.line_of(source, &error.path),
                text: error.to_string(),
            });
        }
    }
    Ok(problems)
}

/// `value` as a `T`, and the paths of the fields `T` does not have.
fn strictly<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(T, Vec<String>), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    dropped(value, &back, "", &mut unknown);
    Ok((typed, unknown))
}

fn unknown_fields<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Vec<String>, String> {
    strictly::<T>(value).map(|(_, unknown)| unknown)
}

/// The paths of fields of `before` that reading it as a type and writing it back dropped:
/// fields the type does not have. Null fields are left out (writers drop those).
fn dropped(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(before), Value::Object(after)) => {
            for (key, value) in before {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match after.get(key) {
                    Some(kept) => dropped(value, kept, &at, out),
                    None if value.is_null() => {}
                    None => out.push(at),
                }
            }
        }
        (Value::Array(before), Value::Array(after)) => {
            for (i, (value, kept)) in before.iter().zip(after).enumerate() {
                dropped(value, kept, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Runs `lint`: problems on stdout, the first again on stderr, exit 1 if there are any.
pub fn run(args: &LintArgs) -> ExitCode {
    let file = args.file.display().to_string();
    let source = match std::fs::read_to_string(&args.file) {
        Ok(source) => source,
        Err(err) => {
            eprintln!("Error: open {file}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let problems = match lint(&source) {
        Ok(problems) => problems,
        Err(err) => {
            println!("{file}: {err}");
            eprintln!("Error: {err}");
            return ExitCode::FAILURE;
        }
    };
    for problem in &problems {
        match problem.line {
            Some(line) => println!("{file}:{line}: {}", problem.text),
            None => println!("{file}: {}", problem.text),
        }
    }
    match problems.first() {
        None => ExitCode::SUCCESS,
        Some(first) => {
            eprintln!("Error: {}", first.text);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLLOUT: &str = "\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: demo
spec:
  selector:
    matchLabels:
      app: demo
  template:
    metadata:
      labels:
        app: demo
    spec:
      containers:
      - name: demo
        image: demo:1
  strategy:
    canary:
      canaryService: demo-canary
      stableService: demo-stable
      steps:
      - setWeight: 20
      - pause: {}
";

    fn service(name: &str, app: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {app}\n  ports:\n  - port: 80\n"
        )
    }

    #[test]
    fn a_good_file_has_no_problems() {
        let text = format!(
            "{ROLLOUT}{}{}",
            service("demo-canary", "demo"),
            service("demo-stable", "demo")
        );
        assert_eq!(lint(&text).unwrap(), []);
    }

    #[test]
    fn each_problem_names_its_path_and_line() {
        let text = format!(
            "{}{}",
            ROLLOUT
                .replace("setWeight: 20", "setWeight: 120")
                .replace("    canary:\n", "    canary:\n      colour: blue\n"),
            service("demo-stable", "other")
        );
        let problems = lint(&text).unwrap();
        let texts: Vec<(Option<usize>, &str)> =
            problems.iter().map(|p| (p.line, p.text.as_str())).collect();
        assert_eq!(
            texts,
            [
                (
                    Some(19),
                    "spec.strategy.canary.colour: json: unknown field \"colour\""
                ),
                (
                    Some(23),
                    "spec.strategy.canary.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100"
                ),
                (
                    Some(21),
                    "spec.strategy.canary.stableService: Invalid value: \"demo-stable\": Service \"demo-stable\" has unmatch label \"app\" in rollout"
                ),
            ],
            "{problems:#?}"
        );
    }
}

//! Where images live in a CD repository's YAML: the containers and init containers of every
//! workload kind Argo and Kubernetes define, the `images:` of a kustomization, and scalars at
//! Helm values paths. Pure: documents in, [`Site`]s out.

use std::ops::Range;

use super::{
    reference::ImageRef,
    yaml::{Node, Style, Value},
};

/// One place that holds (part of) an image reference.
#[derive(Debug, Clone)]
pub struct Site {
    /// Byte offset where the site starts (for its line number).
    pub offset: usize,
    /// What a human calls this place: `Rollout rollouts-demo, container app`.
    pub description: String,
    /// The image the site refers to now.
    pub current: ImageRef,
    /// How to change it.
    pub holder: Holder,
}

/// The shape of a site, which decides the edit.
#[derive(Debug, Clone)]
pub enum Holder {
    /// A container's `image:` scalar: a whole reference.
    Container {
        /// The container's name.
        name: String,
        /// The `image` scalar.
        scalar: Scalar,
    },
    /// A kustomization `images:` entry (`name`, `newName`, `newTag`, `digest`).
    Kustomize {
        /// Its `name` (the image as the manifests spell it).
        name: String,
        /// The entry's mapping.
        entry: Node,
    },
    /// A scalar at a Helm values path; `part` says which part of the image it holds.
    Helm {
        /// The path as given (`image.tag`).
        path: String,
        /// The scalar.
        scalar: Scalar,
        /// Which part of the image it holds.
        part: Part,
    },
}

/// A scalar's bytes and style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// The scalar's source bytes, quotes included.
    pub span: Range<usize>,
    /// How it is written.
    pub style: Style,
    /// Its value.
    pub value: String,
}

impl Scalar {
    fn of(node: &Node) -> Option<Scalar> {
        match &node.value {
            Value::Scalar(value, style) => Some(Scalar {
                span: node.span.clone(),
                style: *style,
                value: value.clone(),
            }),
            _ => None,
        }
    }
}

/// What a Helm values scalar holds, by its key: `…tag`, `…digest`, `…repository`/`…repo`, or
/// (any other key) a whole reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `tag: 1.2.3`
    Tag,
    /// `digest: sha256:…`
    Digest,
    /// `repository: registry/app`
    Repository,
    /// `image: registry/app:1.2.3`
    Whole,
}

impl Site {
    /// Whether `selector` (a container name or an image repository) picks this site.
    pub fn matches(&self, selector: &str) -> bool {
        match &self.holder {
            Holder::Container { name, .. } => {
                name == selector || self.current.same_repository(selector)
            }
            Holder::Kustomize { name, .. } => {
                name == selector
                    || ImageRef::parse(name).same_repository(selector)
                    || self.current.same_repository(selector)
            }
            Holder::Helm { part, .. } => {
                // A tag or digest alone, with no repository beside it, names no image: the
                // path the user gave is the match.
                self.current.repository.is_empty() && matches!(part, Part::Tag | Part::Digest)
                    || self.current.same_repository(selector)
            }
        }
    }
}

/// The container images of one document (a workload, or a `List` of them).
pub fn containers(document: &Node) -> Vec<Site> {
    let mut sites = Vec::new();
    workload(document, &mut sites);
    sites
}

fn workload(document: &Node, sites: &mut Vec<Site>) {
    let kind = document.get("kind").and_then(Node::as_str).unwrap_or("");
    let name = document
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str)
        .unwrap_or("?");
    let owner = format!("{kind} {name}");
    let at = |node: &Node, path: &[&str]| {
        path.iter()
            .try_fold(node, |node, key| node.get(key))
            .cloned()
    };
    let spec = document.get("spec");
    match kind {
        "List" => {
            for item in document.get("items").map(Node::items).unwrap_or_default() {
                workload(item, sites);
            }
        }
        "Pod" => pod(spec, &owner, sites),
        "PodTemplate" => pod(at(document, &["template", "spec"]).as_ref(), &owner, sites),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        | "Rollout" => pod(
            spec.and_then(|s| at(s, &["template", "spec"])).as_ref(),
            &owner,
            sites,
        ),
        "CronJob" => pod(
            spec.and_then(|s| at(s, &["jobTemplate", "spec", "template", "spec"]))
                .as_ref(),
            &owner,
            sites,
        ),
        "Experiment" => {
            for template in spec
                .and_then(|s| s.get("templates"))
                .map(Node::items)
                .unwrap_or_default()
            {
                let template_name = template.get("name").and_then(Node::as_str).unwrap_or("?");
                pod(
                    at(template, &["template", "spec"]).as_ref(),
                    &format!("{owner}, template {template_name}"),
                    sites,
                );
            }
        }
        "AnalysisTemplate" | "ClusterAnalysisTemplate" | "AnalysisRun" => {
            for metric in spec
                .and_then(|s| s.get("metrics"))
                .map(Node::items)
                .unwrap_or_default()
            {
                let metric_name = metric.get("name").and_then(Node::as_str).unwrap_or("?");
                pod(
                    at(metric, &["provider", "job", "spec", "template", "spec"]).as_ref(),
                    &format!("{owner}, metric {metric_name}"),
                    sites,
                );
            }
        }
        _ => {}
    }
}

fn pod(spec: Option<&Node>, owner: &str, sites: &mut Vec<Site>) {
    let Some(spec) = spec else { return };
    for (list, what) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        for container in spec.get(list).map(Node::items).unwrap_or_default() {
            let name = container.get("name").and_then(Node::as_str).unwrap_or("");
            let Some(scalar) = container.get("image").and_then(Scalar::of) else {
                continue;
            };
            sites.push(Site {
                offset: scalar.span.start,
                description: format!("{owner}, {what} {name}"),
                current: ImageRef::parse(&scalar.value),
                holder: Holder::Container {
                    name: name.to_owned(),
                    scalar,
                },
            });
        }
    }
}

/// The `images:` entries of a kustomization document. `is_kustomization_file` says whether the
/// file is named like one (`kustomization.yaml`), for documents that leave out `kind`.
pub fn kustomize_images(document: &Node, is_kustomization_file: bool) -> Vec<Site> {
    let kind = document.get("kind").and_then(Node::as_str);
    let is_kustomization = match kind {
        Some(kind) => kind == "Kustomization" || kind == "Component",
        None => is_kustomization_file,
    };
    if !is_kustomization {
        return Vec::new();
    }
    let mut sites = Vec::new();
    for entry in document.get("images").map(Node::items).unwrap_or_default() {
        let Some(name) = entry.get("name").and_then(Node::as_str) else {
            continue;
        };
        let field = |key| entry.get(key).and_then(Node::as_str).map(str::to_owned);
        let current = ImageRef {
            repository: field("newName").unwrap_or_else(|| ImageRef::parse(name).repository),
            tag: field("newTag"),
            digest: field("digest"),
        };
        sites.push(Site {
            offset: entry.span.start,
            description: format!("kustomization images: {name}"),
            current,
            holder: Holder::Kustomize {
                name: name.to_owned(),
                entry: entry.clone(),
            },
        });
    }
    sites
}

/// The scalar at a Helm values `path` (`image.tag`, `app.images.0.tag`; `\.` for a dot inside
/// a key), if the document has one.
pub fn helm_value(document: &Node, path: &str) -> Option<Site> {
    let keys = split_path(path);
    let (last, parents) = keys.split_last()?;
    let mut parent = document;
    for key in parents {
        parent = step(parent, key)?;
    }
    let scalar = Scalar::of(step(parent, last)?)?;
    let sibling = |key| {
        parent
            .get(key)
            .and_then(Node::as_str)
            .filter(|s| !s.is_empty())
    };
    let beside = sibling("repository")
        .or_else(|| sibling("repo"))
        .map(|repository| match sibling("registry") {
            Some(registry) => format!("{}/{repository}", registry.trim_end_matches('/')),
            None => repository.to_owned(),
        });
    let part = match last.to_ascii_lowercase() {
        key if key.ends_with("tag") => Part::Tag,
        key if key.ends_with("digest") => Part::Digest,
        key if key.ends_with("repository") || key.ends_with("repo") => Part::Repository,
        _ => Part::Whole,
    };
    let value = scalar.value.clone();
    let current = match part {
        Part::Tag => ImageRef {
            repository: beside.clone().unwrap_or_default(),
            tag: Some(value),
            digest: None,
        },
        Part::Digest => ImageRef {
            repository: beside.unwrap_or_default(),
            tag: None,
            digest: Some(value),
        },
        Part::Repository => ImageRef {
            repository: value,
            tag: sibling("tag").map(str::to_owned),
            digest: None,
        },
        Part::Whole => ImageRef::parse(&value),
    };
    Some(Site {
        offset: scalar.span.start,
        description: format!("values {path}"),
        current,
        holder: Holder::Helm {
            path: path.to_owned(),
            scalar,
            part,
        },
    })
}

fn step<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.value {
        Value::Sequence { items, .. } => items.get(key.parse::<usize>().ok()?),
        _ => node.get(key),
    }
}

fn split_path(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => keys.last_mut().unwrap().extend(chars.next()),
            '.' => keys.push(String::new()),
            c => keys.last_mut().unwrap().push(c),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse_stream;
    use super::*;

    #[test]
    fn every_workload_kind_yields_its_containers_and_init_containers() {
        let text = r#"
kind: Rollout
metadata: {name: r}
spec:
  template:
    spec:
      initContainers: [{name: migrate, image: "app:1"}]
      containers:
      - name: app
        image: app:1
---
kind: StatefulSet
metadata: {name: s}
spec: {template: {spec: {containers: [{name: db, image: db:5}]}}}
---
kind: DaemonSet
metadata: {name: d}
spec: {template: {spec: {containers: [{name: agent, image: agent:6}]}}}
---
kind: Job
metadata: {name: j}
spec: {template: {spec: {containers: [{name: once, image: once:7}]}}}
---
kind: Deployment
metadata: {name: dep}
spec: {template: {spec: {containers: [{name: web, image: web:8}]}}}
---
kind: CronJob
metadata: {name: c}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: job, image: tool:2}]}}}}}
---
kind: Experiment
metadata: {name: e}
spec:
  templates:
  - name: baseline
    template: {spec: {containers: [{name: app, image: app:1}]}}
---
kind: AnalysisTemplate
metadata: {name: a}
spec:
  metrics:
  - name: smoke
    provider: {job: {spec: {template: {spec: {containers: [{name: t, image: test:3}]}}}}}
---
kind: List
items:
- kind: Pod
  metadata: {name: p}
  spec: {containers: [{name: x, image: x:4}]}
- kind: ConfigMap
  data: {image: not-a-container:1}
"#;
        let docs = parse_stream(text).unwrap();
        let found: Vec<String> = docs
            .iter()
            .flat_map(containers)
            .map(|site| format!("{} = {}", site.description, site.current))
            .collect();
        assert_eq!(
            found,
            [
                "Rollout r, init container migrate = app:1",
                "Rollout r, container app = app:1",
                "StatefulSet s, container db = db:5",
                "DaemonSet d, container agent = agent:6",
                "Job j, container once = once:7",
                "Deployment dep, container web = web:8",
                "CronJob c, container job = tool:2",
                "Experiment e, template baseline, container app = app:1",
                "AnalysisTemplate a, metric smoke, container t = test:3",
                "Pod p, container x = x:4",
            ]
        );
    }

    #[test]
    fn kustomize_entries_read_their_effective_image() {
        let text = "images:\n- name: app\n  newName: registry/app\n  newTag: 1.0.0\n- name: db\n  digest: sha256:ab\n";
        let docs = parse_stream(text).unwrap();
        assert!(kustomize_images(&docs[0], false).is_empty());
        let sites = kustomize_images(&docs[0], true);
        assert_eq!(sites[0].current.to_string(), "registry/app:1.0.0");
        assert!(sites[0].matches("app") && sites[0].matches("registry/app"));
        assert_eq!(sites[1].current.to_string(), "db@sha256:ab");
    }

    #[test]
    fn helm_paths_find_their_scalar_and_the_repository_beside_it() {
        let text = "image:\n  registry: r.io\n  repository: team/app\n  tag: \"1.0\"\nsidecars:\n- image: proxy:2\nodd:\n  a.b: {tag: x}\n";
        let docs = parse_stream(text).unwrap();
        let tag = helm_value(&docs[0], "image.tag").unwrap();
        assert_eq!(tag.current.to_string(), "r.io/team/app:1.0");
        assert!(tag.matches("r.io/team/app") && !tag.matches("other"));
        let whole = helm_value(&docs[0], "sidecars.0.image").unwrap();
        assert_eq!(whole.current.to_string(), "proxy:2");
        let dotted = helm_value(&docs[0], "odd.a\\.b.tag").unwrap();
        assert!(dotted.matches("anything"));
        assert!(helm_value(&docs[0], "image.missing").is_none());
    }
}

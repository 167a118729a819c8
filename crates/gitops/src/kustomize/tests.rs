use super::*;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sluice_api::{KustomizePatch, KustomizeReplica, KustomizeSelector};

fn none(_: &str) -> bool {
    false
}

#[test]
fn images_parse_as_kustomize_edit_set_image() {
    assert_eq!(
        image("nginx:1.25").unwrap(),
        json!({"name": "nginx", "newTag": "1.25"})
    );
    assert_eq!(
        image("nginx=registry:5000/team/nginx:1.25@sha256:abc").unwrap(),
        json!({"name": "nginx", "newName": "registry:5000/team/nginx", "newTag": "1.25", "digest": "sha256:abc"})
    );
    assert_eq!(
        image("registry:5000/web").unwrap(),
        json!({"name": "registry:5000/web"})
    );
    assert!(image("=x").is_err());
}

#[test]
fn overrides_are_written_as_kustomize_edit_writes_them() {
    let base = json!({
        "resources": ["../../base"],
        "images": [{"name": "example.com/web", "newTag": "old"}],
        "commonLabels": {"team": "a"},
    });
    let overrides = ApplicationSourceKustomize {
        name_prefix: Some("aws-".into()),
        name_suffix: Some("-v2".into()),
        namespace: Some("prod".into()),
        images: Some(vec![
            "example.com/web:new".into(),
            "db=example.com/db:7".into(),
        ]),
        common_labels: Some([("cloud".to_owned(), "aws".to_owned())].into()),
        common_annotations: Some(
            [(
                "app".to_owned(),
                "${ARGOCD_APP_NAME}@$ARGOCD_APP_REVISION_SHORT".to_owned(),
            )]
            .into(),
        ),
        common_annotations_envsubst: Some(true),
        replicas: Some(vec![KustomizeReplica {
            name: "web".into(),
            count: IntOrString::String("3".into()),
        }]),
        patches: Some(vec![KustomizePatch {
            patch: Some("- op: add\n  path: /metadata/labels/x\n  value: y".into()),
            target: Some(KustomizeSelector {
                kind: Some("Deployment".into()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        components: Some(vec!["../../components/x".into()]),
        ..Default::default()
    };
    let env = AppEnv {
        name: "mandelbrot".into(),
        revision: "0123456789abcdef".into(),
        ..Default::default()
    };
    let out = apply_overrides(base, &overrides, &env, &none).unwrap();
    assert_eq!(out["namePrefix"], "aws-");
    assert_eq!(out["nameSuffix"], "-v2");
    assert_eq!(out["namespace"], "prod");
    assert_eq!(
        out["images"],
        json!([{"name": "example.com/web", "newTag": "new"}, {"name": "db", "newName": "example.com/db", "newTag": "7"}])
    );
    assert_eq!(out["commonLabels"], json!({"team": "a", "cloud": "aws"}));
    assert_eq!(
        out["commonAnnotations"],
        json!({"app": "mandelbrot@0123456"})
    );
    assert_eq!(out["replicas"], json!([{"name": "web", "count": 3}]));
    assert_eq!(out["patches"][0]["target"], json!({"kind": "Deployment"}));
    assert_eq!(out["components"], json!(["../../components/x"]));
}

#[test]
fn an_existing_label_needs_force_and_missing_components_can_be_ignored() {
    let base = json!({"commonLabels": {"team": "a"}});
    let mut overrides = ApplicationSourceKustomize {
        common_labels: Some([("team".to_owned(), "b".to_owned())].into()),
        ..Default::default()
    };
    let err = apply_overrides(base.clone(), &overrides, &AppEnv::default(), &none).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid kustomize override: label team already in kustomization file"
    );
    overrides.force_common_labels = Some(true);
    let out = apply_overrides(base.clone(), &overrides, &AppEnv::default(), &none).unwrap();
    assert_eq!(out["commonLabels"]["team"], "b");
    overrides.label_without_selector = Some(true);
    let out = apply_overrides(json!({}), &overrides, &AppEnv::default(), &none).unwrap();
    assert_eq!(
        out["labels"],
        json!([{"pairs": {"team": "b"}, "includeSelectors": false}])
    );
    let components = ApplicationSourceKustomize {
        components: Some(vec!["missing".into(), "there".into()]),
        ignore_missing_components: Some(true),
        ..Default::default()
    };
    let out = apply_overrides(json!({}), &components, &AppEnv::default(), &|c| {
        c == "there"
    })
    .unwrap();
    assert_eq!(out["components"], json!(["there"]));
}

#[test]
fn a_kustomization_is_found_at_the_top_level_only() {
    let file = |path: &str| SourceFile {
        path: path.into(),
        bytes: Vec::new(),
    };
    assert!(is_kustomization(&[
        file("a.yaml"),
        file("kustomization.yaml")
    ]));
    assert!(is_kustomization(&[file("Kustomization")]));
    assert!(!is_kustomization(&[file("base/kustomization.yaml")]));
}

#[tokio::test]
async fn kubectl_kustomize_renders_an_overlay() {
    if !on_path("kustomize") && !on_path("kubectl") {
        assert_eq!(
            build(Path::new(".")).await.unwrap_err(),
            KustomizeError::NoBinary
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let overlay = dir.path().join("overlays/aws");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(base.join("kustomization.yaml"), "resources: [cm.yaml]\n").unwrap();
    std::fs::write(
        base.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  cloud: none\n",
    )
    .unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../../base]\nnamePrefix: aws-\n",
    )
    .unwrap();
    let overrides = ApplicationSourceKustomize {
        name_suffix: Some("-x".into()),
        ..Default::default()
    };
    write_overrides(&overlay, &overrides, &AppEnv::default()).unwrap();
    let out = build(&overlay).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("name: aws-settings-x"), "{text}");
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../../nowhere]\n",
    )
    .unwrap();
    let err = build(&overlay).await.unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
}

use super::*;
use serde_json::json;
use sluice_api::HelmParameter;

fn release<'a>(chart: &'a Path, root: &'a Path, work: &'a Path) -> Release<'a> {
    Release {
        app: "guestbook",
        namespace: "apps",
        chart,
        root,
        work,
    }
}

fn strings(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn arguments_follow_argo_cds_order() {
    let (chart, root, work) = (Path::new("/r/charts/app"), Path::new("/r"), Path::new("/w"));
    let helm = ApplicationSourceHelm {
        release_name: Some("web".into()),
        kube_version: Some("1.33.0".into()),
        api_versions: Some(vec!["argoproj.io/v1alpha1".into()]),
        parameters: Some(vec![
            HelmParameter {
                name: Some("image.tag".into()),
                value: Some("v2".into()),
                force_string: None,
            },
            HelmParameter {
                name: Some("port".into()),
                value: Some("8080".into()),
                force_string: Some(true),
            },
        ]),
        skip_crds: Some(true),
        skip_tests: Some(true),
        ..Default::default()
    };
    let args = template_args(
        &release(chart, root, work),
        &helm,
        &["/r/charts/app/values-prod.yaml".into()],
        Some(Path::new("/w/values-inline.yaml")),
    );
    assert_eq!(
        strings(&args).join(" "),
        "template web /r/charts/app --namespace apps --kube-version 1.33.0 \
         --api-versions argoproj.io/v1alpha1 --values /r/charts/app/values-prod.yaml \
         --values /w/values-inline.yaml --set image.tag=v2 --set-string port=8080 --skip-tests"
    );
    let plain = template_args(&release(chart, root, work), &Default::default(), &[], None);
    assert_eq!(
        strings(&plain).join(" "),
        "template guestbook /r/charts/app --namespace apps --include-crds"
    );
}

#[test]
fn value_files_stay_in_the_repository() {
    let root = tempfile::tempdir().unwrap();
    let chart = root.path().join("charts/app");
    std::fs::create_dir_all(&chart).unwrap();
    std::fs::write(chart.join("values-prod.yaml"), "a: 1\n").unwrap();
    std::fs::write(root.path().join("shared.yaml"), "b: 2\n").unwrap();
    let work = root.path();
    let r = release(&chart, root.path(), work);
    let helm = |files: &[&str], ignore: bool| ApplicationSourceHelm {
        value_files: Some(files.iter().map(|f| (*f).to_owned()).collect()),
        ignore_missing_value_files: Some(ignore),
        ..Default::default()
    };
    let found = value_files(&r, &helm(&["values-prod.yaml", "../../shared.yaml"], false)).unwrap();
    assert_eq!(
        found,
        vec![
            chart.join("values-prod.yaml").into_os_string(),
            root.path().join("shared.yaml").into_os_string()
        ]
    );
    let outside = value_files(&r, &helm(&["../../../etc/passwd"], false)).unwrap_err();
    assert!(
        outside.to_string().contains("outside repository root"),
        "{outside}"
    );
    let missing = value_files(&r, &helm(&["values-qa.yaml"], false)).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "value file \"values-qa.yaml\": open charts/app/values-qa.yaml: no such file or directory"
    );
    assert!(
        value_files(&r, &helm(&["values-qa.yaml"], true))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn values_object_wins_over_values() {
    let mut helm = ApplicationSourceHelm {
        values: Some("replicaCount: 2\n".into()),
        ..Default::default()
    };
    assert_eq!(inline_values(&helm).as_deref(), Some("replicaCount: 2\n"));
    helm.values_object = Some(json!({"replicaCount": 3}));
    assert_eq!(
        inline_values(&helm).as_deref(),
        Some(r#"{"replicaCount":3}"#)
    );
    assert_eq!(inline_values(&Default::default()), None);
}

/// A chart rendered by the real `helm`, with values, a parameter and a hook.
#[tokio::test]
async fn helm_template_renders_a_chart() {
    if sluice_testkit::process::tool("helm", "scripts/test.sh installs it").is_none() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let chart = root.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "color: blue\nreplicas: 1\n").unwrap();
    std::fs::write(chart.join("values-prod.yaml"), "replicas: 3\n").unwrap();
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\n  \
         namespace: {{ .Release.Namespace }}\ndata:\n  color: {{ .Values.color | quote }}\n  \
         replicas: {{ .Values.replicas | quote }}\n  tag: {{ .Values.tag | quote }}\n",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let r = release(&chart, root.path(), work.path());
    let helm = ApplicationSourceHelm {
        value_files: Some(vec!["values-prod.yaml".into()]),
        values_object: Some(json!({"color": "green"})),
        parameters: Some(vec![HelmParameter {
            name: Some("tag".into()),
            value: Some("v7".into()),
            force_string: None,
        }]),
        ..Default::default()
    };
    let text = template(&r, Some(&helm)).await.unwrap();
    for want in [
        "name: guestbook-cfg",
        "namespace: apps",
        "color: \"green\"",
        "replicas: \"3\"",
        "tag: \"v7\"",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    std::fs::write(
        chart.join("templates/bad.yaml"),
        "{{ .Values.nope.deeper }}\n",
    )
    .unwrap();
    let err = template(&r, None).await.unwrap_err();
    assert!(
        matches!(&err, HelmError::Command { message, .. } if message.contains("nil pointer")),
        "{err}"
    );
}

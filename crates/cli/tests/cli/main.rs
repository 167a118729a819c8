//! The `sluice` binary as a user runs it, and kubectl against `sluice up` ([`kubectl`] for the
//! verbs, [`kubectl_cluster`] for what a cluster does around them: identities, scheduling,
//! defaults; [`kubectl_pods`] for reaching into pods: exec, attach, debug, copy, port-forward,
//! top; [`kubectl_rbac`] for `auth can-i` and Forbidden under RBAC); [`image_set`] and [`image_set_git`] for `sluice image set`, the CI step that bumps
//! images in a CD repository; [`lint`] for `sluice lint` on Argo's examples and broken files;
//! [`version`] for `sluice version` and `sluice completion`).

mod image_set;
mod image_set_git;
mod kubectl;
mod kubectl_cluster;
mod kubectl_pods;
mod kubectl_rbac;
mod lint;
mod version;

use std::process::Command;

use sluice_testkit::process::start_up;

/// The `sluice` binary under test.
const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// Runs `sluice ARGS`.
fn sluice(args: &[&str]) -> std::process::Output {
    sluice_testkit::process::sluice(SLUICE, args)
}

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// `sluice crds` prints one CustomResourceDefinition per YAML document, for every kind.
#[test]
fn crds_prints_one_definition_per_document() {
    let out = sluice(&["crds"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let crds: Vec<CustomResourceDefinition> = serde_saphyr::from_multiple(&text).unwrap();
    let names: Vec<_> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "clusteranalysistemplates.argoproj.io",
            "analysisruns.argoproj.io",
            "experiments.argoproj.io",
            "applications.argoproj.io",
            "appprojects.argoproj.io",
        ]
    );
    for crd in &crds {
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        assert!(
            version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .is_some()
        );
    }
    let rollout = &crds[0].spec.versions[0];
    let subresources = rollout.subresources.as_ref().unwrap();
    assert!(subresources.status.is_some());
    assert_eq!(
        subresources.scale.as_ref().unwrap().status_replicas_path,
        ".status.HPAReplicas"
    );
}

#[test]
fn unknown_command_fails_with_usage() {
    let out = sluice(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

/// The data dir is locked: a second `sluice up` on it fails clearly, and after a SIGKILL of the
/// first a new one starts and finds the objects and kubeconfig again.
#[test]
fn up_locks_its_data_dir_and_restarts_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, ready) = start_up(SLUICE, dir.path());
    assert!(
        ready.starts_with("sluice: ready at https://127.0.0.1:"),
        "{ready}"
    );
    assert!(
        ready.contains(&format!(
            "kubeconfig: {}",
            dir.path().join("kubeconfig").display()
        )),
        "{ready}"
    );
    let kubeconfig = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    assert!(kubeconfig.contains("certificate-authority-data") && kubeconfig.contains("token:"));

    let second = Command::new(SLUICE)
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains("is in use by another `sluice up`"),
        "{message}"
    );

    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    let (again, ready) = start_up(SLUICE, dir.path());
    assert!(ready.starts_with("sluice: ready at"), "{ready}");
    drop(again);
}

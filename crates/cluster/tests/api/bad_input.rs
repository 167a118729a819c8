//! Bad requests get Kubernetes' `Status` answers and change nothing.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use serde_json::json;

use crate::harness::{SHARED, namespace, raw, tcp};

fn post(path: &str, body: impl Into<Vec<u8>>, content_type: &str) -> http::Request<Vec<u8>> {
    http::Request::post(path)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn malformed_and_mismatched_bodies_are_rejected() {
    let client = tcp().await;
    let ns = namespace(&client, "bad").await;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let cases = [
        ("{not json", 400, "BadRequest"),
        (
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}"#,
            400,
            "BadRequest",
        ),
        (
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"elsewhere"}}"#,
            400,
            "BadRequest",
        ),
        (
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}"#,
            422,
            "Invalid",
        ),
        (
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
            422,
            "Invalid",
        ),
        (r#"[1,2]"#, 400, "BadRequest"),
    ];
    for (body, code, reason) in cases {
        let (status, answer) = raw(&client, post(&path, body, "application/json")).await;
        assert_eq!(
            (status, answer["reason"].as_str()),
            (code, Some(reason)),
            "{body}: {answer}"
        );
        assert_eq!(answer["kind"], "Status");
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn oversized_bodies_are_rejected() {
    let client = tcp().await;
    let ns = namespace(&client, "big").await;
    let big = "x".repeat(2 * 1024 * 1024);
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": big}}).to_string();
    let (status, answer) = raw(
        &client,
        post(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            body,
            "application/json",
        ),
    )
    .await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );
}

#[tokio::test]
async fn unknown_resources_are_named_in_the_404() {
    let client = tcp().await;
    let request = http::Request::get("/apis/example.com/v1/namespaces/default/widgets")
        .body(Vec::new())
        .unwrap();
    let (status, answer) = raw(&client, request).await;
    assert_eq!(status, 404);
    assert!(
        answer["message"].as_str().unwrap().contains("widgets"),
        "{answer}"
    );
}

#[tokio::test]
async fn strategic_merge_is_unsupported_for_custom_resources() {
    let client = tcp().await;
    let ns = namespace(&client, "smp").await;
    let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}, "spec": {}});
    let path = format!("/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts");
    assert_eq!(
        raw(
            &client,
            post(&path, rollout.to_string(), "application/json")
        )
        .await
        .0,
        201
    );
    let request = http::Request::patch(format!("{path}/r"))
        .header("content-type", "application/strategic-merge-patch+json")
        .body(br#"{"spec":{"replicas":2}}"#.to_vec())
        .unwrap();
    let (status, answer) = raw(&client, request).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
}

#[tokio::test]
async fn requests_without_the_token_are_unauthorized() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(SHARED.cluster.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.auth_info = Default::default();
    let anonymous = kube::Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(anonymous.clone(), "default");
    let err = api.list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err}"
    );
    let err = api
        .create(&PostParams::default(), &ConfigMap::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err}"
    );
    // /version stays public, as on a real cluster.
    assert_eq!(anonymous.apiserver_version().await.unwrap().minor, "33");
}

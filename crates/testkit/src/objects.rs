//! Helpers over a kube client: typed objects from JSON, a fresh namespace per test, and
//! retrying a check until it holds.

use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};

/// A typed object from JSON.
pub fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh namespace for one test.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::SeqCst));
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &from(serde_json::json!({"metadata": {"name": name}})),
    )
    .await
    .unwrap();
    name
}

/// Retries `check` for up to 15 s; panics with `what` if it never holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

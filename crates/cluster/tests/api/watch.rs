//! Watches as kube-rs uses them: events in order, selector transitions, bookmarks, 410 handling.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

use crate::harness::{both, from, namespace, raw, tcp};

fn describe(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn watch_streams_changes_in_order_with_selector_transitions() {
    for (via, client) in both().await {
        let ns = namespace(&client, "watch").await;
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let list = api.list(&Default::default()).await.unwrap();
        let rv = list.metadata.resource_version.unwrap();
        let stream = api
            .watch(&WatchParams::default().labels("team=a").timeout(20), &rv)
            .await
            .unwrap();
        let mut stream = stream.boxed();
        api.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "x", "labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
        api.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "other", "labels": {"team": "b"}}})),
        )
        .await
        .unwrap();
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
        // Leaving the selector is a deletion for this watch; coming back is an addition.
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
        )
        .await
        .unwrap();
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
        api.delete("x", &DeleteParams::default()).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let event = stream
                .try_next()
                .await
                .unwrap()
                .expect("stream ended early");
            seen.push(describe(&event));
        }
        assert_eq!(
            seen,
            ["ADDED x", "MODIFIED x", "DELETED x", "ADDED x", "DELETED x"],
            "{via}"
        );
    }
}

#[tokio::test]
async fn watch_from_now_starts_with_current_objects() {
    let client = tcp().await;
    let ns = namespace(&client, "watch-now").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "existing"}})),
    )
    .await
    .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .unwrap()
        .boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(describe(&first), "ADDED existing");
}

#[tokio::test]
async fn kube_runtime_watcher_sees_every_change() {
    let client = tcp().await;
    let ns = namespace(&client, "watcher").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let mut objects = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let writer = api.clone();
    tokio::spawn(async move {
        for i in 0..5 {
            writer
                .create(
                    &PostParams::default(),
                    &from(json!({"metadata": {"name": format!("cm-{i}")}})),
                )
                .await
                .unwrap();
        }
    });
    let mut names = Vec::new();
    while names.len() < 5 {
        let object = objects.try_next().await.unwrap().unwrap();
        names.push(object.metadata.name.unwrap());
    }
    names.sort();
    assert_eq!(names, ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);
}

#[tokio::test]
async fn bookmarks_carry_the_resource_version_on_request() {
    let client = tcp().await;
    let ns = namespace(&client, "bookmark").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    // sendInitialEvents with bookmarks ends the initial objects with an annotated bookmark.
    let request = http::Request::get(format!(
        "/api/v1/namespaces/{ns}/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    ))
    .body(Vec::new())
    .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("\"BOOKMARK\"") && text.contains("k8s.io/initial-events-end"),
        "{text}"
    );
    drop(api);
}

#[tokio::test]
async fn watch_with_a_bad_resource_version_is_a_bad_request() {
    let client = tcp().await;
    let request =
        http::Request::get("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=abc")
            .body(Vec::new())
            .unwrap();
    let (status, body) = raw(&client, request).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("BadRequest")));
}

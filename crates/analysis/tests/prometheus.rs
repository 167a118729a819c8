//! The `prometheus` provider against a real Prometheus (the binary on PATH, started here on a
//! free port, scraping an exposition this test sets): instant and range queries, an empty
//! vector, NaN and +Inf judged as Argo judges them, Prometheus' own syntax error, the server
//! gone; and, against a stand-in server that records what it is sent, headers, basic auth and
//! OAuth2 client credentials with the token kept between measurements.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use serde_json::json;
use sluice_analysis::provider::{
    Provider, RunContext, prometheus::Prometheus, transport::Transport,
};
use sluice_api::{AnalysisPhase, Metric};
use sluice_testkit::prometheus::{Exposition, TestPrometheus};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

const EXPOSITION: &str = "\
# TYPE success_rate gauge
success_rate{case=\"good\"} 0.99
success_rate{case=\"bad\"} 0.5
success_rate{case=\"nan\"} NaN
success_rate{case=\"inf\"} +Inf
";

fn metric(prometheus: serde_json::Value, conditions: serde_json::Value) -> Metric {
    let mut value = json!({"name": "m", "provider": {"prometheus": prometheus}});
    value
        .as_object_mut()
        .unwrap()
        .extend(conditions.as_object().unwrap().clone());
    serde_json::from_value(value).unwrap()
}

fn context() -> RunContext {
    RunContext {
        name: "r".into(),
        namespace: "ns".into(),
        uid: "u".into(),
        taken: 0,
    }
}

fn at_least(threshold: f64) -> serde_json::Value {
    json!({"successCondition": format!("result[0] >= {threshold}")})
}

#[tokio::test]
async fn queries_against_a_real_prometheus_are_judged_as_argo_judges_them() {
    let Some(server) = TestPrometheus::start().await else {
        return;
    };
    let exposition = Exposition::serve(EXPOSITION);
    server.scrape("static", exposition.address);
    server.wait_for("success_rate{case=\"inf\"}").await;
    let provider = Prometheus::new(Transport::new(), Some(server.url()));
    let measure = |query: &str, conditions: serde_json::Value| {
        let metric = metric(json!({"query": query}), conditions);
        let provider = &provider;
        async move { provider.run(&context(), &metric).await }
    };

    let good = measure("success_rate{case=\"good\"}", at_least(0.95)).await;
    assert_eq!(
        (good.phase, good.value.as_deref()),
        (AnalysisPhase::Successful, Some("[0.99]")),
        "{good:?}"
    );
    let both =
        json!({"successCondition": "result[0] >= 0.95", "failureCondition": "result[0] < 0.90"});
    let bad = measure("success_rate{case=\"bad\"}", both.clone()).await;
    assert_eq!(
        (bad.phase, bad.value.as_deref()),
        (AnalysisPhase::Failed, Some("[0.5]"))
    );

    // NaN: compares false both ways, so Inconclusive with both conditions, Failed with the
    // success condition alone, Successful when the condition asks for it (Argo's docs).
    let nan = "success_rate{case=\"nan\"}";
    let m = measure(nan, both.clone()).await;
    assert_eq!(
        (m.phase, m.value.as_deref()),
        (AnalysisPhase::Inconclusive, Some("[NaN]")),
        "{m:?}"
    );
    assert_eq!(
        measure(nan, at_least(0.95)).await.phase,
        AnalysisPhase::Failed
    );
    let nan_ok = json!({"successCondition": "isNaN(result[0]) || result[0] >= 0.95"});
    assert_eq!(measure(nan, nan_ok).await.phase, AnalysisPhase::Successful);

    // +Inf: greater than any threshold; `isInf` sees it.
    let inf = "success_rate{case=\"inf\"}";
    let m = measure(inf, at_least(0.95)).await;
    assert_eq!(
        (m.phase, m.value.as_deref()),
        (AnalysisPhase::Successful, Some("[+Inf]"))
    );
    let m = measure(inf, json!({"failureCondition": "isInf(result[0])"})).await;
    assert_eq!(m.phase, AnalysisPhase::Failed);

    // An empty vector is `[]`: `len(result) == 0 || …` passes, indexing it is an Error.
    let absent = "success_rate{case=\"absent\"}";
    let m = measure(
        absent,
        json!({"successCondition": "len(result) == 0 || result[0] >= 0.95"}),
    )
    .await;
    assert_eq!(
        (m.phase, m.value.as_deref()),
        (AnalysisPhase::Successful, Some("[]")),
        "{m:?}"
    );
    assert_eq!(
        measure(absent, at_least(0.95)).await.phase,
        AnalysisPhase::Error
    );

    // A scalar is a number.
    let m = measure(
        "scalar(success_rate{case=\"good\"})",
        json!({"successCondition": "result >= 0.95"}),
    )
    .await;
    assert_eq!(
        (m.phase, m.value.as_deref()),
        (AnalysisPhase::Successful, Some("0.99"))
    );

    // A syntax error is Prometheus' message.
    let m = measure("sum(success_rate", at_least(0.95)).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    let message = m.message.unwrap_or_default();
    assert!(
        message.starts_with("bad_data: ") && message.contains("parse error"),
        "{message}"
    );

    // A range query: every sample of the window, in one array.
    exposition.set(&EXPOSITION.replace("0.99", "0.98"));
    server.wait_for("success_rate{case=\"good\"} == 0.98").await;
    let range = metric(
        json!({"query": "success_rate{case=\"good\"}", "rangeQuery": {
            "start": "now() - duration(\"30s\")", "end": "now()", "step": "1s"}}),
        json!({"successCondition": "len(result) > 1 && all(result, {# >= 0.95}) && result[len(result)-1] == 0.98"}),
    );
    let m = provider.run(&context(), &range).await;
    assert_eq!(m.phase, AnalysisPhase::Successful, "{m:?}");
    assert!(m.value.unwrap_or_default().starts_with("[0.99,"));

    assert_eq!(
        provider.metadata(&range).unwrap()["ResolvedPrometheusQuery"],
        "success_rate{case=\"good\"}"
    );
}

#[tokio::test]
async fn a_server_that_goes_away_is_an_error_measurement() {
    let Some(server) = TestPrometheus::start().await else {
        return;
    };
    let url = server.url();
    let provider = Prometheus::new(Transport::new(), None);
    let up = metric(json!({"address": url, "query": "vector(1)"}), at_least(1.0));
    assert_eq!(
        provider.run(&context(), &up).await.phase,
        AnalysisPhase::Successful
    );
    drop(server);
    let m = provider.run(&context(), &up).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    let message = m.message.unwrap_or_default();
    assert!(
        message.starts_with(&format!("Post \"{url}/api/v1/query\": ")),
        "{message}"
    );
}

#[tokio::test]
async fn no_address_is_an_error_saying_which_flag_to_pass() {
    let provider = Prometheus::new(Transport::new(), None);
    let m = provider
        .run(&context(), &metric(json!({"query": "up"}), json!({})))
        .await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    let message = m.message.unwrap_or_default();
    assert!(message.contains("--prometheus"), "{message}");
    let sigv4 = metric(
        json!({"address": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/w",
            "query": "up", "authentication": {"sigv4": {"region": "eu-west-1"}}}),
        json!({}),
    );
    let m = provider.run(&context(), &sigv4).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert!(m.message.unwrap_or_default().contains("not supported"));
}

/// A stand-in Prometheus and token endpoint: records each request's head, answers `/token`
/// with a token lasting an hour and anything else with a one-sample vector and a warning.
async fn recorder() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                record.lock().unwrap().push(text.clone());
                let body = if text.starts_with("POST /token") {
                    json!({"access_token": "t0k", "token_type": "bearer", "expires_in": 3600})
                } else {
                    json!({"status": "success", "warnings": ["slow query"],
                        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}]}})
                }
                .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (address, seen)
}

#[tokio::test]
async fn headers_basic_auth_and_oauth2_tokens_are_sent() {
    let (address, seen) = recorder().await;
    let provider = Prometheus::new(Transport::new(), None);
    let basic = metric(
        json!({"address": format!("http://{address}"), "query": "up",
            "headers": [{"key": "X-Scope-OrgID", "value": "team-a"}],
            "authentication": {"basicAuth": {"username": "u", "password": "p"}}}),
        at_least(1.0),
    );
    let m = provider.run(&context(), &basic).await;
    assert_eq!(m.phase, AnalysisPhase::Successful, "{m:?}");
    assert_eq!(
        m.metadata.unwrap()["warnings"],
        "\"slow query\"",
        "warnings are kept as Argo keeps them"
    );
    let head = seen.lock().unwrap().pop().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("post /api/v1/query"), "{head}");
    assert!(head.contains("x-scope-orgid: team-a"), "{head}");
    assert!(head.contains("authorization: basic dtpw"), "{head}");

    let oauth2 = metric(
        json!({"address": format!("http://{address}"), "query": "up",
            "authentication": {"oauth2": {"tokenUrl": format!("http://{address}/token"),
                "clientId": "id", "clientSecret": "secret", "scopes": ["read"]}}}),
        at_least(1.0),
    );
    for _ in 0..2 {
        let m = provider.run(&context(), &oauth2).await;
        assert_eq!(m.phase, AnalysisPhase::Successful, "{m:?}");
    }
    let heads = seen.lock().unwrap().clone();
    let tokens = heads
        .iter()
        .filter(|h| h.starts_with("POST /token"))
        .count();
    assert_eq!(tokens, 1, "the token is kept until it expires: {heads:?}");
    let queries: Vec<&String> = heads
        .iter()
        .filter(|h| h.starts_with("POST /api/v1/query"))
        .collect();
    assert_eq!(queries.len(), 2);
    assert!(
        queries
            .iter()
            .all(|h| h.to_ascii_lowercase().contains("authorization: bearer t0k")),
        "{queries:?}"
    );
}

//! The `web` provider against a real HTTP server on 127.0.0.1: answers judged by their
//! conditions through `jsonPath`, non-2xx answers and timeouts as errors, request bodies and
//! headers sent as written.

use std::{net::SocketAddr, time::Duration};

use serde_json::json;
use sluice_analysis::provider::{Provider, RunContext, web::Web};
use sluice_api::{AnalysisPhase, Metric};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A server answering by path: `/ok` JSON, `/text` plain text, `/500` an error, `/slow`
/// after 3 s, `/echo` the request it got (head and body) as a JSON string.
async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buffer).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                let (status, body) = match path.as_str() {
                    "/ok" => (200, json!({"data": {"ok": true, "rate": 0.02}}).to_string()),
                    "/text" => (200, "healthy".to_owned()),
                    "/500" => (500, "{}".to_owned()),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        (200, "{}".to_owned())
                    }
                    _ => (200, json!(text).to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    address
}

fn metric(web: serde_json::Value, conditions: serde_json::Value) -> Metric {
    let mut value = json!({"name": "m", "provider": {"web": web}});
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

#[tokio::test]
async fn answers_are_judged_through_json_path() {
    let address = server().await;
    let web = Web::new();
    let ok = metric(
        json!({"url": format!("http://{address}/ok"), "jsonPath": "{$.data}"}),
        json!({"successCondition": "result.ok && result.rate < 0.05"}),
    );
    let m = web.run(&context(), &ok).await;
    assert_eq!(m.phase, AnalysisPhase::Successful, "{m:?}");
    assert_eq!(m.value.as_deref(), Some("{\"ok\":true,\"rate\":0.02}"));
    assert!(m.started_at.is_some() && m.finished_at.is_some());
    let failing = metric(
        json!({"url": format!("http://{address}/ok"), "jsonPath": "{$.data.rate}"}),
        json!({"successCondition": "result < 0.01"}),
    );
    let m = web.run(&context(), &failing).await;
    assert_eq!(
        (m.phase, m.value.as_deref()),
        (AnalysisPhase::Failed, Some("0.02"))
    );
    let text = metric(
        json!({"url": format!("http://{address}/text")}),
        json!({"successCondition": "result == 'healthy'"}),
    );
    assert_eq!(
        web.run(&context(), &text).await.phase,
        AnalysisPhase::Successful
    );
}

#[tokio::test]
async fn errors_are_error_measurements_naming_the_cause() {
    let address = server().await;
    let web = Web::new();
    let m = web
        .run(
            &context(),
            &metric(json!({"url": format!("http://{address}/500")}), json!({})),
        )
        .await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert_eq!(
        m.message.as_deref(),
        Some("received non 2xx response code: 500")
    );
    let slow = metric(
        json!({"url": format!("http://{address}/slow"), "timeoutSeconds": 1}),
        json!({}),
    );
    let m = web.run(&context(), &slow).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert!(m.message.unwrap().contains("timeoutSeconds"));
    let missing = metric(
        json!({"url": format!("http://{address}/ok"), "jsonPath": "{$.nope}"}),
        json!({}),
    );
    let m = web.run(&context(), &missing).await;
    assert_eq!(
        m.message.as_deref(),
        Some("result of web metric produced no value")
    );
    let not_bool = metric(
        json!({"url": format!("http://{address}/ok"), "jsonPath": "{$.data.rate}"}),
        json!({"successCondition": "result + 1"}),
    );
    let m = web.run(&context(), &not_bool).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert!(m.message.unwrap().contains("result + 1"));
    let refused = metric(json!({"url": "http://127.0.0.1:1/x"}), json!({}));
    let m = web.run(&context(), &refused).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    let get_with_body = metric(
        json!({"url": "http://127.0.0.1:1/x", "body": "x"}),
        json!({}),
    );
    assert_eq!(
        web.run(&context(), &get_with_body).await.message.as_deref(),
        Some("Body/JSONBody can only be used with POST or PUT WebMetric Method types")
    );
}

#[tokio::test]
async fn bodies_and_headers_are_sent() {
    let address = server().await;
    let web = Web::new();
    let post = metric(
        json!({"url": format!("http://{address}/echo"), "method": "POST",
            "headers": [{"key": "X-Token", "value": "t1"}], "jsonBody": {"q": "up"}}),
        json!({"successCondition": "result contains 'x-token: t1' && result contains '{\"q\":\"up\"}' && result contains 'content-type: application/json'"}),
    );
    let m = web.run(&context(), &post).await;
    assert_eq!(m.phase, AnalysisPhase::Successful, "{m:?}");
}

use serde_json::json;
use sluice_api::PrometheusRangeQueryArgs;

use super::*;

fn now() -> Timestamp {
    "2024-01-01T00:00:00.5Z".parse().unwrap()
}

fn answer(result_type: &str, result: serde_json::Value) -> Answer {
    Answer::parse(
        json!({"status": "success", "data": {"resultType": result_type, "result": result}})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

fn form(query: &Query) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.form.as_bytes())
        .into_owned()
        .collect()
}

#[test]
fn an_instant_query_is_sent_at_now() {
    let metric = PrometheusMetric {
        query: Some("sum(up{job=\"a b\"})".into()),
        ..Default::default()
    };
    let query = Query::new(&metric, "http://127.0.0.1:9/prom/", now()).unwrap();
    assert_eq!(query.url, "http://127.0.0.1:9/prom/api/v1/query");
    let form = form(&query);
    assert_eq!(form["query"], "sum(up{job=\"a b\"})");
    assert_eq!(form["time"], "1704067200.5");
}

#[test]
fn a_range_query_evaluates_its_window_at_now() {
    let metric = PrometheusMetric {
        query: Some("up".into()),
        range_query: Some(PrometheusRangeQueryArgs {
            start: Some("now() - duration(\"1h\")".into()),
            end: Some("now()".into()),
            step: Some("1m30s".into()),
        }),
        ..Default::default()
    };
    let query = Query::new(&metric, "http://p:9090", now()).unwrap();
    assert_eq!(query.url, "http://p:9090/api/v1/query_range");
    let form = form(&query);
    assert_eq!(form["start"], "1704063600.5");
    assert_eq!(form["end"], "1704067200.5");
    assert_eq!(form["step"], "90");
}

#[test]
fn a_bad_window_is_named() {
    let range = |start: &str, step: &str| PrometheusMetric {
        query: Some("up".into()),
        range_query: Some(PrometheusRangeQueryArgs {
            start: Some(start.into()),
            end: Some("now()".into()),
            step: Some(step.into()),
        }),
        ..Default::default()
    };
    let error = Query::new(&range("1 +", "1m"), "http://p", now()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("failed to parse rangeQuery.start as time:"),
        "{error}"
    );
    let error = Query::new(&range("now()", "soon"), "http://p", now()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("failed to parse rangeQuery.step as duration:"),
        "{error}"
    );
}

#[test]
fn results_convert_as_argo_converts_them() {
    let (text, value) = answer("scalar", json!([1.0, "0.25"])).result().unwrap();
    assert_eq!((text.as_str(), value), ("0.25", Value::Number(0.25)));
    let vector = json!([
        {"metric": {"a": "1"}, "value": [1.0, "0.99"]},
        {"metric": {"a": "2"}, "value": [1.0, "NaN"]},
        {"metric": {"a": "3"}, "value": [1.0, "+Inf"]},
        {"metric": {"a": "4"}, "value": [1.0, "-Inf"]},
    ]);
    let (text, value) = answer("vector", vector).result().unwrap();
    assert_eq!(text, "[0.99,NaN,+Inf,-Inf]");
    let Value::Array(items) = value else {
        panic!("{value:?}")
    };
    assert!(matches!(items[1], Value::Number(n) if n.is_nan()));
    assert_eq!(items[2], Value::Number(f64::INFINITY));
    let (text, value) = answer("vector", json!([])).result().unwrap();
    assert_eq!((text.as_str(), value), ("[]", Value::Array(vec![])));
    let matrix = json!([
        {"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]},
        {"metric": {}, "values": [[1.0, "3"]]},
    ]);
    let (text, _) = answer("matrix", matrix).result().unwrap();
    assert_eq!(text, "[1,2,3]");
    assert_eq!(
        answer("string", json!([1.0, "x"])).result().unwrap_err(),
        QueryError::Unsupported
    );
}

#[test]
fn an_error_answer_is_prometheus_message() {
    let body = json!({"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected"});
    let error = Answer::parse(body.to_string().as_bytes()).unwrap_err();
    assert_eq!(error.to_string(), "bad_data: 1:5: parse error: unexpected");
}

#[test]
fn the_address_is_the_metrics_else_the_controllers() {
    let metric = |address: Option<&str>| PrometheusMetric {
        address: address.map(Into::into),
        ..Default::default()
    };
    let none = Prometheus::new(Transport::new(), None);
    assert_eq!(none.address(&metric(None)), Err(QueryError::NoAddress));
    assert!(
        QueryError::NoAddress
            .to_string()
            .contains("start sluice up with --prometheus")
    );
    assert_eq!(
        none.address(&metric(Some("p:9090"))),
        Err(QueryError::NotUrl("p:9090".into()))
    );
    let default = Prometheus::new(Transport::new(), Some("http://d:9090".into()));
    assert_eq!(default.address(&metric(None)).unwrap(), "http://d:9090");
    assert_eq!(
        default.address(&metric(Some("http://m:1"))).unwrap(),
        "http://m:1"
    );
}

#[test]
fn numbers_are_written_as_go_writes_them() {
    assert_eq!(number(0.1), "0.1");
    assert_eq!(number(1e21), "1000000000000000000000");
    assert_eq!(number(f64::NAN), "NaN");
    assert_eq!(number(f64::NEG_INFINITY), "-Inf");
    assert_eq!(number(3.0), "3");
}

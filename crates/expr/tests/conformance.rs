//! Conformance with Argo Rollouts: every example condition in Argo's docs (`docs/features/analysis.md`,
//! `docs/analysis/*.md`) against a result its provider would return, the NaN/Inf/empty table of
//! "Handling Metric Results", the cases of Argo's `utils/evaluate/evaluate_test.go`, and the
//! conditions of sluice's own user (`result[0] >= 0.95` / `result[0] < 0.90`).

use serde_json::json;
use sluice_expr::MeasurementPhase::{Failed, Inconclusive, Successful};
use sluice_expr::{ExprError, MeasurementPhase, Value, assess, evaluate, evaluate_time};

/// What a measurement comes to.
#[derive(Debug)]
enum Expect {
    Phase(MeasurementPhase),
    /// An Error measurement whose message contains this.
    Error(&'static str),
}

use Expect::{Error, Phase};

struct Row {
    source: &'static str,
    success: Option<&'static str>,
    failure: Option<&'static str>,
    result: Value,
    expect: Expect,
}

fn row(
    source: &'static str,
    success: Option<&'static str>,
    failure: Option<&'static str>,
    result: impl Into<Value>,
    expect: Expect,
) -> Row {
    Row {
        source,
        success,
        failure,
        result: result.into(),
        expect,
    }
}

fn vector(samples: &[f64]) -> Value {
    Value::from(samples.to_vec())
}

const NIL_OR_EMPTY: &str =
    "metric result is nil or empty: no data returned from the metric provider";

#[rustfmt::skip]
fn docs() -> Vec<Row> {
    let s = Some;
    vec![
        // docs/features/analysis.md: the background analysis and the step analysis.
        row("analysis.md:85", s("result[0] >= 0.95"), None, vector(&[0.99]), Phase(Successful)),
        row("analysis.md:85", s("result[0] >= 0.95"), None, vector(&[0.94]), Phase(Failed)),
        row("analysis.md:148", s("result[0] >= 0.95"), None, vector(&[0.95]), Phase(Successful)),
        row("analysis.md:308", s("result[0] <= 0.95"), None, vector(&[0.2]), Phase(Successful)),
        row("analysis.md:308", s("result[0] <= 0.95"), None, vector(&[0.96]), Phase(Failed)),
        // A web metric answering with a plain-text body.
        row("analysis.md:576", s("result == 'true'"), None, "true", Phase(Successful)),
        row("analysis.md:576", s("result == 'true'"), None, "false", Phase(Failed)),
        row("analysis.md:789", None, s("result[0] >= 10"), vector(&[12.0]), Phase(Failed)),
        row("analysis.md:789", None, s("result[0] >= 10"), vector(&[3.0]), Phase(Successful)),
        row("analysis.md:1180", s("result[0] >= 0.90"), s("result[0] < 0.50"), vector(&[0.7]), Phase(Inconclusive)),
        row("analysis.md:1180", s("result[0] >= 0.90"), s("result[0] < 0.50"), vector(&[0.91]), Phase(Successful)),
        row("analysis.md:1180", s("result[0] >= 0.90"), s("result[0] < 0.50"), vector(&[0.3]), Phase(Failed)),
        // "Handling Metric Results": NaN and infinity, exactly as the docs' AnalysisRuns end.
        row("analysis.md:1274", s("isNaN(result) || result >= 0.95"), None, f64::NAN, Phase(Successful)),
        row("analysis.md:1294", s("result >= 0.95"), s("result < 0.95"), f64::NAN, Phase(Inconclusive)),
        row("analysis.md:1315", s("result >= 0.95"), None, f64::NAN, Phase(Failed)),
        row("analysis.md:1337", s("result >= 0.95"), None, f64::INFINITY, Phase(Successful)),
        row("analysis.md:1357", None, s("isInf(result)"), f64::INFINITY, Phase(Failed)),
        // Empty arrays (Prometheus' empty vector), and indexing one.
        row("analysis.md:1385", s("len(result) == 0 || result[0] >= 0.95"), None, vector(&[]), Phase(Successful)),
        row("analysis.md:1405", s("len(result) > 0 && result[0] >= 0.95"), None, vector(&[]), Phase(Failed)),
        row("analysis.md:1405", s("result[0] >= 0.95"), None, vector(&[]), Error(NIL_OR_EMPTY)),
        // Datadog's nil: an error without default(), a value with it.
        row("analysis.md:1426", s("result < 0.05"), None, Value::Nil, Error(NIL_OR_EMPTY)),
        row("analysis.md:1432", s("default(result, 0) < 0.05"), None, Value::Nil, Phase(Successful)),
        row("analysis.md:1432", s("default(result, 0) < 0.05"), None, 0.2, Phase(Failed)),
        // docs/analysis/*.md, one provider each.
        row("cloudwatch.md:75", s("len(result[0].Values) >= 5 and all(result[0].Values, {# <= 0.01})"), None,
            json!([{"Values": [0.001, 0.002, 0.0, 0.01, 0.005]}]), Phase(Successful)),
        row("cloudwatch.md:75", s("len(result[0].Values) >= 5 and all(result[0].Values, {# <= 0.01})"), None,
            json!([{"Values": [0.001, 0.002, 0.0, 0.01]}]), Phase(Failed)),
        row("datadog.md:16", s("result <= 0.01"), None, 0.005, Phase(Successful)),
        row("datadog.md:16", s("result <= 0.01"), None, 0.02, Phase(Failed)),
        row("datadog.md:109", s("default(result, 0) < 10"), None, Value::Nil, Phase(Successful)),
        row("datadog.md:109", s("default(result, 0) < 10"), None, 12.0, Phase(Failed)),
        // `{{ args.restarts.max-restarts }}` substituted with its default, 4.
        row("datadog.md:167", None, s("default(result, 0) > 4"), Value::Nil, Phase(Successful)),
        row("datadog.md:167", None, s("default(result, 0) > 4"), 5.0, Phase(Failed)),
        row("datadog.md:205", s("default(result, 0) < 5"), None, 1.0, Phase(Successful)),
        row("datadog.md:260", s("max(result) < 0.05"), None, vector(&[0.01, 0.02]), Phase(Successful)),
        row("datadog.md:260", s("max(result) < 0.05"), None, vector(&[0.01, 0.07]), Phase(Failed)),
        // The docs' typo: there is no `results`, in Argo either.
        row("graphite.md:17", s("results[0] >= 90.000000"), None, vector(&[95.0]), Error("results")),
        row("influxdb.md:17", s("result[0] <= 0.01"), None, vector(&[0.001]), Phase(Successful)),
        row("newrelic.md:18", s("result.successRate >= 0.95"), None, json!({"successRate": 0.97}), Phase(Successful)),
        row("newrelic.md:18", s("result.successRate >= 0.95"), None, json!({"successRate": 0.9}), Phase(Failed)),
        row("prometheus.md:18", s("result[0] >= 0.95"), None, vector(&[0.97]), Phase(Successful)),
        row("prometheus.md:57", s("all(result, # < 1000)"), None, vector(&[200.0, 999.0]), Phase(Successful)),
        row("prometheus.md:57", s("all(result, # < 1000)"), None, vector(&[200.0, 1200.0]), Phase(Failed)),
        row("skywalking.md:19", s("all(result.service_apdex.values.values, {asFloat(.value) >= 9900})"), None,
            json!({"service_apdex": {"label": null, "values": {"values": [{"value": "9950"}, {"value": 9999}]}}}),
            Phase(Successful)),
        row("skywalking.md:19", s("all(result.service_apdex.values.values, {asFloat(.value) >= 9900})"), None,
            json!({"service_apdex": {"label": null, "values": {"values": [{"value": "9950"}, {"value": "9800"}]}}}),
            Phase(Failed)),
        row("wavefront.md:16", s("result >= 0.95"), None, 0.96, Phase(Successful)),
        row("web.md:13", s("result == true"), None, json!(true), Phase(Successful)),
        row("web.md:13", s("result == true"), None, json!(false), Phase(Failed)),
        row("web.md:39", s("result.ok && result.successPercent >= 0.90"), None,
            json!({"ok": true, "successPercent": 0.95}), Phase(Successful)),
        row("web.md:39", s("result.ok && result.successPercent >= 0.90"), None,
            json!({"ok": false, "successPercent": 0.95}), Phase(Failed)),
        row("web.md:64", s("result == \"I am OK\""), None, "I am OK", Phase(Successful)),
        row("web.md:64", s("result == \"I am OK\""), None, "", Phase(Failed)),
    ]
}

/// `utils/evaluate/evaluate_test.go`, with JSON standing in for Go's values.
#[rustfmt::skip]
fn argo_unit_tests() -> Vec<Row> {
    let s = Some;
    vec![
        row("TestEvaluateResultWithSuccess", s("true"), s("false"), true, Phase(Successful)),
        row("TestEvaluateResultWithFailure", s("true"), s("true"), true, Phase(Failed)),
        row("TestEvaluateResultInconclusive", s("false"), s("false"), true, Phase(Inconclusive)),
        row("TestEvaluateResultNoSuccessConditionAndNotFailing", s(""), s("false"), true, Phase(Successful)),
        row("TestEvaluateResultNoFailureConditionAndNotSuccessful", s("false"), s(""), true, Phase(Failed)),
        row("TestEvaluateResultNoFailureConditionAndNoSuccessCondition", s(""), s(""), true, Phase(Successful)),
        row("TestEvaluateResultWithErrorOnSuccessCondition", s("a == true"), s("true"), true,
            Error("successCondition \"a == true\"")),
        row("TestEvaluateResultWithErrorOnFailureCondition", s("true"), s("a == true"), true,
            Error("failureCondition \"a == true\"")),
        row("TestEvaluateConditionWithSuccess", s("result == true"), None, true, Phase(Successful)),
        row("TestEvaluateConditionWithFailure", s("result == false"), None, true, Phase(Failed)),
        row("TestErrorWithNonBoolReturn", s("1"), None, true, Error("expected bool, but got int")),
        row("TestErrorWithInvalidReference", s("invalidVariable"), None, true, Error("invalidVariable")),
        row("TestEvaluateArray", s("all(result.service_apdex.values.values, {# > 1})"), None,
            json!({"service_apdex": {"label": null, "values": {"values": [2, 2]}}}), Phase(Successful)),
        row("TestEvaluateInOperator", s("2 in result"), None, vector(&[2.0, 2.0]), Phase(Successful)),
        row("TestEvaluateFloat64", s("result > 1"), None, 5.0, Phase(Successful)),
        row("TestEvaluateInvalidStruct", s("result.Name() == 'hi'"), None, true, Error("result.Name()")),
        row("TestEvaluateAsIntPanic", s("asInt(result) == 1.1"), None, "1.1",
            Error("strconv.ParseInt: parsing \"1.1\": invalid syntax")),
        row("TestEvaluateAsInt", s("asInt(result) == 1"), None, "1", Phase(Successful)),
        row("TestEvaluateAsInt", s("asInt(result) == 1"), None, 1.0, Phase(Successful)),
        row("TestEvaluateAsInt", s("asInt(result) == 1"), None, 1.123, Phase(Successful)),
        row("TestEvaluateAsFloatError", s("asFloat(result) == 1.1"), None, "NotANum",
            Error("strconv.ParseFloat: parsing \"NotANum\": invalid syntax")),
        row("TestEvaluateAsFloat", s("asFloat(result) == 1.1"), None, "1.1", Phase(Successful)),
        row("TestEvaluateAsFloat", s("asFloat(result) >= 1.1"), None, "1.1", Phase(Successful)),
        row("TestEvaluateAsFloat", s("asFloat(result) <= 1.1"), None, "1.1", Phase(Successful)),
        row("TestEvaluateAsFloat", s("asFloat(result) == 1.1"), None, 1.1, Phase(Successful)),
        row("TestEvaluateAsFloat", s("asFloat(result) == 1"), None, 1.0, Phase(Successful)),
        row("TestEvaluateAsFloat", s("asFloat(result) >= 1"), None, 1.0, Phase(Successful)),
        row("TestIsNilFunc", s("isNil(result)"), None, Value::Nil, Phase(Successful)),
        row("TestIsNilFunc", s("isNil(result)"), None, 1.0, Phase(Failed)),
        row("TestIsNilFunc", s("isNil(result)"), None, false, Phase(Failed)),
        row("TestIsNilFunc", s("isNil(result)"), None, json!(["hi", "hello"]), Phase(Failed)),
        row("TestDefaultFunc", s("default(result, 2) == 2"), None, Value::Nil, Phase(Successful)),
        row("TestDefaultFunc", s("default(result, 0) == 1"), None, 1.0, Phase(Successful)),
    ]
}

/// sluice's user: `successCondition: result[0] >= 0.95`, `failureCondition: result[0] < 0.90`.
#[rustfmt::skip]
fn the_users_conditions() -> Vec<Row> {
    let (s, f) = (Some("result[0] >= 0.95"), Some("result[0] < 0.90"));
    vec![
        row("user", s, f, vector(&[0.99]), Phase(Successful)),
        row("user", s, f, vector(&[0.95]), Phase(Successful)),
        row("user", s, f, vector(&[0.92]), Phase(Inconclusive)),
        row("user", s, f, vector(&[0.90]), Phase(Inconclusive)),
        row("user", s, f, vector(&[0.89]), Phase(Failed)),
        row("user", s, f, vector(&[f64::NAN]), Phase(Inconclusive)),
        row("user", s, f, vector(&[f64::INFINITY]), Phase(Successful)),
        row("user", s, f, vector(&[f64::NEG_INFINITY]), Phase(Failed)),
        row("user", s, f, vector(&[]), Error(NIL_OR_EMPTY)),
        row("user", s, f, Value::Nil, Error(NIL_OR_EMPTY)),
    ]
}

fn check(rows: Vec<Row>) {
    let mut failures = Vec::new();
    for Row {
        source,
        success,
        failure,
        result,
        expect,
    } in &rows
    {
        let got = assess(*success, *failure, result);
        let ok = match (&got, expect) {
            (Ok(phase), Phase(want)) => phase == want,
            (Err(error), Error(want)) => error.to_string().contains(want),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{source}: {success:?} / {failure:?} on {result:?}: got {got:?}, want {expect:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn every_example_in_argos_docs() {
    check(docs());
}

#[test]
fn argos_own_evaluate_tests() {
    check(argo_unit_tests());
}

#[test]
fn the_users_success_and_failure_conditions() {
    check(the_users_conditions());
}

#[test]
fn an_error_names_the_condition_and_the_expression_in_argos_words() {
    let result = vector(&[0.97]);
    let error = assess(Some("result[0]"), None, &result).unwrap_err();
    assert_eq!(
        error.to_string(),
        "could not evaluate successCondition \"result[0]\": expected bool, but got float64"
    );
    assert_eq!(
        error,
        ExprError::Condition {
            condition: "successCondition",
            expression: "result[0]".to_owned(),
            reason: "expected bool, but got float64".to_owned(),
        }
    );

    let error = assess(None, Some("result[0] >="), &result)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("could not evaluate failureCondition \"result[0] >=\": "),
        "{error}"
    );

    let error = evaluate("result[0] >= 0.95", &vector(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!("could not evaluate condition \"result[0] >= 0.95\": {NIL_OR_EMPTY}")
    );

    let error = evaluate("'a' + 1", &result).unwrap_err().to_string();
    assert!(
        error.starts_with("could not evaluate condition \"'a' + 1\": "),
        "{error}"
    );
}

#[test]
fn a_success_condition_error_wins_over_a_failure_condition() {
    let error = assess(Some("nope"), Some("nope either"), &Value::from(1.0)).unwrap_err();
    assert!(
        matches!(
            error,
            ExprError::Condition {
                condition: "successCondition",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_condition_too_long_for_the_stack_is_an_error() {
    let condition = format!("true{}", " && true".repeat(600));
    let error = evaluate(&condition, &Value::from(1.0))
        .unwrap_err()
        .to_string();
    assert!(error.ends_with("longer than 4096 bytes"), "{error}");
}

#[test]
fn a_panic_in_the_library_is_an_error() {
    // expr-lang 2.1.0 panics on a map inside a map literal.
    let error = evaluate("{a: {b: 1}}.a.b == 1", &Value::from(1.0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("panicked"), "{error}");
}

/// expr's built-ins Argo's docs point to, each once, against one result.
#[test]
fn expr_builtins() {
    let result = Value::from(json!({
        "samples": [0.5, 1.5, -2.0, 4.0],
        "name": "checkout-7d9f",
        "none": null,
    }));
    let holds = [
        "len(result.samples) == 4",
        "len(result.name) == 13",
        "all(result.samples, {# < 5})",
        "any(result.samples, # < 0)",
        "none(result.samples, # > 4)",
        "one(result.samples, # < 0)",
        "filter(result.samples, # > 1) == [1.5, 4.0]",
        "map(result.samples, # * 2) == [1.0, 3.0, -4.0, 8.0]",
        "count(result.samples, # > 0) == 3",
        "sum(result.samples) == 4",
        "min(result.samples) == -2",
        "max(result.samples) == 4",
        "mean(result.samples) == 1",
        "median(result.samples) == 1",
        "abs(result.samples[2]) == 2",
        "ceil(result.samples[0]) == 1",
        "floor(result.samples[1]) == 1",
        "round(result.samples[1]) == 2",
        "4.0 in result.samples",
        "'name' in result",
        "result.name matches '^checkout-[0-9a-f]+$'",
        "result.name startsWith 'checkout'",
        "(result.samples[0] > 1 ? 'high' : 'low') == 'low'",
        "(result.none ?? 7) == 7",
        "result.missing == nil",
        "result?.missing?.deeper == nil",
        "result['samples'][-1] == 4",
        "result.samples[1:3] == [1.5, -2.0]",
        "upper(result.name) == 'CHECKOUT-7D9F'",
        "not (result.samples[0] > 1) and true or false",
        "let m = max(result.samples); m == 4",
        "result.samples | sum() == 4",
        "isNaN(0.0 / 0.0) && !isNaN(1) && isInf(1.0 / 0.0) && !isInf(1)",
        "asInt('-12') == -12 && asFloat('1e3') == 1000 && asFloat('NaN') != asFloat('NaN')",
        "isInf(asFloat('+Inf')) && isInf(asFloat('-inf'))",
        "!isNil(result) && default(result, 0) == result",
    ];
    for condition in holds {
        assert_eq!(evaluate(condition, &result), Ok(true), "{condition}");
    }
}

#[test]
fn argos_functions_refuse_what_go_refuses() {
    let result = Value::from(json!({"samples": [1.0]}));
    for (condition, reason) in [
        (
            "isNaN(result)",
            "isNaN() not supported on map[string]interface {}",
        ),
        ("isInf('x')", "isInf() not supported on string"),
        (
            "asInt(result.samples)",
            "asInt() not supported on []interface {}",
        ),
        ("asFloat(true)", "asFloat() not supported on bool"),
        ("isNil()", "isNil() takes exactly one argument"),
        ("default(result)", "default() takes exactly two arguments"),
    ] {
        let error = evaluate(condition, &result).unwrap_err().to_string();
        assert!(error.contains(reason), "{condition}: {error}");
    }
}

#[test]
fn time_expressions_take_now_as_given() {
    let now: jiff::Timestamp = "2026-12-03T14:00:00.5Z".parse().unwrap();
    assert_eq!(evaluate_time("now()", now), Ok(now));
    assert_eq!(
        evaluate_time("now() - duration(\"5m\")", now),
        Ok("2026-12-03T13:55:00.5Z".parse().unwrap())
    );
    // Argo's TestEvalTimeWithSuccessExpr.
    assert_eq!(
        evaluate_time(
            r#"date("2023-08-14 00:00:00", "2006-01-02 15:04:05", "UTC") - duration("1h")"#,
            now
        ),
        Ok("2023-08-13T23:00:00Z".parse().unwrap())
    );
    assert_eq!(
        evaluate_time("1", now).unwrap_err().to_string(),
        "could not evaluate time \"1\": expected time.Time, but got int"
    );
    let error = evaluate_time("now() - duration(\"5 minutes\")", now).unwrap_err();
    assert!(matches!(error, ExprError::Time { .. }), "{error}");
    assert!(evaluate_time("isNaN(1) ? now() : now()", now).is_ok());
    let before_1970: jiff::Timestamp = "1969-12-31T23:59:59.25Z".parse().unwrap();
    assert_eq!(evaluate_time("now()", before_1970), Ok(before_1970));
}

//! Assessment tables: a run fed measurement after measurement through [`begin`] and
//! [`finish`], `now` advancing by hand.

use serde_json::json;

use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

fn run(spec: serde_json::Value) -> AnalysisRun {
    AnalysisRun {
        metadata: kube::api::ObjectMeta {
            name: Some("r".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        spec: serde_json::from_value(spec).unwrap(),
        status: None,
    }
}

fn web(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut metric = json!({"name": name, "provider": {"web": {"url": "http://x"}}});
    metric
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    metric
}

fn measurement(phase: AnalysisPhase, now: Timestamp) -> Measurement {
    Measurement {
        phase,
        message: (phase == AnalysisPhase::Error).then(|| "boom".to_owned()),
        started_at: Some(stamp(now)),
        finished_at: phase.completed().then(|| stamp(now)),
        value: Some("1".into()),
        metadata: None,
        resume_at: None,
    }
}

/// One pass at `now`: every due task is answered with `answer(metric name)`.
fn pass(
    run: &mut AnalysisRun,
    now: Timestamp,
    answer: impl Fn(&str) -> AnalysisPhase,
) -> (usize, Outcome) {
    let values = Values::default();
    let Pass::Measure { prepared, due } = begin(run, Ok(&values), now) else {
        panic!("not measuring");
    };
    let taken: Vec<Taken> = due
        .iter()
        .map(|d| Taken {
            metric: d.metric,
            new: matches!(d.task, schedule::Task::Take),
            measurement: measurement(answer(&prepared.metrics[d.metric].name), now),
            metadata: None,
        })
        .collect();
    let n = taken.len();
    let outcome = finish(run, &prepared, &values, taken, now);
    run.status = Some(outcome.status.clone());
    (n, outcome)
}

/// Feeds `phases` one per pass to a single metric `m` (interval 1s), until the run completes;
/// the run's phase and message.
fn feed(metric: serde_json::Value, phases: &[AnalysisPhase]) -> (AnalysisPhase, String, usize) {
    let mut r = run(json!({"metrics": [metric]}));
    let mut taken = 0;
    for (t, phase) in (0..).zip(phases) {
        let (n, _) = pass(&mut r, at(t), |_| *phase);
        taken += n;
        if r.status.as_ref().unwrap().phase.completed() {
            break;
        }
    }
    let status = r.status.unwrap();
    (status.phase, status.message.unwrap_or_default(), taken)
}

use AnalysisPhase::{Error as E, Failed as F, Inconclusive as I, Running, Successful as S};

#[test]
fn failure_limit_counts_failures_and_minus_one_disables_it() {
    let m = |limit: i32| {
        web(
            "m",
            json!({"interval": "1s", "count": 4, "failureLimit": limit}),
        )
    };
    assert_eq!(
        feed(m(1), &[F, S, F, S]),
        (
            F,
            "Metric \"m\" assessed Failed due to failed (2) > failureLimit (1)".into(),
            3
        )
    );
    assert_eq!(feed(m(1), &[F, S, S, S]).0, S);
    assert_eq!(feed(m(0), &[F]).0, F);
    let disabled = web(
        "m",
        json!({"interval": "1s", "count": 3, "failureLimit": -1, "consecutiveSuccessLimit": 2}),
    );
    assert_eq!(
        feed(disabled.clone(), &[F, F, S]).0,
        F,
        "count reached, successes not"
    );
    assert_eq!(feed(disabled, &[F, S, S]).0, S, "two successes in a row");
}

#[test]
fn inconclusive_limit_makes_the_run_inconclusive() {
    let m = web(
        "m",
        json!({"interval": "1s", "count": 3, "inconclusiveLimit": 1}),
    );
    let (phase, message, taken) = feed(m, &[I, S, I]);
    assert_eq!(phase, I);
    assert_eq!(
        message,
        "Metric \"m\" assessed Inconclusive due to inconclusive (2) > inconclusiveLimit (1)"
    );
    assert_eq!(taken, 3);
}

#[test]
fn consecutive_errors_beyond_the_limit_are_an_error_and_default_to_four() {
    let m = web("m", json!({"interval": "1s", "count": 10}));
    let mut r = run(json!({"metrics": [m]}));
    let mut t = 0;
    for _ in 0..5 {
        pass(&mut r, at(t), |_| E);
        t += schedule::ERROR_RETRY.as_secs() as i64;
    }
    let status = r.status.unwrap();
    assert_eq!(status.phase, E);
    assert_eq!(
        status.message.as_deref(),
        Some(
            "Metric \"m\" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): \"Error Message: boom\""
        )
    );
    let zero = web("m", json!({"consecutiveErrorLimit": 0}));
    assert_eq!(feed(zero, &[E]).0, E);
    // An error between successes resets nothing but the streak.
    let m = web(
        "m",
        json!({"interval": "1s", "count": 3, "consecutiveErrorLimit": 1}),
    );
    let mut r = run(json!({"metrics": [m]}));
    let answers = [S, E, S, E, S];
    for (i, a) in answers.iter().enumerate() {
        pass(&mut r, at(i as i64 * 10), |_| *a);
    }
    let status = r.status.unwrap();
    assert_eq!(status.phase, S);
    let result = &status.metric_results.unwrap()[0];
    assert_eq!((result.count, result.error), (Some(3), Some(2)));
}

#[test]
fn consecutive_success_limit_completes_early_or_leaves_the_count_inconclusive() {
    let m = web(
        "m",
        json!({"interval": "1s", "count": 4, "failureLimit": 2, "consecutiveSuccessLimit": 2}),
    );
    assert_eq!(feed(m.clone(), &[F, S, S]), (S, String::new(), 3));
    assert_eq!(feed(m, &[S, F, S, F]).0, I);
}

#[test]
fn a_single_measurement_metric_completes_with_it() {
    assert_eq!(feed(web("m", json!({})), &[S]), (S, String::new(), 1));
}

#[test]
fn the_run_is_the_worst_metric_and_ends_early_on_a_failure() {
    let mut r = run(json!({"metrics": [
        web("slow", json!({"interval": "1s"})),
        web("quick", json!({}))]}));
    pass(&mut r, at(0), |name| if name == "quick" { F } else { S });
    let status = r.status.as_ref().unwrap();
    assert_eq!(status.phase, F, "quick failed: the run ends at once");
    let slow = &status.metric_results.as_ref().unwrap()[0];
    assert_eq!(
        slow.phase, S,
        "a run-forever metric is Successful when the run ends"
    );
    let summary = status.run_summary.as_ref().unwrap();
    assert_eq!(
        (summary.count, summary.successful, summary.failed),
        (Some(2), Some(1), Some(1))
    );
    let mut r = run(json!({"metrics": [web("a", json!({}))]}));
    let (_, outcome) = pass(&mut r, at(0), |_| F);
    let events: Vec<&str> = outcome.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(events, ["MetricFailed", "AnalysisRunFailed"]);
}

#[test]
fn dry_run_metrics_never_fail_the_run_but_are_summarised() {
    let mut r = run(
        json!({"metrics": [web("a", json!({})), web("b", json!({}))],
        "dryRun": [{"metricName": "^a$"}]}),
    );
    pass(&mut r, at(0), |name| if name == "a" { F } else { S });
    let status = r.status.unwrap();
    assert_eq!(status.phase, S);
    let dry = status.dry_run_summary.unwrap();
    assert_eq!((dry.count, dry.failed), (Some(1), Some(1)));
    let a = &status.metric_results.unwrap()[0];
    assert_eq!(a.dry_run, Some(true));
    assert_eq!(
        a.message.as_deref(),
        Some("Metric assessed Failed due to failed (1) > failureLimit (0)")
    );
}

#[test]
fn terminate_ends_the_run_successfully_with_its_message() {
    let mut r = run(json!({"metrics": [web("m", json!({"interval": "1s"}))]}));
    pass(&mut r, at(0), |_| S);
    pass(&mut r, at(1), |_| S);
    r.spec.terminate = Some(true);
    let (taken, outcome) = pass(&mut r, at(2), |_| S);
    assert_eq!(taken, 0, "no measurement once terminating");
    assert_eq!(outcome.status.phase, S);
    assert_eq!(outcome.status.message.as_deref(), Some("Run Terminated"));
    assert!(outcome.status.completed_at.is_some());
    // Terminated before any measurement: Successful too.
    let mut r =
        run(json!({"metrics": [web("m", json!({"initialDelay": "1h"}))], "terminate": true}));
    let (taken, outcome) = pass(&mut r, at(0), |_| S);
    assert_eq!((taken, outcome.status.phase), (0, S));
}

#[test]
fn schedules_follow_now() {
    let mut r = run(
        json!({"metrics": [web("m", json!({"interval": "10s", "count": 2, "initialDelay": "5s"}))]}),
    );
    let (taken, outcome) = pass(&mut r, at(0), |_| S);
    assert_eq!(taken, 0, "the first pass starts the run");
    assert_eq!(outcome.requeue, Some(at(5)));
    assert_eq!(pass(&mut r, at(4), |_| S).0, 0);
    let (taken, outcome) = pass(&mut r, at(5), |_| S);
    assert_eq!((taken, outcome.requeue), (1, Some(at(15))));
    assert_eq!(pass(&mut r, at(14), |_| S).0, 0);
    let (taken, outcome) = pass(&mut r, at(15), |_| S);
    assert_eq!((taken, outcome.status.phase, outcome.requeue), (1, S, None));
}

#[test]
fn measurement_retention_keeps_the_newest() {
    let mut r = run(json!({"metrics": [web("m", json!({"interval": "1s"}))],
        "measurementRetention": [{"metricName": "m", "limit": 2}]}));
    let mut trimmed = Vec::new();
    for t in 0..4 {
        trimmed.extend(pass(&mut r, at(t), |_| S).1.trimmed);
    }
    let result = &r.status.unwrap().metric_results.unwrap()[0];
    let kept = result.measurements.as_ref().unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1].started_at, Some(stamp(at(3))));
    assert_eq!(result.count, Some(4));
    assert_eq!(trimmed, [(0, 2), (0, 2)]);
}

#[test]
fn an_in_flight_measurement_is_resumed_in_place() {
    let mut r = run(json!({"metrics": [web("m", json!({}))]}));
    let values = Values::default();
    let Pass::Measure { prepared, due } = begin(&r, Ok(&values), at(0)) else {
        panic!()
    };
    let mut flight = measurement(Running, at(0));
    flight.resume_at = Some(stamp(at(3)));
    let taken = vec![Taken {
        metric: due[0].metric,
        new: true,
        measurement: flight,
        metadata: None,
    }];
    let outcome = finish(&r, &prepared, &values, taken, at(0));
    assert_eq!(outcome.requeue, Some(at(3)));
    assert_eq!(outcome.status.phase, Running);
    r.status = Some(outcome.status);
    let Pass::Measure { due, .. } = begin(&r, Ok(&values), at(3)) else {
        panic!()
    };
    assert!(matches!(due[0].task, schedule::Task::Resume(_)));
    let taken = vec![Taken {
        metric: 0,
        new: false,
        measurement: measurement(S, at(3)),
        metadata: None,
    }];
    let outcome = finish(&r, &prepared, &values, taken, at(3));
    let result = &outcome.status.metric_results.unwrap()[0];
    assert_eq!(result.measurements.as_ref().unwrap().len(), 1);
    assert_eq!(outcome.status.phase, S);
}

#[test]
fn bad_specs_and_arguments_end_the_run_in_error() {
    let r = run(json!({"metrics": [web("m", json!({"count": 2}))]}));
    let Pass::Invalid(outcome) = begin(&r, Ok(&Values::default()), at(0)) else {
        panic!()
    };
    assert_eq!(outcome.status.phase, E);
    assert_eq!(
        outcome.status.message.as_deref(),
        Some("Analysis spec invalid: metrics[0]: interval must be specified when count > 1")
    );
    let missing = crate::args::ArgsError::NotSupplied("host".into());
    let Pass::Invalid(outcome) = begin(&r, Err(&missing), at(0)) else {
        panic!()
    };
    assert_eq!(
        outcome.status.message.as_deref(),
        Some("Unable to resolve metric arguments: argument \"host\" was not supplied")
    );
    assert_eq!(outcome.events[0].reason, "AnalysisRunError");
}

#[test]
fn secrets_never_reach_the_status() {
    let secret: sluice_api::Argument = serde_json::from_value(
        json!({"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
    )
    .unwrap();
    let values = Values::resolve(&[secret], &json!({}), |_| Ok("hunter2".into())).unwrap();
    let r = run(json!({"metrics": [web("m", json!({}))]}));
    let Pass::Measure { prepared, .. } = begin(&r, Ok(&values), at(0)) else {
        panic!()
    };
    let mut m = measurement(E, at(0));
    m.message = Some("401 for token hunter2".into());
    m.value = Some("hunter2".into());
    let outcome = finish(
        &r,
        &prepared,
        &values,
        vec![Taken {
            metric: 0,
            new: true,
            measurement: m,
            metadata: None,
        }],
        at(0),
    );
    let text = serde_json::to_string(&outcome.status).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("401 for token *****"));
}

#[test]
fn ttl_deletes_a_finished_run_after_its_seconds() {
    let mut r = run(json!({"metrics": [web("m", json!({}))],
        "ttlStrategy": {"secondsAfterSuccess": 5, "secondsAfterCompletion": 60}}));
    let (_, outcome) = pass(&mut r, at(0), |_| S);
    assert_eq!(outcome.requeue, Some(at(6)));
    assert!(matches!(
        begin(&r, Ok(&Values::default()), at(5)),
        Pass::Complete(Expiry::At(_))
    ));
    assert!(matches!(
        begin(&r, Ok(&Values::default()), at(6)),
        Pass::Complete(Expiry::Delete)
    ));
    let mut r = run(json!({"metrics": [web("m", json!({}))],
        "ttlStrategy": {"secondsAfterSuccess": 5, "secondsAfterCompletion": 60}}));
    pass(&mut r, at(0), |_| F);
    assert_eq!(expiry(&r), Expiry::At(at(61)));
    let mut r = run(json!({"metrics": [web("m", json!({}))]}));
    pass(&mut r, at(0), |_| F);
    assert_eq!(expiry(&r), Expiry::Keep);
}

//! A condition never panics, whatever it says: arbitrary text as a success condition against
//! fixed results (a vector with NaN and +Inf, nil, a web body), and as a time expression.
//! Ranges and `repeat` are skipped: they allocate what they are asked for, which is a memory
//! budget's business, not a panic (see `sluice_expr::evaluate`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_expr::{Value, assess, evaluate_time};

fuzz_target!(
    init: {
        // libfuzzer-sys's hook aborts on every panic, caught or not. Those on sluice-expr's
        // evaluation thread (named `expr`) are caught and become errors (expr-lang 2.1.0 panics
        // on nested map literals), so they are let through; any other still aborts.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |panic| {
            if std::thread::current().name() != Some("expr") {
                abort(panic);
            }
        }));
    },
    |condition: &str| {
        if condition.len() > 512 || condition.contains("..") || condition.contains("repeat") {
            return;
        }
        let results = [
            Value::from(vec![0.97, f64::NAN, f64::INFINITY]),
            Value::Nil,
            Value::from(serde_json::json!({"data": {"ok": true, "successPercent": 0.95}})),
        ];
        for result in &results {
            let _ = assess(Some(condition), Some(condition), result);
        }
        let _ = evaluate_time(condition, jiff::Timestamp::UNIX_EPOCH);
    }
);

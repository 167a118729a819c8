//! Argo Rollouts' condition language: a metric's `successCondition` and `failureCondition`,
//! written in expr (Go's `github.com/expr-lang/expr`, here the `expr-lang` crate), evaluated
//! against a measurement's result with Argo's environment — `result`, `asInt`, `asFloat`,
//! `isNaN`, `isInf`, `isNil`, `default` — and expr's built-ins. [`assess`] turns the two
//! conditions into a measurement's phase as Argo's `EvaluateResult` does, and
//! [`evaluate_time`] computes a Prometheus range query's `start`/`end` (`now() -
//! duration("5m")`) with `now` passed in.
//!
//! A result is a [`Value`], typed as Go's providers hand it to Argo: numbers are `f64`, so NaN
//! and ±Inf are ordinary numbers, and nil (Datadog's empty answer) differs from an empty array
//! (Prometheus' empty vector).
//!
//! No IO, no clock, no panics: whatever a condition says, the answer is a value or an
//! [`ExprError`] naming the expression, in Argo's words.
//!
//! ```
//! use sluice_expr::{MeasurementPhase, Value, assess};
//!
//! let (success, failure) = (Some("result[0] >= 0.95"), Some("result[0] < 0.90"));
//! let phase = assess(success, failure, &Value::from(vec![0.92]));
//! assert_eq!(phase, Ok(MeasurementPhase::Inconclusive));
//! let phase = assess(success, failure, &Value::from(vec![f64::INFINITY]));
//! assert_eq!(phase, Ok(MeasurementPhase::Successful));
//! ```

mod value;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use value::Value;

/// Why a condition or a time expression has no answer: a syntax error, an evaluation error
/// (an index out of range, an unknown name, a bad argument) or a value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// A condition could not be evaluated; the message is Argo's.
    #[error("could not evaluate {condition} \"{expression}\": {reason}")]
    Condition {
        /// `successCondition`, `failureCondition`, or `condition` from [`evaluate`].
        condition: &'static str,
        /// The expression as written.
        expression: String,
        /// What went wrong.
        reason: String,
    },
    /// A time expression could not be evaluated to a time.
    #[error("could not evaluate time \"{expression}\": {reason}")]
    Time {
        /// The expression as written.
        expression: String,
        /// What went wrong.
        reason: String,
    },
}

/// The phase of a measurement decided by its conditions. An evaluation error — Argo's `Error`
/// phase — is an [`ExprError`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasurementPhase {
    /// The success condition held, or the failure condition did not.
    Successful,
    /// The failure condition held, or the success condition did not.
    Failed,
    /// Both conditions are set and neither held.
    Inconclusive,
}

/// Argo's reason when a condition fails against a result that is nil or an empty array.
const NIL_OR_EMPTY: &str =
    "metric result is nil or empty: no data returned from the metric provider";

/// Expressions longer than this are refused before parsing. The parser and the evaluator
/// recurse once per operator or bracket, and an overflowing stack aborts the process instead of
/// unwinding; the longest expression fits in [`STACK_SIZE`] (`tests/no_panic.rs`).
const MAX_LENGTH: usize = 4096;

/// The stack of the thread an expression is evaluated on: reserved, not committed, so its size
/// costs address space only.
const STACK_SIZE: usize = 64 << 20;

/// Evaluates `condition` with `result` bound, as Argo's `EvalCondition` does; the answer must
/// be a boolean.
///
/// Errors are worded as Argo's (`could not evaluate condition "…": …`; when `result` is nil or
/// an empty array, the reason is Argo's "metric result is nil or empty"). Evaluation runs
/// inside [`std::panic::catch_unwind`] on a thread of its own with a 64 MiB stack, so a panic
/// in the expression library becomes an error too (expr-lang 2.1.0 panics on a map or array
/// literal inside a map literal, `{a: {b: 1}}`; the panic hook still prints it). Conditions
/// longer than 4096 bytes are refused up front, since an overflowing stack cannot be caught.
/// Go's closure shorthand `.name` for `#.name` is spelled out before parsing, since expr-lang
/// reads it only as a call's last argument.
///
/// Two limits remain. Evaluation has no memory budget, unlike Go's expr: a range (`0..100000000`)
/// builds its whole array, and `let` bindings can double a string again and again; conditions
/// come from templates, not from measurements. And an index out of range is nil, not Go's
/// "index out of range" error: `result[0] >= 0.95` on an empty vector is still an error (nil
/// has no order), but `result[0] == 0.95` is false.
pub fn evaluate(condition: &str, result: &Value) -> Result<bool, ExprError> {
    evaluate_as("condition", condition, result)
}

/// A measurement's phase from its metric's conditions, Argo's `EvaluateResult`: neither ⇒
/// Successful; only success ⇒ Failed unless it holds; only failure ⇒ Successful unless it
/// holds; both ⇒ Failed if the failure condition holds, else Successful if the success
/// condition holds, else Inconclusive. An empty condition counts as absent, and both are
/// evaluated (success first) whenever set, so either one's error is the answer.
pub fn assess(
    success: Option<&str>,
    failure: Option<&str>,
    result: &Value,
) -> Result<MeasurementPhase, ExprError> {
    let success = success.filter(|s| !s.is_empty());
    let failure = failure.filter(|s| !s.is_empty());
    let succeeded = success
        .map(|c| evaluate_as("successCondition", c, result))
        .transpose()?;
    let failed = failure
        .map(|c| evaluate_as("failureCondition", c, result))
        .transpose()?;
    let (succeeded, failed) = match (succeeded, failed) {
        (None, None) => return Ok(MeasurementPhase::Successful),
        (Some(s), None) => (s, !s),
        (None, Some(f)) => (!f, f),
        (Some(s), Some(f)) => (s, f),
    };
    Ok(if failed {
        MeasurementPhase::Failed
    } else if succeeded {
        MeasurementPhase::Successful
    } else {
        MeasurementPhase::Inconclusive
    })
}

/// Evaluates a time expression — a Prometheus `rangeQuery`'s `start` or `end`, such as
/// `now() - duration("5m")` — to a timestamp, as Argo's `EvalTime` does, with `now()` answering
/// `now`. The environment is expr's built-ins plus `isNaN` and `isInf`; the answer must be a
/// time. Panics and long expressions are handled as in [`evaluate`].
pub fn evaluate_time(expression: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, ExprError> {
    let error = |reason: String| ExprError::Time {
        expression: expression.to_owned(),
        reason,
    };
    let nanos = now.as_nanosecond();
    let (seconds, subsec) = (
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000),
    );
    let now = i64::try_from(seconds)
        .ok()
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, subsec as u32))
        .ok_or_else(|| error("now is out of range".to_owned()))?
        .fixed_offset();
    let value = guarded(expression, || {
        let mut env = expr::Environment::new();
        add_number_tests(&mut env);
        env.add_function("now", move |call| {
            if !call.args.is_empty() {
                return Err(expr::Error::ExprError(
                    "now() takes no arguments".to_owned(),
                ));
            }
            Ok(expr::Value::DateTime(expr::DateTimeValue::fixed(now)))
        });
        env.eval(expression, &expr::Context::default())
    })
    .map_err(error)?;
    let expr::Value::DateTime(time) = &value else {
        return Err(error(format!(
            "expected time.Time, but got {}",
            go_type(&value)
        )));
    };
    jiff::Timestamp::new(time.timestamp(), time.timestamp_subsec_nanos() as i32)
        .map_err(|e| error(e.to_string()))
}

fn evaluate_as(
    condition_name: &'static str,
    condition: &str,
    result: &Value,
) -> Result<bool, ExprError> {
    let answer = guarded(condition, || {
        let env = argo_environment(result);
        let mut context = expr::Context::default();
        context.insert("result", result.to_expr());
        env.eval(&closure_members(condition), &context)
    })
    .and_then(|value| match value {
        expr::Value::Bool(b) => Ok(b),
        other => Err(format!("expected bool, but got {}", go_type(&other))),
    });
    answer.map_err(|reason| ExprError::Condition {
        condition: condition_name,
        expression: condition.to_owned(),
        reason: if result.is_nil_or_empty() {
            NIL_OR_EMPTY.to_owned()
        } else {
            reason
        },
    })
}

/// Go's expr reads `.name` inside a closure as `#.name` (Argo's SkyWalking example:
/// `all(…, {asFloat(.value) >= 9900})`); expr-lang 2.1.0 reads it as a predicate only where it
/// is a call's last argument. This spells it out: a `.` starting a name, outside strings, where
/// no value stands before it (after an opening bracket, a comma, an operator or an operator
/// keyword) becomes `#.`.
fn closure_members(condition: &str) -> std::borrow::Cow<'_, str> {
    const KEYWORDS: [&str; 8] = [
        "and",
        "or",
        "not",
        "in",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
    ];
    /// What came last outside strings and whitespace.
    enum Last {
        Start,
        /// A name, a keyword or a number: where it starts and ends.
        Word(usize, usize),
        Symbol(char),
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    if !condition.contains('.') {
        return condition.into();
    }
    let mut out = String::with_capacity(condition.len() + 8);
    let (mut quote, mut escaped) = (None, false);
    let (mut last, mut previous) = (Last::Start, None);
    for (i, c) in condition.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
                last = Last::Symbol(c);
            }
        } else if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
        } else if is_word(c) {
            last = match last {
                Last::Word(start, _) if previous.is_some_and(is_word) => {
                    Last::Word(start, i + c.len_utf8())
                }
                _ => Last::Word(i, i + c.len_utf8()),
            };
        } else if !c.is_whitespace() {
            let starts_name =
                condition[i + 1..].starts_with(|n: char| n.is_alphabetic() || n == '_');
            let no_value_before = match last {
                Last::Start => true,
                Last::Word(start, end) => KEYWORDS.contains(&&condition[start..end]),
                Last::Symbol(b) => "([{,!:+-*/%<>=|&^~".contains(b),
            };
            if c == '.' && starts_name && no_value_before {
                out.push('#');
            }
            last = Last::Symbol(c);
        }
        out.push(c);
        previous = Some(c);
    }
    out.into()
}

/// Runs `eval` on a thread of its own with a large stack, unless `expression` is too long for
/// it, turning a panic into an error.
fn guarded(
    expression: &str,
    eval: impl FnOnce() -> Result<expr::Value, expr::Error> + Send,
) -> Result<expr::Value, String> {
    if expression.len() > MAX_LENGTH {
        return Err(format!("longer than {MAX_LENGTH} bytes"));
    }
    let run = || match catch_unwind(AssertUnwindSafe(eval)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("expr".to_owned())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, run)
            .map_err(|e| format!("no thread to evaluate on: {e}"))?
            .join()
            .unwrap_or_else(|_| Err("panicked".to_owned()))
    })
}

/// The first line of a panic's message (expr-lang's quote the whole input after it).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "unknown panic"
    };
    message.lines().next().unwrap_or(message)
}

/// Go's name for the type of an expr value, as Argo's `expected bool, but got %T` prints it.
fn go_type(value: &expr::Value) -> &'static str {
    match value {
        expr::Value::Nil => "<nil>",
        expr::Value::Bool(_) => "bool",
        expr::Value::Integer(_) => "int",
        expr::Value::Float(_) => "float64",
        expr::Value::String(_) => "string",
        expr::Value::DateTime(_) => "time.Time",
        expr::Value::Duration(_) => "time.Duration",
        expr::Value::Timezone(_) => "*time.Location",
        expr::Value::Month(_) => "time.Month",
        expr::Value::Weekday(_) => "time.Weekday",
        expr::Value::Array(_) => "[]interface {}",
        expr::Value::Bytes(_) => "[]uint8",
        expr::Value::Map(_) | expr::Value::KeyedMap(_) => "map[string]interface {}",
    }
}

/// expr's built-ins plus Argo's functions (`utils/evaluate/evaluate.go`). `isNil` and `default`
/// look at `result`, whatever their first argument, as Argo's do.
fn argo_environment(result: &Value) -> expr::Environment<'static> {
    let mut env = expr::Environment::new();
    add_number_tests(&mut env);
    env.add_function("asInt", |call| {
        match one_argument(&call.ident, &call.args)? {
            expr::Value::Integer(i) => Ok(expr::Value::Integer(*i)),
            // Go's int64(f): truncation (Rust's `as` saturates where Go's is undefined).
            expr::Value::Float(f) => Ok(expr::Value::Integer(*f as i64)),
            expr::Value::String(s) => s.parse::<i64>().map(expr::Value::Integer).map_err(|_| {
                expr_error(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
            }),
            other => Err(unsupported(&call.ident, other)),
        }
    });
    env.add_function("asFloat", |call| {
        match one_argument(&call.ident, &call.args)? {
            expr::Value::Integer(i) => Ok(expr::Value::Float(*i as f64)),
            expr::Value::Float(f) => Ok(expr::Value::Float(*f)),
            expr::Value::String(s) => s.parse::<f64>().map(expr::Value::Float).map_err(|_| {
                expr_error(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
            }),
            other => Err(unsupported(&call.ident, other)),
        }
    });
    let nil = matches!(result, Value::Nil);
    env.add_function("isNil", move |call| {
        one_argument(&call.ident, &call.args)?;
        Ok(expr::Value::Bool(nil))
    });
    let result = result.to_expr();
    env.add_function("default", move |call| {
        if call.args.len() != 2 {
            return Err(expr_error(
                "default() takes exactly two arguments".to_owned(),
            ));
        }
        Ok(if nil {
            call.args[1].clone()
        } else {
            result.clone()
        })
    });
    env
}

/// `isNaN` and `isInf`, Go's `math.IsNaN` and `math.IsInf(f, 0)`: an integer is neither.
fn add_number_tests(env: &mut expr::Environment<'_>) {
    env.add_function("isNaN", |call| {
        match one_argument(&call.ident, &call.args)? {
            expr::Value::Float(f) => Ok(expr::Value::Bool(f.is_nan())),
            expr::Value::Integer(_) => Ok(expr::Value::Bool(false)),
            other => Err(unsupported(&call.ident, other)),
        }
    });
    env.add_function("isInf", |call| {
        match one_argument(&call.ident, &call.args)? {
            expr::Value::Float(f) => Ok(expr::Value::Bool(f.is_infinite())),
            expr::Value::Integer(_) => Ok(expr::Value::Bool(false)),
            other => Err(unsupported(&call.ident, other)),
        }
    });
}

fn one_argument<'a>(name: &str, args: &'a [expr::Value]) -> Result<&'a expr::Value, expr::Error> {
    match args {
        [arg] => Ok(arg),
        _ => Err(expr_error(format!("{name}() takes exactly one argument"))),
    }
}

fn unsupported(name: &str, value: &expr::Value) -> expr::Error {
    expr_error(format!(
        "{name}() not supported on {} {value}",
        go_type(value)
    ))
}

fn expr_error(message: String) -> expr::Error {
    expr::Error::ExprError(message)
}

#[cfg(test)]
mod tests {
    use super::closure_members;

    #[test]
    fn a_leading_dot_is_the_closure_element_and_nothing_else_is() {
        for (condition, spelled) in [
            (
                "all(r, {asFloat(.value) >= 9900})",
                "all(r, {asFloat(#.value) >= 9900})",
            ),
            ("map(r, .value)", "map(r, #.value)"),
            (
                "all(r, {not .ok and .n > 1})",
                "all(r, {not #.ok and #.n > 1})",
            ),
            (".a", "#.a"),
            ("result.a.b", "result.a.b"),
            ("result?.a", "result?.a"),
            ("#.a", "#.a"),
            ("f().a + r[0].b", "f().a + r[0].b"),
            ("1.5 > .5", "1.5 > .5"),
            ("1..3", "1..3"),
            (
                "'(.a' == \"x .b\" && `,.c` != ''",
                "'(.a' == \"x .b\" && `,.c` != ''",
            ),
            ("'\\'(.a' == ''", "'\\'(.a' == ''"),
        ] {
            assert_eq!(closure_members(condition), spelled, "{condition}");
        }
    }
}

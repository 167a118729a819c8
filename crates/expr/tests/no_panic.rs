//! Whatever a condition says, `evaluate` and `evaluate_time` answer: thousands of pseudo-random
//! conditions over expr's tokens, and the longest accepted conditions nested every way the
//! grammar nests, which the evaluation thread's stack must hold.

use sluice_expr::{Value, evaluate, evaluate_time};

/// Tokens of expr and of Argo's environment. No token makes a large range: ranges build their
/// whole array (see `evaluate`'s docs), and the numbers here are small.
const TOKENS: &[&str] = &[
    "result",
    "result[0]",
    "result.a",
    "result?.b",
    "#",
    ".value",
    "#.value",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "?",
    "??",
    "?.",
    ".",
    "..",
    "!",
    "not",
    "and",
    "or",
    "&&",
    "||",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "**",
    "^",
    "in",
    "not in",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "|",
    "let",
    "x",
    "=",
    ";",
    "0",
    "1",
    "2",
    "-1",
    "0.95",
    "1e3",
    ".5",
    "nil",
    "true",
    "false",
    "'a'",
    "\"b\"",
    "`c`",
    "'^[a-z]+$'",
    "'",
    "\"",
    "len",
    "all",
    "any",
    "none",
    "one",
    "filter",
    "map",
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "median",
    "abs",
    "ceil",
    "floor",
    "round",
    "asInt",
    "asFloat",
    "isNaN",
    "isInf",
    "isNil",
    "default",
    "now",
    "duration",
    "date",
    "'5m'",
    "upper",
    "trim",
    "split",
    "join",
    "keys",
    "values",
    "first",
    "last",
    "sort",
    "reverse",
    "toJSON",
    "int",
    "float",
    "string",
    "type",
    "$env",
    "{a: 1}",
    "[1, 2]",
    "\\",
    "é",
    "\u{0}",
];

/// Operands for well-formed conditions.
const OPERANDS: &[&str] = &[
    "result",
    "result[0]",
    "result[-1]",
    "result.a[0].value",
    "result.s",
    "len(result)",
    "0.95",
    "1",
    "nil",
    "true",
    "'9950'",
    "asFloat(result.a[0].value)",
    "asInt('7')",
    "isNaN(result)",
    "isInf(result[1])",
    "isNil(result)",
    "default(result, 0)",
    "max(result)",
    "sum(result)",
    "abs(-1)",
    "ceil(0.2)",
    "all(result, # > 0)",
    "any(result, {# < 1})",
    "count(result, isInf(#))",
    "map(result, # * 2)",
    "filter(result, # > 0)",
    "result ?? 0",
    "(result[0] > 0 ? 1 : 2)",
    "result.b?.c",
    "now()",
    "duration('5m')",
    "now() - duration('1h')",
];

/// Operators between two operands.
const COMPARISONS: &[&str] = &[
    "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in", "matches", "contains", "+", "-", "*", "/",
    "??",
];

/// xorshift64*: a reproducible stream without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn results() -> Vec<Value> {
    vec![
        Value::Nil,
        Value::from(f64::NAN),
        Value::from(vec![0.97, f64::INFINITY, f64::NEG_INFINITY]),
        Value::from(Vec::<f64>::new()),
        Value::from(serde_json::json!({"a": [{"value": "9950"}], "b": {"c": null}, "s": "text"})),
    ]
}

#[test]
fn random_conditions_never_panic() {
    let results = results();
    let now = jiff::Timestamp::UNIX_EPOCH;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut answered, mut refused) = (0, 0);
    for i in 0..3000 {
        let condition = if i % 2 == 0 {
            // Token soup: mostly syntax errors.
            let length = 1 + rng.below(12);
            let tokens: Vec<&str> = (0..length)
                .map(|_| TOKENS[rng.below(TOKENS.len())])
                .collect();
            tokens.join(if rng.below(2) == 0 { " " } else { "" })
        } else {
            // Two operands and an operator: mostly well-formed, often ill-typed.
            let left = OPERANDS[rng.below(OPERANDS.len())];
            let right = OPERANDS[rng.below(OPERANDS.len())];
            format!(
                "{left} {} {right}",
                COMPARISONS[rng.below(COMPARISONS.len())]
            )
        };
        match evaluate(&condition, &results[i % results.len()]) {
            Ok(_) => answered += 1,
            Err(error) => {
                assert!(
                    error.to_string().contains(&condition),
                    "{error} does not name {condition}"
                );
                refused += 1;
            }
        }
        let _ = evaluate_time(&condition, now);
    }
    // The stream is fixed; these only show the alphabet reaches both answers.
    assert!(answered > 100, "{answered} answered");
    assert!(refused > 1500, "{refused} refused");
}

#[test]
fn the_longest_conditions_fit_the_stack() {
    let result = Value::from(vec![0.5]);
    let fill = |open: &str, close: &str, core: &str| {
        let n = (4096 - core.len()) / (open.len() + close.len());
        format!("{}{core}{}", open.repeat(n), close.repeat(n))
    };
    let conditions = [
        fill("(", ")", "true"),
        fill("[", "]", "1"),
        fill("{a:", "}", "1"),
        fill("(-", ")", "1"),
        fill("!(", ")", "true"),
        fill("abs(", ")", "1"),
        fill("len([", "])", "1"),
        fill("1 in [", "]", "1"),
        fill("map(result,", ")", "1"),
        fill("filter(result,{", "})", "true"),
        fill("all(result,", ")", "true"),
        fill("true?", ":1", "true"),
        fill("", "&&true", "true"),
        fill("", "+1", "1"),
        fill("", "**1", "1"),
        fill("", "??1", "1"),
        fill("", "[0]", "result"),
        fill("", "?.a", "result"),
        fill("", "|abs()", "1"),
        fill("!", "", "true"),
        fill("-", "", "1"),
        fill("not ", "", "true"),
    ];
    for condition in conditions {
        assert!(condition.len() <= 4096, "{}", condition.len());
        // Any answer will do: the point is that there is one.
        let _ = evaluate(&condition, &result);
        let _ = evaluate_time(&condition, jiff::Timestamp::UNIX_EPOCH);
    }
}

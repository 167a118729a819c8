//! `ignoreDifferences.jqPathExpressions`, run as Argo CD's ignore normalizer runs them: an
//! expression `E` ignores what `del(E)` deletes from an object, and a sync with
//! `RespectIgnoreDifferences=true` keeps what `path(E)` names as live has it. jq is the `jaq`
//! interpreter with its standard library (`select`, `test`, `map`, …).
//!
//! Expressions are compiled once per thread and kept (jaq's values are not `Send`). Unlike
//! Argo CD, which stops an expression after a timeout, an expression here runs to its end; a
//! runtime error leaves the object as it was, as Argo CD does.

use std::{cell::RefCell, collections::HashMap, rc::Rc};

use jaq_core::{
    Compiler, Ctx, Vars, data,
    load::{Arena, File, Loader},
    unwrap_valr,
};
use jaq_json::Val;
use serde_json::Value;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// An expression jaq cannot parse or compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("jqPathExpressions {expression:?}: {reason}")]
pub struct JqError {
    /// The expression as written.
    pub expression: String,
    /// What is wrong with it.
    pub reason: String,
}

thread_local! {
    static COMPILED: RefCell<HashMap<String, Rc<Filter>>> = RefCell::new(HashMap::new());
}

fn compile(program: &str) -> Result<Filter, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(
            &arena,
            File {
                code: program,
                path: (),
            },
        )
        .map_err(|errors| format!("does not parse ({} errors)", errors.len()))?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let names: Vec<String> = errors
                .iter()
                .flat_map(|(_, errs)| errs.iter().map(|(name, _)| (*name).to_owned()))
                .collect();
            format!("undefined: {}", names.join(", "))
        })
}

/// The compiled `program` (built around `expression`), from this thread's cache.
fn filter(program: String, expression: &str) -> Result<Rc<Filter>, JqError> {
    COMPILED.with(|cache| {
        if let Some(filter) = cache.borrow().get(&program) {
            return Ok(filter.clone());
        }
        let filter = Rc::new(compile(&program).map_err(|reason| JqError {
            expression: expression.to_owned(),
            reason,
        })?);
        let mut cache = cache.borrow_mut();
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(program, filter.clone());
        Ok(filter)
    })
}

/// Checks that `expression` compiles.
pub fn check(expression: &str) -> Result<(), JqError> {
    filter(format!("del({expression})"), expression).map(drop)
}

/// The first output of `filter` on `input`, as JSON (none on an error or no output).
fn first(filter: &Filter, input: &Value) -> Option<Value> {
    let input: Val = serde_json::from_value(input.clone()).ok()?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let out = filter.id.run((ctx, input)).map(unwrap_valr).next()?.ok()?;
    serde_json::from_str(&out.to_string()).ok()
}

/// `object` without what `del(expression)` deletes (unchanged when it errs or is invalid).
pub fn delete(object: &mut Value, expression: &str) {
    let Ok(filter) = filter(format!("del({expression})"), expression) else {
        return;
    };
    if let Some(out) = first(&filter, object).filter(Value::is_object) {
        *object = out;
    }
}

/// The fields `expression` names in `object`, as JSON pointers (deepest and last first, so
/// list elements can be removed in order).
pub fn pointers(object: &Value, expression: &str) -> Vec<String> {
    let Ok(filter) = filter(format!("[path({expression})]"), expression) else {
        return Vec::new();
    };
    let Some(Value::Array(paths)) = first(&filter, object) else {
        return Vec::new();
    };
    let mut paths: Vec<Vec<Value>> = paths
        .into_iter()
        .filter_map(|p| match p {
            Value::Array(parts) if !parts.is_empty() => Some(parts),
            _ => None,
        })
        .collect();
    paths.sort_by(|a, b| order(b, a));
    paths
        .iter()
        .map(|parts| {
            parts
                .iter()
                .map(|part| match part {
                    Value::String(s) => format!("/{}", s.replace('~', "~0").replace('/', "~1")),
                    other => format!("/{other}"),
                })
                .collect()
        })
        .collect()
}

/// Paths compared part by part, numbers as numbers.
fn order(a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.to_string().cmp(&y.to_string()),
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "proxy:9"}]}}}})
    }

    #[test]
    fn delete_removes_what_the_expression_selects() {
        let mut d = deployment();
        delete(
            &mut d,
            r#".spec.template.spec.containers[] | select(.name == "sidecar") | .image"#,
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][1],
            json!({"name": "sidecar"})
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "web:1"
        );
        let mut d = deployment();
        delete(&mut d, ".spec.replicas");
        assert!(d["spec"].get("replicas").is_none());
    }

    #[test]
    fn a_missing_field_or_a_runtime_error_changes_nothing() {
        let mut d = deployment();
        delete(&mut d, ".metadata.labels.x");
        assert_eq!(d, deployment());
        delete(&mut d, ".spec.replicas | error(\"no\")");
        assert_eq!(d, deployment());
    }

    #[test]
    fn pointers_name_each_path_deepest_and_last_first() {
        let p = pointers(&deployment(), ".spec.template.spec.containers[].image");
        assert_eq!(
            p,
            [
                "/spec/template/spec/containers/1/image",
                "/spec/template/spec/containers/0/image"
            ]
        );
        assert_eq!(pointers(&deployment(), ".metadata"), ["/metadata"]);
    }

    #[test]
    fn invalid_expressions_are_reported() {
        assert!(check(".spec.replicas").is_ok());
        let e = check(".spec[").unwrap_err();
        assert_eq!(e.expression, ".spec[");
        assert!(
            check("nosuchfunction")
                .unwrap_err()
                .reason
                .contains("nosuchfunction")
        );
    }
}

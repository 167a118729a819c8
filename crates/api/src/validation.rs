//! Pure validation of sluice's kinds: every problem, each with its field path, in Kubernetes'
//! `field.Error` shape. The controller turns them into an `InvalidSpec` condition and
//! `sluice lint` prints them; both call the same functions, so they cannot disagree.
//!
//! Messages are Argo's where Argo has one (`pkg/apis/rollouts/validation`), so users searching
//! for an error find the same text.

mod analysis;
mod canary;
mod references;
mod rollout;

use std::fmt;

pub use analysis::{validate_analysis_run, validate_analysis_template, validate_experiment};
pub use references::{has_rule_with_service, validate_ingress, validate_service};
pub use rollout::validate_rollout;

/// What kind of problem a field has (Kubernetes' `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A required field is missing.
    Required,
    /// A field has a bad value.
    Invalid,
    /// A field must not be set here.
    Forbidden,
    /// A value appears twice where it must be unique.
    Duplicate,
    /// A value is not one of the supported ones.
    NotSupported,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid => "Invalid value",
            Self::Forbidden => "Forbidden",
            Self::Duplicate => "Duplicate value",
            Self::NotSupported => "Unsupported value",
        }
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, as Kubernetes writes it: `spec.strategy.canary.steps[0].setWeight`.
    pub path: String,
    /// What is wrong.
    pub kind: ErrorKind,
    /// The offending value, when it helps.
    pub value: Option<String>,
    /// Why.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind.as_str())?;
        if let Some(value) = &self.value {
            write!(f, ": {value}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A field path under construction.
#[derive(Debug, Clone)]
pub(crate) struct FieldPath(String);

impl FieldPath {
    pub(crate) fn new(root: &str) -> Self {
        Self(root.to_owned())
    }

    pub(crate) fn child(&self, name: &str) -> Self {
        Self(format!("{}.{name}", self.0))
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }
}

/// Collects problems as a validator walks an object.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, path: &FieldPath, kind: ErrorKind, value: Option<String>, message: &str) {
        self.0.push(FieldError {
            path: path.0.clone(),
            kind,
            value,
            message: message.to_owned(),
        });
    }

    pub(crate) fn required(&mut self, path: &FieldPath, message: &str) {
        self.push(path, ErrorKind::Required, None, message);
    }

    pub(crate) fn invalid(&mut self, path: &FieldPath, value: impl fmt::Display, message: &str) {
        self.push(path, ErrorKind::Invalid, Some(value.to_string()), message);
    }

    pub(crate) fn forbidden(&mut self, path: &FieldPath, message: &str) {
        self.push(path, ErrorKind::Forbidden, None, message);
    }

    pub(crate) fn duplicate(&mut self, path: &FieldPath, value: impl fmt::Display) {
        self.push(
            path,
            ErrorKind::Duplicate,
            Some(value.to_string()),
            "must be unique",
        );
    }

    pub(crate) fn not_supported(
        &mut self,
        path: &FieldPath,
        value: impl fmt::Display,
        supported: &[&str],
    ) {
        let message = format!("supported values: {}", supported.join(", "));
        self.push(
            path,
            ErrorKind::NotSupported,
            Some(value.to_string()),
            &message,
        );
    }

    /// `value` must be zero or more.
    pub(crate) fn non_negative(&mut self, path: &FieldPath, value: Option<i32>) {
        if let Some(v) = value.filter(|v| *v < 0) {
            self.invalid(path, v, "must be greater than or equal to 0");
        }
    }

    /// A string field limited to a few values.
    pub(crate) fn one_of(&mut self, path: &FieldPath, value: Option<&str>, supported: &[&str]) {
        if let Some(v) = value.filter(|v| !supported.contains(v)) {
            self.not_supported(path, format!("{v:?}"), supported);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

#[cfg(test)]
mod tests;

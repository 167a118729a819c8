//! The AnalysisRun controller, built as DESIGN §5 says: observe → pure plan → apply.
//!
//! - From templates to a run ([`templates`]: nested templates, merged metrics and arguments —
//!   what the Rollout controller's analysis gates and `sluice create analysisrun` call);
//! - a run's arguments ([`args`]: values, Secrets, field references, `{{args.x}}`, redaction)
//!   and its metrics made ready to measure ([`prepare`]: Argo's runtime validation, dry-run
//!   and retention rules);
//! - the pure core with `now` a parameter: when measurements are due ([`schedule`]), how
//!   metrics and the run are judged ([`assess`]), one pass as plan → measure → record
//!   ([`plan`]);
//! - the metric providers behind one trait ([`provider`]: [`provider::web`],
//!   [`provider::job`], [`provider::prometheus`]);
//! - around them: the status write and events ([`apply`]), the wiring ([`controller`]) and the
//!   metrics ([`metrics`]).
//!
//! Conditions are evaluated by `sluice-expr`; what every controller shares (informers,
//! expectations, events, back-off) lives in `sluice-reconcile`.

pub mod apply;
pub mod args;
pub mod assess;
pub mod controller;
pub mod metrics;
pub mod plan;
pub mod prepare;
pub mod provider;
pub mod schedule;
pub mod templates;

pub use templates::{Catalog, RunOptions, TemplateError, run_from_templates};

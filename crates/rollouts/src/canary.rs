//! The canary planner (not wired yet: the controller leaves canary Rollouts alone until it is).

use crate::{model::CanaryObserved, plan::Stage, planner::Planner};

/// Plans `stage` of a canary Rollout.
pub fn plan_stage(_planner: &mut Planner<'_>, _canary: &CanaryObserved<'_>, _stage: Stage<'_>) {}

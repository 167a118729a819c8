//! The analysis gate both planners call before a step that analysis guards: blue-green's
//! pre- and post-promotion analysis, canary `analysis` steps and background analysis. Pure.
//!
//! sluice has no AnalysisRun controller yet, so a gate with analysis holds — the Rollout stays
//! Progressing before it with a message naming it — and is never skipped. A fast rollback and
//! `promote --full` pass every gate, as in Argo.

use sluice_api::RolloutAnalysis;

/// Whether the Rollout may pass a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Nothing to wait for.
    Open,
    /// Hold before the gate; Argo's Progressing message, saying why.
    Hold(String),
}

/// Where a gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// Blue-green, before the active Service switches.
    PrePromotion,
    /// Blue-green, after it switched.
    PostPromotion,
    /// A canary `analysis` step.
    Step,
}

/// The gate for `analysis` (`None`: the spec has none), unless the update skips gates
/// (`skip`: a fast rollback or `promote --full`).
pub fn analysis_gate(analysis: Option<&RolloutAnalysis>, kind: GateKind, skip: bool) -> Gate {
    if analysis.is_none() || skip {
        return Gate::Open;
    }
    Gate::Hold(match kind {
        GateKind::PrePromotion => "waiting for analysis to complete: prePromotionAnalysis needs the analysis controller, which sluice does not have yet; not promoting".into(),
        GateKind::PostPromotion => "waiting for post-promotion verification to complete: postPromotionAnalysis needs the analysis controller, which sluice does not have yet".into(),
        GateKind::Step => "waiting for analysis to complete: the analysis step needs the analysis controller, which sluice does not have yet; not continuing".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_holds_until_there_is_a_controller_for_it_unless_skipped() {
        let analysis = RolloutAnalysis::default();
        assert_eq!(
            analysis_gate(None, GateKind::PrePromotion, false),
            Gate::Open
        );
        assert_eq!(
            analysis_gate(Some(&analysis), GateKind::Step, true),
            Gate::Open
        );
        for kind in [
            GateKind::PrePromotion,
            GateKind::PostPromotion,
            GateKind::Step,
        ] {
            let Gate::Hold(message) = analysis_gate(Some(&analysis), kind, false) else {
                panic!("{kind:?} held");
            };
            assert!(message.contains("analysis controller"), "{message}");
        }
    }
}

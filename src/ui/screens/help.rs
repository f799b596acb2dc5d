//! The help texts (assets/help/<step key>.md), one per step.

use crate::checklist::StepId;

/// What a step does and why, in the checklist's own words.
pub fn help_text(step: StepId) -> &'static str {
    match step {
        StepId::Plan => include_str!("../../../assets/help/plan.md"),
        StepId::Confirmations => include_str!("../../../assets/help/confirmations.md"),
        StepId::ConnectedUsers => include_str!("../../../assets/help/connected_users.md"),
        StepId::DiskSpace => include_str!("../../../assets/help/disk_space.md"),
        StepId::Fingerprint => include_str!("../../../assets/help/fingerprint.md"),
        StepId::Clone => include_str!("../../../assets/help/clone.md"),
        StepId::Backup => include_str!("../../../assets/help/backup.md"),
        StepId::Banner => include_str!("../../../assets/help/banner.md"),
        StepId::CloneUpgrade => include_str!("../../../assets/help/clone_upgrade.md"),
        StepId::SanityChecks => include_str!("../../../assets/help/sanity_checks.md"),
        StepId::CutOver => include_str!("../../../assets/help/cut_over.md"),
        StepId::ApplyFixups => include_str!("../../../assets/help/apply_fixups.md"),
        StepId::Restore => include_str!("../../../assets/help/restore.md"),
        StepId::Bootstrap => include_str!("../../../assets/help/bootstrap.md"),
    }
    .trim()
}

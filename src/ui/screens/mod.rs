//! One screen per step, found by its name. Each says what the step does and why (help texts in
//! assets/help), shows its live progress, and its result in detail. The final screen replaces
//! the step screens when the run is over.

mod apply_fixups;
mod backup;
mod banner;
mod bootstrap;
mod clone;
mod clone_upgrade;
mod confirmations;
mod connected_users;
mod cut_over;
mod disk_space;
mod fingerprint;
mod finished;
mod gauge;
mod plan;
mod restore;
mod sanity_checks;
mod step;
mod table;
pub(crate) mod text;

use ratatui::Frame;
use ratatui::layout::Rect;

use super::app::App;
use super::theme::Theme;
use crate::checklist::{StepId, StepView};

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if app.outcome.is_some() && app.viewing.is_none() {
        finished::render(f, area, app, theme);
    } else {
        step::render(f, area, app, app.shown_step(), theme);
    }
}

/// The body of a step's screen, below the part all steps share (`step.rs`).
fn body(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    if area.is_empty() {
        return;
    }
    let render = match view.id {
        StepId::Plan => plan::render,
        StepId::Confirmations => confirmations::render,
        StepId::ConnectedUsers => connected_users::render,
        StepId::DiskSpace => disk_space::render,
        StepId::Fingerprint => fingerprint::render,
        StepId::Clone => clone::render,
        StepId::Backup => backup::render,
        StepId::Banner => banner::render,
        StepId::CloneUpgrade => clone_upgrade::render,
        StepId::SanityChecks => sanity_checks::render,
        StepId::CutOver => cut_over::render,
        StepId::ApplyFixups => apply_fixups::render,
        StepId::Restore => restore::render,
        StepId::Bootstrap => bootstrap::render,
    };
    render(f, area, app, view, theme);
}

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

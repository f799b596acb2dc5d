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
mod help;
mod here;
mod plan;
mod restore;
mod sanity_checks;
mod step;
mod table;
pub(crate) mod text;

use ratatui::Frame;
use ratatui::layout::Rect;

pub use help::help_text;

use super::app::App;
use super::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if app.outcome.is_some() && app.viewing.is_none() {
        finished::render(f, area, app, theme);
    } else {
        step::render(f, area, app, app.shown_step(), theme);
    }
}

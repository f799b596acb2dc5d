//! Bootstrap: a new database made at a version from the bundle's baseline and steps.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::running_here;
use super::text::{Item, render_items};
use crate::checklist::{StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match &view.output {
        Some(StepOutput::Bootstrapped { db, version }) => vec![
            Item::marked(
                "✓",
                theme.ok(),
                format!("Created \"{db}\" at version {version}."),
            ),
            Item::marked("✓", theme.ok(), "Its fingerprint matches the reference."),
        ],
        _ if running_here(app, view) => vec![Item::styled(
            "Running the baseline, then every step in order…",
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

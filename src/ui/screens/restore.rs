//! Restore: the backup restored into a new database, and whether its fingerprint is the one
//! recorded when the backup was taken.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::running_here;
use super::text::{Item, render_items};
use crate::checklist::{StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match &view.output {
        Some(StepOutput::Restored {
            db,
            fingerprint_matches,
        }) => {
            let (mark, style, fp) = match fingerprint_matches {
                Some(true) => (
                    "✓",
                    theme.ok(),
                    "Its schema matches the backup's fingerprint.",
                ),
                Some(false) => (
                    "✗",
                    theme.bad(),
                    "Its schema DIFFERS from the backup's fingerprint.",
                ),
                None => (
                    "?",
                    theme.warn(),
                    "The backup records no fingerprint to compare.",
                ),
            };
            vec![
                Item::marked("✓", theme.ok(), format!("Restored into \"{db}\".")),
                Item::marked(mark, style, fp),
            ]
        }
        _ if running_here(app, view) => vec![Item::styled(
            "pg_restore is filling the new database; existing ones are never touched.",
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

//! Fixups: the minor-version scripts applied in place, and those already recorded.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::running_here;
use super::text::{Item, render_items};
use crate::checklist::{StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match &view.output {
        Some(StepOutput::Fixups {
            applied,
            skipped,
            version,
        }) => {
            let mut items = vec![Item::plain(format!(
                "Now at version {version}: {} file(s) applied, {} already recorded.",
                applied.len(),
                skipped.len()
            ))];
            items.extend(
                applied
                    .iter()
                    .map(|a| Item::marked("✓", theme.ok(), a.clone())),
            );
            items.extend(
                skipped
                    .iter()
                    .map(|s| Item::marked("=", theme.dim(), format!("{s} (already recorded)"))),
            );
            items
        }
        _ if running_here(app, view) => vec![Item::styled(
            "Applying the fixups in place, each recorded with its checksum…",
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

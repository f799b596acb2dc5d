//! Banner: what users see when they log on during the downtime.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::running_here;
use super::text::{Item, render_items};
use crate::checklist::{StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match &view.output {
        Some(StepOutput::Banner {
            message: Some(message),
        }) => vec![
            Item::marked("✓", theme.ok(), "Users who log on now read:"),
            Item::styled(format!("“{message}”"), theme.title()).indented(2),
            Item::blank(),
            Item::styled(
                "It is set after the clone and the backup's snapshot: neither carries it. It is removed from the old database if the upgrade fails.",
                theme.dim(),
            ),
        ],
        Some(StepOutput::Banner { message: None }) => {
            vec![Item::marked("-", theme.dim(), "No banner was set.")]
        }
        _ if running_here(app, view) => vec![Item::styled(
            "Setting the logon banner (the previous one is kept, to put back)…",
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

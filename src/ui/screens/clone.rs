//! Clone: the copy of the frozen source the upgrade will work on, and what was carried over.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::running_here;
use super::text::{Item, render_items};
use crate::checklist::{StepOutput, StepView};
use crate::format;
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// Width of the labels column ("Carried ").
const LABEL: usize = 9;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match &view.output {
        Some(StepOutput::Cloned {
            db,
            source,
            size,
            how,
            carried,
        }) => {
            let carried = if carried.is_empty() {
                "nothing to carry".to_owned()
            } else {
                carried.join(", ")
            };
            vec![
                Item::marked(
                    "✓",
                    theme.ok(),
                    format!("\"{db}\" is a copy of \"{source}\"; \"{source}\" is unchanged."),
                ),
                field("Copied", &format!("{} ({how})", format::bytes(*size))),
                field("Carried", &carried),
            ]
        }
        _ if running_here(app, view) => vec![Item::styled(
            "CREATE DATABASE … TEMPLATE: the server copies the source while nobody is connected…",
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

fn field(label: &str, value: &str) -> Item {
    Item::labelled(format!("{label:<width$}", width = LABEL - 1), value)
}

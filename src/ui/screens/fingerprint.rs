//! Fingerprint: the schema matches the reference, or exactly which objects differ — added,
//! removed and changed lines styled, and marked `+ - ~` in the text itself.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::{question_here, running_here};
use super::text::{Item, ellipsize, render_items};
use crate::checklist::{Question, StepOutput, StepStatus, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let width = usize::from(area.width);
    let mut items = Vec::new();
    if let Some(Question::FingerprintMismatch { .. }) = question_here(app, view) {
        items.push(Item::styled(
            "Enter: go on anyway (recorded) · Esc: cancel",
            theme.warn(),
        ));
        items.push(Item::blank());
    }
    match &view.output {
        Some(StepOutput::Fingerprint {
            hash,
            matches,
            reference,
            diff,
        }) => {
            if view.status == StepStatus::Warning {
                items.push(Item::marked(
                    "!",
                    theme.warn(),
                    "You chose to proceed despite the difference; it is recorded in the report.",
                ));
            }
            let version = reference.map_or_else(|| "?".to_owned(), |v| v.to_string());
            if *matches {
                items.push(Item::marked(
                    "✓",
                    theme.ok(),
                    format!("The schema matches the reference for version {version}."),
                ));
            } else {
                items.push(
                    Item::marked(
                        "!",
                        theme.warn(),
                        format!("The schema differs from the reference for version {version}:"),
                    )
                    .style(theme.warn()),
                );
                items.extend(diff.lines().map(|l| diff_line(l, theme)));
            }
            let hash = ellipsize(&format!("sha256:{hash}"), width.saturating_sub(2));
            items.push(Item::styled(hash, theme.dim()).indented(2));
        }
        _ if running_here(app, view) => items.push(Item::styled(
            "Reading the schema's catalog and hashing it…",
            theme.dim(),
        )),
        _ => {}
    }
    render_items(f, area, &items, " (all in the report)", theme);
}

/// `  + added    column …` and friends, as `fingerprint::diff` writes them: the kind of
/// change is the mark, the object wraps under itself.
fn diff_line(line: &str, theme: &Theme) -> Item {
    let t = line.trim_start();
    let kinds = [
        ("+ added", theme.ok()),
        ("- removed", theme.bad()),
        ("~ changed", theme.warn()),
    ];
    for (mark, style) in kinds {
        if let Some(rest) = t.strip_prefix(mark) {
            return Item::marked(mark, style, rest.trim_start()).style(style);
        }
    }
    for label in ["expected:", "found:"] {
        if let Some(rest) = t.strip_prefix(label) {
            return Item::labelled(format!("{label:<9}"), rest.trim_start()).indented(4);
        }
    }
    Item::styled(t.to_owned(), theme.dim()).indented(2)
}

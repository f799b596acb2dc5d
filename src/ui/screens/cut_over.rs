//! Banner reset and cut-over: the operator's word before users move to the new database, and
//! afterwards where they are.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::{question_here, running_here};
use super::text::{Item, render_items};
use crate::checklist::{Question, StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let (old, new) = app
        .plan()
        .map(|p| (p.source_db.clone(), p.target_db.clone()))
        .unwrap_or_default();
    let items = match (question_here(app, view), &view.output) {
        (Some(Question::CutOver), _) => asking(&old, &new, theme),
        (
            _,
            Some(StepOutput::CutOver {
                new_db,
                old_db,
                old_open,
            }),
        ) => done(old_db, new_db, old_open.as_deref(), theme),
        (_, Some(StepOutput::Rehearsed { note, .. })) => vec![Item::plain(note.clone())],
        _ if running_here(app, view) => vec![Item::styled(
            format!("Removing the banner from \"{new}\", then pointing users at it…"),
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

fn asking(old: &str, new: &str, theme: &Theme) -> Vec<Item> {
    vec![
        Item::marked("✓", theme.ok(), "Every check passed."),
        Item::plain("After the cut-over:"),
        Item::marked("·", theme.dim(), format!("users will use \"{new}\"")),
        Item::marked(
            "·",
            theme.dim(),
            format!("\"{old}\" is kept, read-only and closed to users"),
        ),
        Item::blank(),
        Item::styled(
            format!("Enter: cut over (you type \"{new}\") · Esc: cancel, users stay on \"{old}\""),
            theme.warn(),
        ),
    ]
}

fn done(old: &str, new: &str, old_open: Option<&str>, theme: &Theme) -> Vec<Item> {
    let (mark, style) = match old_open {
        None => ("✓", theme.ok()),
        Some(_) => ("!", theme.warn()),
    };
    vec![
        Item::marked("✓", theme.ok(), format!("Users now use \"{new}\".")),
        Item::marked(
            mark,
            style,
            crate::checklist::old_database_sentence(old, old_open),
        ),
        Item::marked(
            "✓",
            theme.ok(),
            "The banner is removed; access is as it was.",
        ),
    ]
}

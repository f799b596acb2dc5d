//! The part every step's screen shares: its title and place in the checklist, its status, what
//! it does (the help text's first sentence), an error or note, and the live progress gauge
//! (`gauge.rs`). The step-specific body below is drawn by the step's own screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::help::help_text;
use super::here::question_here;
use super::text::{Item, ellipsize, height_of, render_items, wrap_at_most};
use crate::checklist::{Phase, StepId, StepOutput, StepStatus, StepView};
use crate::format;
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, index: usize, theme: &Theme) {
    let Some(view) = app.checklist.steps.get(index) else {
        return;
    };
    if area.is_empty() {
        return;
    }
    let head = head_items(app, index, view, theme, area);
    let gauge = super::gauge::rows(app, view);
    let [title, head_area, gauge_area, _, body_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(height_of(&head, area.width)),
        Constraint::Length(gauge),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(area);
    render_title(f, title, app, index, view, theme);
    render_items(f, head_area, &head, "", theme);
    if gauge > 0 {
        super::gauge::render(f, gauge_area, app, theme);
    }
    body(f, body_area, app, view, theme);
}

fn render_title(
    f: &mut Frame,
    area: Rect,
    app: &App,
    index: usize,
    view: &StepView,
    theme: &Theme,
) {
    let place = format!("step {} of {}", index + 1, app.checklist.steps.len());
    let room = usize::from(area.width).saturating_sub(place.len() + 1);
    let title = ellipsize(view.id.title(), room);
    let gap = usize::from(area.width).saturating_sub(title.chars().count() + place.len());
    let line = Line::from(vec![
        Span::styled(title, theme.title()),
        Span::raw(" ".repeat(gap)),
        Span::styled(place, theme.dim()),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn head_items(app: &App, index: usize, view: &StepView, theme: &Theme, area: Rect) -> Vec<Item> {
    let width = usize::from(area.width);
    let mut items = Vec::new();
    if let Some(note) = browsing_note(app, index) {
        items.push(Item::styled(note, theme.warn()));
    }
    items.push(status_item(app, index, view, theme));
    // The question explains itself: on a small screen it gets the room.
    let summary_rows = match (area.height >= 20, question_here(app, view).is_some()) {
        (true, _) => 3,
        (false, false) => 2,
        (false, true) => 1,
    };
    items.extend(
        wrap_at_most(&summary(help_text(view.id)), width, summary_rows)
            .into_iter()
            .map(|row| Item::styled(row, theme.dim())),
    );
    if let Some(e) = &view.error {
        items.extend(error_items(e, width, theme));
    }
    match &view.note {
        // A step going on in the background: what it does, not a warning.
        Some(n) if view.status == StepStatus::Running => {
            let (mark, style) = match view.background_took {
                Some(_) => ("✓", theme.ok()),
                None => ("▶", theme.running()),
            };
            items.push(Item::marked(mark, style, n.clone()));
        }
        Some(n) => items.push(Item::marked("!", theme.warn(), n.clone())),
        None => {}
    }
    if let Some(StepOutput::Nothing { note }) = &view.output
        && !note.is_empty()
    {
        items.push(Item::marked("!", theme.warn(), note.clone()));
    }
    items
}

/// The error's lines (a SQL error, then the statement), at most five rows in all.
fn error_items(error: &str, width: usize, theme: &Theme) -> Vec<Item> {
    let mut left: usize = 5;
    let mut items = Vec::new();
    for (i, line) in error.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        if left == 0 {
            break;
        }
        let rows = wrap_at_most(line.trim(), width.saturating_sub(2), left);
        left -= rows.len();
        let text = rows.join(" ");
        items.push(if i == 0 {
            Item::marked("✗", theme.bad(), text).style(theme.bad())
        } else {
            Item::styled(text, theme.normal()).indented(2)
        });
    }
    items
}

/// While the operator looks at another step than the one the run is at.
fn browsing_note(app: &App, index: usize) -> Option<String> {
    app.viewing?;
    let at = app.checklist.current().filter(|c| *c != index)?;
    let title = app.checklist.steps.get(at)?.id.title();
    let key = if at > index { "→" } else { "←" };
    Some(format!(
        "The run is at step {}, {title} ({key} goes there)",
        at + 1
    ))
}

/// The help text's first sentence, without the "Title — " it starts with (? shows it all).
fn summary(help: &str) -> String {
    let body = help.split_once(" — ").map_or(help, |(_, b)| b);
    let first = body.split_inclusive(". ").next().unwrap_or(body).trim();
    let mut s = first.to_owned();
    // "pg_dump …" stays as the command is spelled.
    let word = s.split(' ').next().unwrap_or_default();
    if !word.contains(['_', '-', '.', '/'])
        && let Some(c) = s.get(..1)
    {
        s.replace_range(..1, &c.to_uppercase());
    }
    s
}

fn status_item(app: &App, index: usize, view: &StepView, theme: &Theme) -> Item {
    let undoing =
        matches!(&app.checklist.phase, Phase::Undoing { step: Some(i), .. } if *i == index);
    let (mark, style, word) = match view.status {
        StepStatus::Pending => ("·", theme.dim(), "not started yet"),
        StepStatus::Running if question_here(app, view).is_some() => {
            ("?", theme.warn(), "waiting for you")
        }
        StepStatus::Running if app.checklist.cancel_was_requested() => {
            ("▶", theme.warn(), "stopping at the next safe point")
        }
        StepStatus::Running if view.background_took.is_some() => {
            ("✓", theme.ok(), "finished alongside")
        }
        StepStatus::Running => ("▶", theme.running(), "running"),
        StepStatus::Done => ("✓", theme.ok(), "done"),
        StepStatus::Warning => ("!", theme.warn(), "done, with a warning"),
        StepStatus::Failed if undoing => ("✗", theme.bad(), "failed · undoing the run's changes…"),
        StepStatus::Failed => ("✗", theme.bad(), "FAILED"),
        StepStatus::Skipped => ("-", theme.dim(), "skipped"),
    };
    let text = match app.step_elapsed(index) {
        Some(t) => format!("{word} · {}", format::duration(t)),
        None => word.to_owned(),
    };
    Item::marked(mark, style, text).style(style)
}

/// The body of a step's screen, below the part all steps share (above).
fn body(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    if area.is_empty() {
        return;
    }
    let render = match view.id {
        StepId::Plan => super::plan::render,
        StepId::Confirmations => super::confirmations::render,
        StepId::ConnectedUsers => super::connected_users::render,
        StepId::DiskSpace => super::disk_space::render,
        StepId::Fingerprint => super::fingerprint::render,
        StepId::Clone => super::clone::render,
        StepId::Backup => super::backup::render,
        StepId::Banner => super::banner::render,
        StepId::CloneUpgrade => super::clone_upgrade::render,
        StepId::SanityChecks => super::sanity_checks::render,
        StepId::CutOver => super::cut_over::render,
        StepId::ApplyFixups => super::apply_fixups::render,
        StepId::Restore => super::restore::render,
        StepId::Bootstrap => super::bootstrap::render,
    };
    render(f, area, app, view, theme);
}

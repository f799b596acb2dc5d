//! Clone and upgrade: while it runs, the plan's steps with the one running marked and the
//! script it is in (the statements gauge above counts that script's statements); when done,
//! each step with its scripts, statements and seconds.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Row, Table};

use super::here::running_here;
use super::text::{Item, ellipsize_start, height_of, render_items};
use crate::checklist::StepReport;
use crate::checklist::{StepOutput, StepStatus, StepView};
use crate::format;
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    match &view.output {
        Some(StepOutput::Upgraded(steps)) => done(f, area, app, steps, theme),
        _ if running_here(app, view) => {
            let items = where_it_is(app, area.width, false, theme);
            render_items(f, area, &items, "", theme);
        }
        _ if view.status == StepStatus::Failed => {
            let items = where_it_is(app, area.width, true, theme);
            render_items(f, area, &items, "", theme);
        }
        _ => render_items(f, area, &planned(app, theme), "", theme),
    }
}

/// The newest log line that starts with `prefix`, without it.
fn last_log<'a>(app: &'a App, prefix: &str) -> Option<&'a str> {
    app.log
        .iter()
        .rev()
        .find_map(|l| l.text.strip_prefix(prefix))
}

/// The plan's steps, those done ✓, the one running ▶ (or failed ✗), and the script it is in.
fn where_it_is(app: &App, width: u16, failed: bool, theme: &Theme) -> Vec<Item> {
    // The engine announces each step as a phase ("-- step 1 → 2") and each file ("running …").
    let phase = last_log(app, "-- step ").map(|p| format!("step {p}:"));
    let lines = app.plan().map(|p| p.lines.clone()).unwrap_or_default();
    let at = phase
        .as_ref()
        .and_then(|p| lines.iter().position(|l| l.starts_with(p.as_str())));
    let (here, here_style) = if failed {
        ("✗", theme.bad())
    } else {
        ("▶", theme.running())
    };
    let mut items = vec![match at {
        None => Item::marked(
            here,
            here_style,
            "copying the database (the original is never modified)",
        ),
        Some(_) => Item::marked(
            "✓",
            theme.ok(),
            "working on the clone (the original is never modified)",
        ),
    }];
    for (i, line) in lines.iter().enumerate() {
        items.push(match at {
            Some(a) if i < a => Item::marked("✓", theme.ok(), line.clone()),
            Some(a) if i == a => Item::marked(here, here_style, line.clone()).style(here_style),
            _ => Item::marked("·", theme.dim(), line.clone()).style(theme.dim()),
        });
    }
    if let (Some(_), Some(script)) = (at, last_log(app, "running ")) {
        let room = usize::from(width).saturating_sub(4 + 7);
        items.push(Item::labelled("script".into(), ellipsize_start(script, room)).indented(2));
    }
    items
}

fn planned(app: &App, theme: &Theme) -> Vec<Item> {
    app.plan()
        .map(|p| {
            p.lines
                .iter()
                .map(|l| Item::marked("·", theme.dim(), l.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn done(f: &mut Frame, area: Rect, app: &App, steps: &[StepReport], theme: &Theme) {
    let head = match (app.plan(), steps.last()) {
        (Some(p), Some(last)) => vec![Item::marked(
            "✓",
            theme.ok(),
            format!(
                "\"{}\" is at version {}; \"{}\" was not modified.",
                p.target_db, last.to, p.source_db
            ),
        )],
        _ => Vec::new(),
    };
    let skipped: u64 = steps.iter().map(|s| s.skipped_blocks).sum();
    let head = if skipped > 0 {
        let mut head = head;
        head.push(Item::marked(
            "·",
            theme.dim(),
            format!("{skipped} conditional block(s) skipped: their change was already there"),
        ));
        head
    } else {
        head
    };
    let [head_area, table_area] = Layout::vertical([
        Constraint::Length(height_of(&head, area.width) + 1),
        Constraint::Fill(1),
    ])
    .areas(area);
    render_items(f, head_area, &head, "", theme);
    let rows = steps.iter().map(|s| {
        Row::new([
            format!("✓ {} → {}", s.from, s.to),
            s.scripts.to_string(),
            s.statements.to_string(),
            format::duration(s.elapsed),
        ])
        .style(theme.normal())
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(["step", "scripts", "statements", "time"]).style(theme.dim()))
    .column_spacing(1);
    f.render_widget(table, table_area);
}

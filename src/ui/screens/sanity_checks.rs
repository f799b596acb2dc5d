//! Sanity checks: how many passed, then a table of them — ✓ / ✗, name, the detail's first line —
//! with the failed ones first, so that a long list never hides a failure below the fold.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Row, Table};

use super::here::running_here;
use super::text::{Item, ellipsize, height_of, render_items, verdict};
use crate::checklist::CheckResult;
use crate::checklist::{StepOutput, StepStatus, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    match &view.output {
        Some(StepOutput::Checks(checks)) => table(f, area, checks, theme),
        _ if running_here(app, view) => render_items(
            f,
            area,
            &[Item::styled(
                "Comparing the clone with the reference and the original; each result appears in the log.",
                theme.dim(),
            )],
            "",
            theme,
        ),
        _ if view.status == StepStatus::Failed => {
            let items = from_log(app, theme);
            render_items(f, area, &items, " (PgUp scrolls the log)", theme);
        }
        _ => {}
    }
}

/// A failed step hands back no table (only its error): the results are read from the log,
/// where each check was reported as "[ok] name: detail" or "[FAILED] name: detail".
fn from_log(app: &App, theme: &Theme) -> Vec<Item> {
    let mut failed = Vec::new();
    let mut passed = Vec::new();
    for line in &app.log {
        if let Some(rest) = line.text.strip_prefix("[FAILED] ") {
            failed.push(Item::marked("✗", theme.bad(), rest.to_owned()).style(theme.bad()));
        } else if let Some(rest) = line.text.strip_prefix("[ok] ") {
            passed.push(Item::marked("✓", theme.ok(), rest.to_owned()));
        }
    }
    if failed.is_empty() && passed.is_empty() {
        return Vec::new();
    }
    let mut items = vec![Item::plain(format!(
        "{} failed, {} passed:",
        failed.len(),
        passed.len()
    ))];
    items.extend(failed);
    items.extend(passed);
    items
}

/// "All 12 checks passed." or "2 of 12 checks FAILED (listed first)."
fn headline(checks: &[CheckResult], theme: &Theme) -> Item {
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        Item::marked(
            "✓",
            theme.ok(),
            format!("All {} checks passed.", checks.len()),
        )
    } else {
        Item::marked(
            "✗",
            theme.bad(),
            format!("{failed} of {} checks FAILED (listed first).", checks.len()),
        )
        .style(theme.bad())
    }
}

/// The last row when the checks do not all fit: how many more, and whether any failed.
fn more_row<'a>(hidden: &[&CheckResult], room: usize, theme: &Theme) -> Row<'a> {
    let bad = hidden.iter().filter(|c| !c.ok).count();
    let note = if bad == 0 {
        format!("… {} more, all passed (see the report)", hidden.len())
    } else {
        format!("… {} more, {bad} FAILED (see the report)", hidden.len())
    };
    let note = Cell::new(ellipsize(&note, room)).column_span(2);
    Row::new([Cell::new(""), note]).style(theme.dim())
}

fn table(f: &mut Frame, area: Rect, checks: &[CheckResult], theme: &Theme) {
    let head = vec![headline(checks, theme)];
    let [head_area, table_area] = Layout::vertical([
        Constraint::Length(height_of(&head, area.width)),
        Constraint::Fill(1),
    ])
    .areas(area);
    render_items(f, head_area, &head, "", theme);
    if table_area.is_empty() {
        return;
    }
    let mut sorted: Vec<&CheckResult> = checks.iter().collect();
    sorted.sort_by_key(|c| c.ok);
    let room = usize::from(table_area.width).saturating_sub(4);
    let longest = sorted
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4);
    let name_w = longest.min(room * 3 / 5).max(4);
    let detail_w = room.saturating_sub(name_w);
    let fits = usize::from(table_area.height).saturating_sub(1);
    let cut = sorted.len() > fits;
    let shown = if cut {
        fits.saturating_sub(1)
    } else {
        sorted.len()
    };
    let mut rows: Vec<Row> = sorted[..shown]
        .iter()
        .map(|c| row(c, name_w, detail_w, theme))
        .collect();
    if cut {
        rows.push(more_row(&sorted[shown..], room, theme));
    }
    let widths = [
        Constraint::Length(1),
        Constraint::Length(u16::try_from(name_w).unwrap_or(0)),
        Constraint::Length(u16::try_from(detail_w).unwrap_or(0)),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(["", "check", "detail"]).style(theme.dim()))
        .column_spacing(1);
    f.render_widget(table, table_area);
}

fn row<'a>(c: &CheckResult, name_w: usize, detail_w: usize, theme: &Theme) -> Row<'a> {
    let (mark, style) = verdict(Some(c.ok), theme);
    let detail = c.detail.lines().next().unwrap_or_default();
    Row::new([
        Cell::new(mark).style(style),
        Cell::new(ellipsize(&c.name, name_w)),
        Cell::new(ellipsize(detail, detail_w)),
    ])
}

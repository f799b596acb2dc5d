//! Plan: which server, which databases, from which version to which, and what will run. The
//! labels line up so that a tired eye finds the database names at once.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::text::{Item, ellipsize_start, render_items};
use crate::checklist::{PlanKind, PlanSummary, StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// Width of the labels column ("Database  ").
const LABEL: usize = 10;
/// From this width of the step pane on (a 120-column terminal), the backup says why.
const WIDE: usize = 70;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match &view.output {
        Some(StepOutput::Plan(p)) => plan_items(app.checklist.kind, p, usize::from(area.width)),
        _ if super::here::running_here(app, view) => vec![Item::styled(
            "Reading the version marker and the bundle; nothing is changed yet.",
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

fn plan_items(kind: PlanKind, p: &PlanSummary, width: usize) -> Vec<Item> {
    let mut items = vec![field("Server", &p.server)];
    items.extend(databases(kind, p));
    items.push(field("Version", &format!("{} → {}", p.from, p.to)));
    items.push(field("Bundle", &p.application));
    for (i, line) in p.lines.iter().enumerate() {
        let label = if i == 0 { "Steps" } else { "" };
        items.push(field(label, line.strip_prefix("step ").unwrap_or(line)));
    }
    if let Some(backup) = &p.backup {
        // The reason is in the log; on a wide screen it fits here too.
        let text = if width >= WIDE {
            format!("{}: {}", backup.format, backup.why)
        } else {
            backup.format.clone()
        };
        items.push(field("Backup", &text));
    }
    if let Some(journal) = &p.journal {
        let room = width.saturating_sub(LABEL);
        items.push(field("Journal", &ellipsize_start(journal, room)));
    }
    items
}

fn databases(kind: PlanKind, p: &PlanSummary) -> Vec<Item> {
    match kind {
        PlanKind::Upgrade => vec![
            field("Database", &format!("\"{}\" (stays as it is)", p.source_db)),
            field("New", &format!("\"{}\"", p.target_db)),
        ],
        PlanKind::Fixup => vec![field(
            "Database",
            &format!("\"{}\" (fixups in place)", p.target_db),
        )],
        PlanKind::Restore => vec![
            field("Backup", &p.source_db),
            field("Into", &format!("\"{}\" (new)", p.target_db)),
        ],
        PlanKind::Bootstrap => vec![field("New", &format!("\"{}\"", p.target_db))],
        PlanKind::Rehearsal => vec![
            field(
                "Database",
                &format!("\"{}\" (users see nothing)", p.source_db),
            ),
            field("Copy", "a throw-away copy, dropped at the end"),
        ],
    }
}

/// "Server    localhost:5432", the value wrapping under itself.
fn field(label: &str, value: &str) -> Item {
    Item::labelled(format!("{label:<width$}", width = LABEL - 1), value)
}

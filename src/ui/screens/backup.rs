//! Backup: the file, its size, checksum and archive entries — or, when the operator chose to go
//! without one, the reason they recorded.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::here::running_here;
use super::text::{Item, render_items};
use crate::checklist::{BackupOutput, StepOutput, StepStatus, StepView};
use crate::format;
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// Width of the labels column ("Checksum ").
const LABEL: usize = 9;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match &view.output {
        Some(StepOutput::Backup(BackupOutput::Taken {
            path,
            size,
            sha256,
            entries,
        })) => vec![
            Item::marked("✓", theme.ok(), "Backup taken, verified and checksummed."),
            field("File", path),
            field("Size", &format::bytes(*size)),
            field(
                "Entries",
                &format!("{entries}, listed by pg_restore --list"),
            ),
            field("sha256", sha256),
            Item::styled(
                "Its metadata file lies beside it; pgstep restore brings it back.",
                theme.dim(),
            ),
        ],
        Some(StepOutput::Backup(BackupOutput::Skipped { reason, bytes_read })) => vec![
            Item::marked("!", theme.warn(), "No backup was taken.").style(theme.warn()),
            field("Reason", reason),
            field(
                "Instead",
                &format!(
                    "the database was read once ({}) to find damaged pages",
                    format::bytes(*bytes_read)
                ),
            ),
        ],
        _ if running_here(app, view) => vec![Item::styled(
            "pg_dump is writing the backup; it is verified and checksummed next.",
            theme.dim(),
        )],
        None if view.status == StepStatus::Running => vec![Item::styled(
            "It holds the source as users left it: pg_dump reads a snapshot taken before the logon banner was set.",
            theme.dim(),
        )],
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

fn field(label: &str, value: &str) -> Item {
    Item::labelled(format!("{label:<width$}", width = LABEL - 1), value)
}

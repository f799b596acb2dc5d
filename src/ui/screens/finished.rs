//! The last screen. Success: the new version, a timeline of the step durations, the backup and
//! the report. Failure: what failed (file, line, SQL error), what pgstep undid, what to do next.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph, Wrap};

use crate::checklist::{BackupOutput, Outcome, StepId, StepOutput};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    match &app.outcome {
        Some(Outcome::Success) => success(f, area, app, theme),
        Some(Outcome::Failed {
            step,
            what,
            undone,
            advice,
            cancelled,
            refused,
            ..
        }) => {
            let title = match (cancelled, refused) {
                (true, _) => "Cancelled",
                (_, true) => "Stopped: a check or guard said no",
                _ => "Failed",
            };
            let mut lines = vec![Line::from(Span::styled(title, theme.bad())), Line::raw("")];
            if let Some(s) = step {
                lines.push(Line::raw(format!("At step: {}", s.title())));
            }
            lines.extend(what.lines().map(|l| Line::raw(l.to_owned())));
            lines.push(Line::raw(""));
            if undone.is_empty() {
                lines.push(Line::raw("Nothing needed undoing."));
            } else {
                lines.push(Line::from(Span::styled("What pgstep undid:", theme.ok())));
                lines.extend(undone.iter().map(|u| Line::raw(format!("  ✓ {u}"))));
            }
            for a in advice {
                lines.push(Line::from(Span::styled(a.clone(), theme.warn())));
            }
            lines.push(Line::raw(""));
            if app.checklist.kind == crate::checklist::PlanKind::Upgrade {
                lines.push(Line::raw("The source database was not changed: users can go on working with it as before."));
            }
            lines.push(Line::raw(
                "Next: fix the problem named above, rehearse on a test server, then try again.",
            ));
            if let Some(r) = &app.report {
                lines.push(Line::raw(format!("Report: {}", r.display())));
            }
            f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
        }
        None => {}
    }
}

fn success(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut lines = vec![];
    let output = |id| app.checklist.step(id).and_then(|s| s.output.clone());
    match (app.plan(), output(StepId::CutOver)) {
        (Some(p), Some(StepOutput::CutOver { new_db, old_db })) => {
            lines.push(Line::from(Span::styled(
                format!("Upgraded to version {}: users now use \"{new_db}\"", p.to),
                theme.ok(),
            )));
            lines.push(Line::raw(format!(
                "\"{old_db}\" (version {}) is kept read-only and closed to users.",
                p.from
            )));
        }
        (Some(p), _) => lines.push(Line::from(Span::styled(
            format!("Done: \"{}\" at version {}", p.target_db, p.to),
            theme.ok(),
        ))),
        _ => lines.push(Line::from(Span::styled("Done.", theme.ok()))),
    }
    if let Some(StepOutput::Backup(BackupOutput::Taken { path, sha256, .. })) =
        output(StepId::Backup)
    {
        lines.push(Line::raw(format!(
            "Backup: {path} (sha256 {})",
            &sha256[..16.min(sha256.len())]
        )));
    }
    if let Some(r) = &app.report {
        lines.push(Line::raw(format!("Report: {}", r.display())));
    }
    lines.push(Line::raw(
        "Next: point clients, importers and backup jobs to the new database, then restart them.",
    ));
    let [text, chart] = Layout::vertical([Constraint::Length(9), Constraint::Min(5)]).areas(area);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text);
    f.render_widget(timeline(app, theme), chart);
}

/// The step durations as horizontal bars, in tenths of a second.
fn timeline<'a>(app: &'a App, theme: &Theme) -> BarChart<'a> {
    let bars: Vec<Bar> = app
        .checklist
        .steps
        .iter()
        .filter_map(|s| {
            let d = s.elapsed?;
            let tenths = u64::try_from(d.as_millis() / 100).unwrap_or(u64::MAX);
            Some(
                Bar::default()
                    .value(tenths)
                    .label(Line::raw(s.id.title()))
                    .text_value(format!("{:.1}s", d.as_secs_f64())),
            )
        })
        .collect();
    BarChart::default()
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title("Time per step"),
        )
        .direction(ratatui::layout::Direction::Horizontal)
        .bar_width(1)
        .bar_gap(0)
        .bar_style(theme.gauge())
        .data(BarGroup::default().bars(&bars))
}

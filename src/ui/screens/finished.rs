//! The last screen. Success: where users are now, the backup, the report, what to do next, and
//! the step times when there is room. Failure: what failed (file, line, SQL error), whether
//! users can go on with the old database, what pgstep undid and what is left to do by hand.
//! Items come in order of importance: a small terminal cuts the end, never the verdict.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text::{Item, ellipsize, height_of, render_items};
use crate::checklist::{BackupOutput, Outcome, PlanKind, SourceVerdict, StepId, StepOutput};
use crate::format;
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// Width of the labels column ("Report  ").
const LABEL: usize = 8;

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    match &app.outcome {
        Some(Outcome::Success) => success(f, area, app, theme),
        Some(failed) => {
            let items = failure(app, failed, theme);
            render_items(f, area, &items, " (PgUp scrolls the log)", theme);
        }
        None => {}
    }
}

fn output(app: &App, id: StepId) -> Option<&StepOutput> {
    app.checklist.step(id).and_then(|s| s.output.as_ref())
}

fn field(label: &str, value: &str) -> Item {
    Item::labelled(format!("{label:<width$}", width = LABEL - 1), value)
}

fn success(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut items = verdict(app, theme);
    match output(app, StepId::Backup) {
        // A rehearsal's backup was only for measuring: it is gone with the copy.
        _ if app.checklist.kind == PlanKind::Rehearsal => {}
        Some(StepOutput::Backup(BackupOutput::Taken { path, sha256, .. })) => {
            items.push(field("Backup", path));
            let sum = format!("sha256 {}", &sha256[..16.min(sha256.len())]);
            items.push(field("", &format!("{sum}…")));
        }
        Some(StepOutput::Backup(BackupOutput::Skipped { .. })) => items.push(Item::marked(
            "!",
            theme.warn(),
            "No backup was taken (the reason is in the report).",
        )),
        _ => {}
    }
    if let Some(r) = &app.report {
        items.push(field("Report", &r.display().to_string()));
    }
    if let Some(next) = next_step(app) {
        items.push(field("Next", &next));
    }
    let text_h = height_of(&items, area.width);
    let chart = timeline(app, theme);
    let room = area.height.saturating_sub(text_h + 1);
    if u16::try_from(chart.len()).unwrap_or(u16::MAX) <= room {
        let [text, _, chart_area] = Layout::vertical([
            Constraint::Length(text_h),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(area);
        render_items(f, text, &items, "", theme);
        let width = usize::from(chart_area.width);
        let lines: Vec<Line> = chart.into_iter().map(|l| fit(l, width)).collect();
        f.render_widget(Paragraph::new(lines), chart_area);
    } else {
        items.push(Item::styled(
            "Each step's time is beside it in the checklist.",
            theme.dim(),
        ));
        render_items(f, area, &items, "", theme);
    }
}

/// Where users are now.
fn verdict(app: &App, theme: &Theme) -> Vec<Item> {
    let ok = |text: String| Item::marked("✓", theme.ok(), text).style(theme.ok());
    match (app.plan(), output(app, StepId::CutOver)) {
        (
            _,
            Some(StepOutput::Rehearsed {
                downtime,
                problems,
                record,
                ..
            }),
        ) => rehearsed(*downtime, problems, record, theme),
        (
            Some(p),
            Some(StepOutput::CutOver {
                new_db,
                old_db,
                old_open,
            }),
        ) => vec![
            ok(format!(
                "Upgraded to version {}: users now use \"{new_db}\".",
                p.to
            )),
            match old_open {
                None => Item::marked(
                    "✓",
                    theme.ok(),
                    format!(
                        "\"{old_db}\" (version {}) is kept, read-only and closed to users.",
                        p.from
                    ),
                ),
                Some(why) => Item::marked(
                    "!",
                    theme.warn(),
                    crate::checklist::old_database_sentence(old_db, Some(why)),
                )
                .style(theme.warn()),
            },
        ],
        (Some(p), _) => vec![ok(format!(
            "Done: \"{}\" is at version {}.",
            p.target_db, p.to
        ))],
        _ => vec![ok("Done.".into())],
    }
}

/// What a rehearsal found: the downtime to expect, each problem, where the record is.
fn rehearsed(downtime: f64, problems: &[String], record: &str, theme: &Theme) -> Vec<Item> {
    let mut items = vec![
        Item::marked(
            "✓",
            theme.ok(),
            format!("Rehearsal done: about {downtime:.1} s of downtime to expect."),
        )
        .style(theme.ok()),
        Item::marked(
            "✓",
            theme.ok(),
            "Nothing users see was changed; the copy was dropped.",
        ),
    ];
    if problems.is_empty() {
        items.push(Item::marked("✓", theme.ok(), "No problem found."));
    } else {
        items.push(Item::marked(
            "!",
            theme.warn(),
            format!("{} problem(s) found for the real night:", problems.len()),
        ));
        for p in problems {
            let first = p.lines().next().unwrap_or_default();
            items.push(Item::marked("·", theme.warn(), first.to_owned()));
        }
    }
    items.push(field("Record", record));
    items
}

fn next_step(app: &App) -> Option<String> {
    let p = app.plan()?;
    Some(match app.checklist.kind {
        PlanKind::Upgrade => format!(
            "point clients, importers and backup jobs at \"{}\", then start them again.",
            p.target_db
        ),
        PlanKind::Fixup => "start importers and backup jobs again.".into(),
        PlanKind::Rehearsal => {
            "read the rehearsal's record; plan the downtime with its figures.".into()
        }
        PlanKind::Restore | PlanKind::Bootstrap => {
            format!("check \"{}\" with the application.", p.target_db)
        }
    })
}

/// Each step's time as a bar, longest = full width: "Clone and upgrade  3m00 ██████".
fn timeline(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let steps: Vec<(&str, Duration)> = app
        .checklist
        .steps
        .iter()
        .filter_map(|s| Some((s.id.title(), s.elapsed?)))
        .collect();
    let longest = steps.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let mut lines = vec![Line::from(Span::styled("Time per step", theme.title()))];
    for (title, d) in steps {
        let share = if longest.is_zero() {
            0.0
        } else {
            d.as_secs_f64() / longest.as_secs_f64()
        };
        let cells = (share * 20.0).ceil() as usize;
        lines.push(Line::from(vec![
            Span::raw(format!("{title:<25} {:>5} ", format::duration(d))),
            Span::styled("█".repeat(cells.max(1)), theme.gauge()),
        ]));
    }
    lines
}

/// A line cut to the width (the bars go first, then the names' ends).
fn fit(line: Line<'static>, width: usize) -> Line<'static> {
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    if text.chars().count() <= width {
        return line;
    }
    Line::raw(ellipsize(&text, width))
}

fn failure(app: &App, outcome: &Outcome, theme: &Theme) -> Vec<Item> {
    let Outcome::Failed {
        step,
        what,
        undone,
        advice,
        cancelled,
        refused,
        changed_anything,
        source,
        location: _,
    } = outcome
    else {
        return Vec::new();
    };
    let mut items = vec![failure_title(app, *step, *cancelled, *refused, theme)];
    if !cancelled {
        items.extend(
            what.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| Item::plain(l.trim().to_owned()).indented(2)),
        );
    }
    let still = crate::run_report::still_connected(&app.checklist, outcome);
    if !still.is_empty() {
        items.push(Item::plain(format!("Still connected ({}):", still.len())));
        items.extend(
            still
                .iter()
                .map(|s| Item::marked("·", theme.warn(), s.to_string()).indented(2)),
        );
    }
    items.extend(users(app, advice.is_empty(), source.as_ref(), theme));
    items.extend(
        advice
            .iter()
            .map(|a| Item::marked("!", theme.warn(), a.clone())),
    );
    items.extend(undone_items(undone, *changed_anything, theme));
    if let Some(r) = &app.report {
        items.push(field("Report", &r.display().to_string()));
    }
    if !cancelled {
        items.push(field(
            "Next",
            "fix the problem named above, rehearse on a test server, then try again.",
        ));
    }
    items
}

/// "Failed at step 6, Backup.", "Cancelled.", "Stopped at …: a check or a guard said no."
fn failure_title(
    app: &App,
    step: Option<StepId>,
    cancelled: bool,
    refused: bool,
    theme: &Theme,
) -> Item {
    let at = step
        .and_then(|id| {
            let i = app.checklist.steps.iter().position(|s| s.id == id)?;
            Some(format!(" at step {}, {}", i + 1, id.title()))
        })
        .unwrap_or_default();
    let title = match (cancelled, refused) {
        (true, _) => format!("Cancelled{at}."),
        (_, true) => format!("Stopped{at}: a check or a guard said no."),
        _ => format!("Failed{at}."),
    };
    Item::marked("✗", theme.bad(), title).style(theme.bad())
}

/// What pgstep undid, or that nothing had been changed.
fn undone_items(undone: &[String], changed_anything: bool, theme: &Theme) -> Vec<Item> {
    if !undone.is_empty() {
        let mut items = vec![Item::plain("What pgstep undid:")];
        items.extend(
            undone
                .iter()
                .map(|u| Item::marked("✓", theme.ok(), u.clone()).indented(2)),
        );
        items
    } else if !changed_anything {
        vec![Item::marked(
            "·",
            theme.dim(),
            "Nothing had been changed yet.",
        )]
    } else {
        Vec::new()
    }
}

/// Whether users can go on: only when everything was undone, and pgstep measured that the
/// source was not changed, can it say so.
fn users(app: &App, all_undone: bool, source: Option<&SourceVerdict>, theme: &Theme) -> Vec<Item> {
    let db = app.plan().map_or_else(
        || "the database".to_owned(),
        |p| format!("\"{}\"", p.source_db),
    );
    let checked = || {
        Item::plain("checked: no rows written, schema fingerprint unchanged")
            .style(theme.dim())
            .indented(2)
    };
    match (app.checklist.kind, all_undone, source) {
        (PlanKind::Upgrade, true, Some(SourceVerdict::Unchanged { .. })) => vec![
            Item::marked(
                "✓",
                theme.ok(),
                format!("{db} was not changed: users can go on working with it as before."),
            )
            .style(theme.ok()),
            checked(),
        ],
        (PlanKind::Upgrade, false, Some(SourceVerdict::Unchanged { .. })) => vec![
            Item::marked(
                "!",
                theme.warn(),
                format!("{db} itself was not changed, but not everything could be undone:"),
            )
            .style(theme.warn()),
            checked(),
        ],
        (_, _, Some(v @ (SourceVerdict::Changed { .. } | SourceVerdict::Unknown { .. }))) => {
            let mut items: Vec<Item> = v.lines().into_iter().map(|l| warning(l, theme)).collect();
            if !all_undone {
                items.push(warning(BY_HAND, theme));
            }
            items
        }
        (_, true, _) => vec![Item::marked(
            "✓",
            theme.ok(),
            "pgstep undid every change its journal recorded.",
        )],
        (_, false, _) => vec![warning(BY_HAND, theme)],
    }
}

const BY_HAND: &str = "Not everything could be undone; do this by hand:";

/// A line in the warning's colour, marked "!".
fn warning(text: impl Into<String>, theme: &Theme) -> Item {
    Item::marked("!", theme.warn(), text).style(theme.warn())
}

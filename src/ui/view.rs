//! The wizard's frame: a header (server, database, application, versions, elapsed time), the
//! checklist as a sidebar, the current step's screen, the log pane and the key bar — with the
//! confirmation dialog and the help overlay on top. Pure rendering of [`App`].

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, Paragraph, Wrap};

use super::app::{App, Dialog};
use super::screens;
use super::theme::Theme;
use crate::checklist::{Question, StepStatus};
use crate::events::Level;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn render(f: &mut Frame, app: &App) {
    let area = f.area();
    let theme = Theme::new(app.no_color);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "The terminal is {}×{}; pgstep needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\nEnlarge the window: the run goes on meanwhile.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let log_height = if area.height >= 40 { 12 } else { 6 };
    let [header, body, log, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(8),
        Constraint::Length(log_height),
        Constraint::Length(1),
    ])
    .areas(area);
    let [sidebar, screen] =
        Layout::horizontal([Constraint::Length(35), Constraint::Min(40)]).areas(body);
    render_header(f, header, app, &theme);
    render_sidebar(f, sidebar, app, &theme);
    screens::render(f, screen, app, &theme);
    render_log(f, log, app, &theme);
    render_keys(f, keys, app, &theme);
    if let Some(dialog) = &app.dialog {
        render_dialog(f, area, dialog, &theme);
    }
    if app.help {
        render_help(f, area, app, &theme);
    }
}

fn render_header(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let elapsed = clock(Duration::from_millis(app.now_ms));
    // What matters most first: a narrow terminal cuts the end of the line, not the databases.
    let (line1, server) = match app.plan() {
        Some(p) => (
            format!(
                "pgstep {} · {} → {} · version {} → {} · {}",
                kind_word(app),
                p.source_db,
                p.target_db,
                p.from,
                p.to,
                p.application
            ),
            format!("{} · ", p.server),
        ),
        None => (format!("pgstep {}", kind_word(app)), String::new()),
    };
    let status = match (&app.outcome, app.checklist.cancel_was_requested()) {
        (Some(crate::checklist::Outcome::Success), _) => "finished".to_owned(),
        (Some(_), _) => "stopped".to_owned(),
        (None, true) => "cancelling".to_owned(),
        (None, false) => "running".to_owned(),
    };
    let lines = vec![
        Line::from(Span::styled(line1, theme.title())),
        Line::from(vec![
            Span::raw(format!("elapsed {elapsed} · ")),
            Span::styled(status, theme.dim()),
            Span::styled(format!(" · {server}"), theme.dim()),
        ]),
    ];
    f.render_widget(Paragraph::new(lines), area);
}

fn kind_word(app: &App) -> &'static str {
    match app.checklist.kind {
        crate::checklist::PlanKind::Upgrade => "upgrade",
        crate::checklist::PlanKind::Rehearsal => "rehearsal",
        crate::checklist::PlanKind::Fixup => "fixup",
        crate::checklist::PlanKind::Restore => "restore",
        crate::checklist::PlanKind::Bootstrap => "bootstrap",
    }
}

fn render_sidebar(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let shown = app.shown_step();
    let items: Vec<ListItem> = app
        .checklist
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (mark, style) = match s.status {
                StepStatus::Pending => ("·", theme.dim()),
                StepStatus::Running => ("▶", theme.running()),
                StepStatus::Done => ("✓", theme.ok()),
                StepStatus::Warning => ("!", theme.warn()),
                StepStatus::Failed => ("✗", theme.bad()),
                StepStatus::Skipped => ("-", theme.dim()),
            };
            let time = app.step_elapsed(i).map(short).unwrap_or_default();
            let title = format!("{mark} {:<25}{time:>6}", truncate(s.id.title(), 25));
            let style = if i == shown {
                style.patch(theme.selected())
            } else {
                style
            };
            ListItem::new(Line::from(Span::styled(title, style)))
        })
        .collect();
    f.render_widget(
        List::new(items).block(Block::default().borders(Borders::RIGHT).title("Checklist")),
        area,
    );
}

fn render_log(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let inner = area.height.saturating_sub(1) as usize;
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(inner);
    let lines: Vec<Line> = app
        .log
        .range(start..end)
        .map(|l| {
            let style = match l.level {
                Level::Info => theme.normal(),
                Level::Notice => theme.dim(),
                Level::Warning => theme.warn(),
                Level::Error => theme.bad(),
            };
            Line::from(Span::styled(l.text.clone(), style))
        })
        .collect();
    let title = if app.log_scroll > 0 {
        format!("Log (scrolled back {} lines; End follows)", app.log_scroll)
    } else {
        "Log".to_owned()
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(title)),
        area,
    );
}

fn render_keys(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if let Some(n) = &app.notice {
        f.render_widget(Paragraph::new(Span::styled(n.clone(), theme.warn())), area);
        return;
    }
    let keys = match (app.outcome.is_some(), app.question()) {
        (true, _) => "Enter/q quit · Tab/←→ steps · PgUp/PgDn log · ? help",
        (false, Some(Question::Confirmations { .. })) => {
            "Space tick · ↑↓ move · Enter proceed · Esc cancel · ? help"
        }
        (false, Some(Question::Sessions { .. })) => {
            "r refresh · n notify · t terminate · Esc cancel · ? help"
        }
        (false, Some(Question::FingerprintMismatch { .. })) => {
            "Enter proceed anyway (recorded) · Esc cancel · ? help"
        }
        (false, Some(Question::DiskUnmeasurable { .. })) => {
            "Enter confirm there is room · Esc cancel · ? help"
        }
        (false, Some(Question::CutOver)) => {
            "Enter cut over · Esc cancel · Tab/←→ review steps · ? help"
        }
        (false, None) => "Ctrl-C cancel · Tab/←→ steps · PgUp/PgDn log · ? help",
    };
    f.render_widget(Paragraph::new(Span::styled(keys, theme.dim())), area);
}

fn render_dialog(f: &mut Frame, area: Rect, dialog: &Dialog, theme: &Theme) {
    let box_area = area.centered(Constraint::Length(64), Constraint::Length(9));
    f.render_widget(Clear, box_area);
    let (title, body) = match dialog {
        Dialog::Confirm { title, text, .. } => (title.clone(), text.clone()),
        Dialog::TypeName {
            title, text, typed, ..
        } => (title.clone(), format!("{text}\n> {typed}▏")),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.warn()));
    f.render_widget(
        Paragraph::new(body).wrap(Wrap { trim: false }).block(block),
        box_area,
    );
}

fn render_help(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let box_area = area.centered(Constraint::Percentage(80), Constraint::Percentage(80));
    f.render_widget(Clear, box_area);
    let step = app.checklist.steps.get(app.shown_step()).map(|s| s.id);
    let text = format!(
        "{}\n\nKeys: Enter proceeds or confirms · Space ticks · Tab/←→ show another step · ↑↓ move · \
         r/n/t refresh, notify, terminate sessions · PgUp/PgDn scroll the log · Esc/Ctrl-C cancel \
         (a second Ctrl-C interrupts at once) · q quits when nothing runs · ? closes this help",
        step.map_or("", screens::help_text)
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled("Help", theme.title()));
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
        box_area,
    );
}

/// `1:02:03` or `02:03`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// `0.4s`, `12s`, `3m05`.
pub fn short(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else {
        format!("{}m{:02}", d.as_secs() / 60, d.as_secs() % 60)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

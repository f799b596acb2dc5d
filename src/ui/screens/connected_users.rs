//! Connected users: who is still connected (pid, user, application, client, since, state) in a
//! table with the cursor row marked, and what the operator can do about it; after the step,
//! that nobody is connected and who could still connect.
//!
//! Narrow screens (the 80-column terminal leaves ~44) give each session two rows — user over
//! client, application over state — rather than cutting columns away.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{HighlightSpacing, Row, Table, TableState};

use super::here::{question_here, running_here};
use super::table::{columns, row_of_two};
use super::text::{Item, ellipsize, height_of, render_items, width};
use crate::checklist::{Question, SessionInfo, StepOutput, StepView};
use crate::format;
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// From this width on, one row per session.
const WIDE: u16 = 72;
const POINTER: &str = "› ";

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    if let Some(Question::Sessions { sessions }) = question_here(app, view) {
        return asking(f, area, sessions, app.cursor, theme);
    }
    let items = match &view.output {
        _ if running_here(app, view) => looking(view, theme),
        Some(StepOutput::Sessions {
            sessions,
            unblockable,
        }) if sessions.is_empty() => nobody(unblockable, theme),
        Some(StepOutput::Sessions { sessions, .. }) => {
            let head = vec![Item::styled(
                format!("{} session(s) were still connected:", sessions.len()),
                theme.warn(),
            )];
            return with_table(f, area, &head, sessions, None, &[], theme);
        }
        _ => Vec::new(),
    };
    render_items(f, area, &items, "", theme);
}

fn asking(f: &mut Frame, area: Rect, sessions: &[SessionInfo], cursor: usize, theme: &Theme) {
    let n = sessions.len();
    let head = vec![Item::styled(
        format!("{n} still connected; the copy waits for them."),
        theme.warn(),
    )];
    let actions = if area.width >= WIDE {
        vec![
            Item::plain("r refresh as users log off · n notify the application's clients"),
            Item::plain(format!(
                "t terminate all {n} (their unsaved work is lost) · Esc cancel"
            )),
        ]
    } else {
        vec![
            Item::plain("r refresh · n notify the clients"),
            Item::plain(format!("t terminate all {n}: unsaved work is lost")),
        ]
    };
    with_table(f, area, &head, sessions, Some(cursor), &actions, theme);
}

/// A heading, the table, and the actions under it; the actions are never cut for the table.
fn with_table(
    f: &mut Frame,
    area: Rect,
    head: &[Item],
    sessions: &[SessionInfo],
    cursor: Option<usize>,
    actions: &[Item],
    theme: &Theme,
) {
    let head_h = height_of(head, area.width);
    let actions_h = height_of(actions, area.width);
    let per_row = if area.width >= WIDE { 1 } else { 2 };
    let table_h = u16::try_from((sessions.len() + 1) * per_row).unwrap_or(u16::MAX);
    let [head_area, table_area, _, actions_area, _] = Layout::vertical([
        Constraint::Length(head_h),
        Constraint::Max(table_h),
        Constraint::Length(u16::from(!actions.is_empty())),
        Constraint::Length(actions_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    render_items(f, head_area, head, "", theme);
    render_table(f, table_area, sessions, cursor, theme);
    render_items(f, actions_area, actions, "", theme);
}

fn render_table(
    f: &mut Frame,
    area: Rect,
    sessions: &[SessionInfo],
    cursor: Option<usize>,
    theme: &Theme,
) {
    if area.is_empty() {
        return;
    }
    let wide = area.width >= WIDE;
    let room = usize::from(area.width).saturating_sub(POINTER.chars().count());
    let widths = column_widths(sessions, room, wide);
    let header = header_row(&widths, wide);
    let rows = sessions.iter().map(|s| row(s, &widths, wide));
    let table = Table::new(
        rows,
        widths
            .iter()
            .map(|w| Constraint::Length(u16::try_from(*w).unwrap_or(0))),
    )
    .header(header.style(theme.dim()))
    .column_spacing(1)
    .highlight_symbol(POINTER)
    .highlight_spacing(HighlightSpacing::Always)
    .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(cursor);
    f.render_stateful_widget(table, area, &mut state);
}

/// The columns' widths: one line per session when the table is wide, two otherwise.
fn column_widths(sessions: &[SessionInfo], room: usize, wide: bool) -> Vec<usize> {
    let want = |header: &str, of: &dyn Fn(&SessionInfo) -> String| {
        sessions
            .iter()
            .map(|s| width(&of(s)))
            .chain([width(header)])
            .max()
            .unwrap_or(0)
    };
    let pid = want("pid", &|s| s.pid.to_string());
    let user = want("user", &|s| s.user.clone());
    let app = want("application", &|s| s.application.clone());
    let client = want("client", &|s| s.client.clone());
    let since = want("since", &|s| format::age_short(s.age_seconds));
    let state = want("state", &|s| s.state.clone());
    if wide {
        columns(room, &[pid, user, app, client, since, state], &[0, 4])
    } else {
        columns(
            room,
            &[pid, user.max(client), app.max(state), since],
            &[0, 3],
        )
    }
}

fn header_row<'a>(widths: &[usize], wide: bool) -> Row<'a> {
    if wide {
        Row::new(
            ["pid", "user", "application", "client", "since", "state"]
                .into_iter()
                .zip(widths)
                .map(|(h, w)| ellipsize(h, *w)),
        )
    } else {
        row_of_two(
            widths,
            ["pid", "user", "application", "since"],
            ["", "client", "state", ""],
        )
    }
}

fn row<'a>(s: &SessionInfo, widths: &[usize], wide: bool) -> Row<'a> {
    let cut = |text: &str, i: usize| ellipsize(text, widths.get(i).copied().unwrap_or(0));
    let pid = s.pid.to_string();
    let since = format::age_short(s.age_seconds);
    if wide {
        Row::new([
            cut(&pid, 0),
            cut(&s.user, 1),
            cut(&s.application, 2),
            cut(&s.client, 3),
            cut(&since, 4),
            cut(&s.state, 5),
        ])
    } else {
        row_of_two(
            widths,
            [&pid, &s.user, &s.application, &since],
            ["", &s.client, &s.state, ""],
        )
    }
}

fn looking(view: &StepView, theme: &Theme) -> Vec<Item> {
    let text = match &view.output {
        Some(StepOutput::Sessions { sessions, .. }) if !sessions.is_empty() => format!(
            "Looking again at who is connected (last time: {} session(s))…",
            sessions.len()
        ),
        _ => "Blocking new connections, then listing who is still connected…".to_owned(),
    };
    vec![Item::styled(text, theme.dim())]
}

fn nobody(unblockable: &[String], theme: &Theme) -> Vec<Item> {
    let mut items = vec![
        Item::marked("✓", theme.ok(), "Nobody else is connected."),
        Item::marked(
            "✓",
            theme.ok(),
            "New connections are blocked for the downtime; access is put back exactly as it was afterwards.",
        ),
    ];
    if !unblockable.is_empty() {
        items.push(Item::marked(
            "!",
            theme.warn(),
            format!(
                "Can still connect (cannot be blocked): {}. Make sure no application connects as them.",
                unblockable.join(", ")
            ),
        ));
    }
    items
}

//! Disk space: one entry per place that needs room — ✓ / ✗ / ? and what it is, then a bar of
//! the room required against the room free. A place that cannot be measured says so in words
//! and gets no bar (an empty bar would read as "plenty of room").

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph};

use super::here::{question_here, running_here};
use super::text::{Item, height_of, render_items, verdict};
use crate::checklist::{Question, SpaceLine, StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// Width of the bar (its first column stays blank: LineGauge keeps it for a label).
const BAR: u16 = 21;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let (head, lines): (Vec<Item>, &[SpaceLine]) = match (question_here(app, view), &view.output) {
        (Some(Question::DiskUnmeasurable { lines }), _) => (unmeasurable_head(theme), lines),
        (_, Some(StepOutput::Disk(lines))) => (Vec::new(), lines),
        _ if running_here(app, view) => (
            vec![Item::styled(
                "Measuring the database and the free space…",
                theme.dim(),
            )],
            &[],
        ),
        _ => (Vec::new(), &[]),
    };
    let mut rest = take_items(f, area, &head, theme);
    let heights: Vec<u16> = lines.iter().map(|l| entry_height(l, rest.width)).collect();
    for (i, line) in lines.iter().enumerate() {
        let all_fit = heights[i..].iter().sum::<u16>() <= rest.height;
        if !all_fit && heights[i] + 1 > rest.height {
            let note = format!("… {} more place(s): see the log", lines.len() - i);
            render_items(f, rest, &[Item::styled(note, theme.dim())], "", theme);
            return;
        }
        rest = entry(f, rest, line, theme);
    }
}

fn unmeasurable_head(theme: &Theme) -> Vec<Item> {
    vec![
        Item::styled(
            "pgstep cannot see the server's disks from here: check the free space there.",
            theme.warn(),
        ),
        Item::plain("Enter: there is room (recorded) · Esc: cancel"),
        Item::blank(),
    ]
}

/// Draws items at the top of `area`; returns what is left below them.
fn take_items(f: &mut Frame, area: Rect, items: &[Item], theme: &Theme) -> Rect {
    let h = height_of(items, area.width).min(area.height);
    render_items(f, Rect { height: h, ..area }, items, "", theme);
    Rect {
        y: area.y + h,
        height: area.height - h,
        ..area
    }
}

fn entry_height(line: &SpaceLine, width: u16) -> u16 {
    let bar = u16::from(line.available.is_some());
    height_of(&[text_item(line, &Theme::new(true))], width) + bar
}

fn text_item(line: &SpaceLine, theme: &Theme) -> Item {
    let (mark, style) = verdict(line.ok(), theme);
    let item = Item::marked(mark, style, line.what.clone());
    if line.available.is_none() {
        item.style(theme.warn())
    } else {
        item
    }
}

/// One place: its description, then a bar of the room it takes of the free space.
fn entry(f: &mut Frame, area: Rect, line: &SpaceLine, theme: &Theme) -> Rect {
    let rest = take_items(f, area, &[text_item(line, theme)], theme);
    let Some(free) = line.available else {
        return rest;
    };
    if rest.is_empty() {
        return rest;
    }
    let row = Rect {
        x: rest.x + 1,
        width: rest.width.saturating_sub(1),
        height: 1,
        ..rest
    };
    let [bar, text] = Layout::horizontal([Constraint::Length(BAR), Constraint::Fill(1)]).areas(row);
    let ratio = (line.required as f64 / free.max(1) as f64).min(1.0);
    let pct = (line.required as f64 * 100.0 / free.max(1) as f64).ceil();
    let style = if line.ok() == Some(false) {
        theme.bad()
    } else {
        theme.gauge()
    };
    f.render_widget(
        LineGauge::default()
            .ratio(ratio)
            .label("")
            .filled_symbol("█")
            .unfilled_symbol("░")
            .filled_style(style)
            .unfilled_style(theme.dim()),
        bar,
    );
    let words = format!(" {pct:.0}% of the free space");
    f.render_widget(Paragraph::new(Line::from(Span::raw(words))), text);
    Rect {
        y: rest.y + 1,
        height: rest.height - 1,
        ..rest
    }
}

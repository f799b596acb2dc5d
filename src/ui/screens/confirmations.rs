//! Confirmations: the human parts of the checklist as checkboxes. The cursor row is marked with
//! `›` as well as reversed, so it shows without colour; ticks are `[x]`, never a colour alone.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

use super::here::question_here;
use super::text::{Item, render_items};
use crate::checklist::{ManualItem, Question, StepOutput, StepView};
use crate::ui::app::App;
use crate::ui::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, app: &App, view: &StepView, theme: &Theme) {
    let items = match (question_here(app, view), &view.output) {
        (Some(Question::Confirmations { items }), _) => asking(app, items, theme),
        (_, Some(StepOutput::Confirmed(items))) => confirmed(items, theme),
        _ => preview(&app.checklist.confirmations, theme),
    };
    render_items(f, area, &items, "", theme);
}

fn asking(app: &App, items: &[ManualItem], theme: &Theme) -> Vec<Item> {
    let ticked = (0..items.len())
        .filter(|&i| app.ticks.get(i).copied().unwrap_or(items[i].ticked))
        .count();
    let mut out = vec![Item::styled(
        format!(
            "{ticked} of {} ticked. Tick each one when it is true, then Enter.",
            items.len()
        ),
        theme.warn(),
    )];
    for (i, item) in items.iter().enumerate() {
        let ticked = app.ticks.get(i).copied().unwrap_or(item.ticked);
        let here = i == app.cursor;
        let mark = match (here, ticked) {
            (true, true) => "› [x]",
            (true, false) => "› [ ]",
            (false, true) => "  [x]",
            (false, false) => "  [ ]",
        };
        let style = if here {
            theme.selected()
        } else {
            theme.normal()
        };
        out.push(Item {
            mark: Some(Span::styled(mark, style)),
            text: item.text.clone(),
            style,
            indent: 0,
        });
    }
    out
}

fn confirmed(items: &[ManualItem], theme: &Theme) -> Vec<Item> {
    let mut out: Vec<Item> = items
        .iter()
        .map(|i| Item::marked("✓", theme.ok(), i.text.clone()))
        .collect();
    out.push(Item::styled("Recorded in the run's report.", theme.dim()));
    out
}

/// Before the step: what will be asked.
fn preview(items: &[ManualItem], theme: &Theme) -> Vec<Item> {
    items
        .iter()
        .map(|i| Item::marked("[ ]", theme.dim(), i.text.clone()).style(theme.dim()))
        .collect()
}

//! The running step's progress: a bar when the total is known, and the figures — done and
//! total in their unit, the rate and the time left (`App::rate_and_left`); "measuring the
//! rate…" until half a second of progress allows one.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{LineGauge, Paragraph};

use super::here::running_here;
use super::text::ellipsize;
use crate::checklist::StepView;
use crate::events::Unit;
use crate::format;
use crate::ui::app::{App, Progress};
use crate::ui::theme::Theme;

/// Rows the progress takes: a bar and its figures, or the figures alone without a total.
pub fn rows(app: &App, view: &StepView) -> u16 {
    match app.progress {
        Some(p) if running_here(app, view) => {
            if p.total.is_some() {
                2
            } else {
                1
            }
        }
        _ => 0,
    }
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(p) = app.progress else { return };
    let text_area = match p.total {
        Some(t) => {
            let [bar, text] =
                Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
            let ratio = if t == 0 {
                1.0
            } else {
                (p.done as f64 / t as f64).clamp(0.0, 1.0)
            };
            f.render_widget(
                LineGauge::default()
                    .ratio(ratio)
                    .label(format!("{:>3.0}%", (ratio * 100.0).floor()))
                    .filled_symbol("█")
                    .unfilled_symbol("░")
                    .filled_style(theme.gauge())
                    .unfilled_style(theme.dim()),
                bar,
            );
            text
        }
        None => area,
    };
    let line = ellipsize(&figures(app, p), usize::from(text_area.width));
    f.render_widget(
        Paragraph::new(Span::styled(line, theme.normal())),
        text_area,
    );
}

/// "45 / 120 statements · 37/s · 2.0s left".
fn figures(app: &App, p: Progress) -> String {
    let unit = unit_word(p.unit);
    let mut text = match p.total {
        Some(t) => format!("{} / {}{unit}", amount(p.unit, p.done), amount(p.unit, t)),
        None => format!("{}{unit} so far", amount(p.unit, p.done)),
    };
    match app.rate_and_left() {
        Some((rate, left)) => {
            text.push_str(&format!(" · {}", per_second(p.unit, rate)));
            if let Some(left) = left {
                text.push_str(&format!(
                    " · {} left",
                    format::duration(Duration::from_secs_f64(left.max(0.0)))
                ));
            }
        }
        None => text.push_str(" · measuring the rate…"),
    }
    text
}

fn unit_word(u: Unit) -> &'static str {
    match u {
        Unit::Statements => " statements",
        Unit::Scripts => " scripts",
        Unit::Steps => " steps",
        Unit::Bytes => "",
        Unit::Tables => " tables",
    }
}

fn amount(u: Unit, n: u64) -> String {
    if u == Unit::Bytes {
        format::bytes(n)
    } else {
        n.to_string()
    }
}

fn per_second(u: Unit, rate: f64) -> String {
    match u {
        Unit::Bytes => format!("{}/s", format::bytes(rate as u64)),
        _ if rate < 10.0 => format!("{rate:.1}/s"),
        _ => format!("{rate:.0}/s"),
    }
}

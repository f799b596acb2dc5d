//! Text that fits: word wrapping with a hanging indent, `…` where something is cut, and a
//! "… N more lines" note instead of silently losing the end of a list. Every screen lays out
//! its body as [`Item`]s through [`render_items`], so a narrow terminal wraps and cuts the same
//! way everywhere — and never panics on a zero-sized area.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::ui::theme::Theme;

/// One logical line of a screen: an optional mark (✓ ✗ ! ?) in its own style, then text that
/// wraps under itself (not under the mark).
#[derive(Debug, Clone, Default)]
pub struct Item {
    pub mark: Option<Span<'static>>,
    pub text: String,
    pub style: Style,
    /// Extra indentation of the whole item (nested lists).
    pub indent: usize,
}

impl Item {
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            style,
            ..Self::default()
        }
    }

    pub fn marked(mark: &'static str, mark_style: Style, text: impl Into<String>) -> Self {
        Self {
            mark: Some(Span::styled(mark, mark_style)),
            text: text.into(),
            ..Self::default()
        }
    }

    /// A label in front, the text wrapping under itself: "Server    localhost".
    pub fn labelled(label: String, text: impl Into<String>) -> Self {
        Self {
            mark: Some(Span::raw(label)),
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn blank() -> Self {
        Self::default()
    }

    pub fn indented(mut self, by: usize) -> Self {
        self.indent = by;
        self
    }

    pub fn style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }

    /// The item as screen lines of at most `width` columns.
    pub fn lines(&self, width: usize) -> Vec<Line<'static>> {
        let mark_width = self.mark.as_ref().map_or(0, |m| m.width() + 1);
        let hang = self.indent + mark_width;
        let rows = wrap(&self.text, width.saturating_sub(hang).max(1));
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| {
                let mut spans = vec![Span::raw(" ".repeat(self.indent))];
                match (&self.mark, i) {
                    (Some(m), 0) => spans.extend([m.clone(), Span::raw(" ")]),
                    _ => spans.push(Span::raw(" ".repeat(mark_width))),
                }
                spans.push(Span::styled(row, self.style));
                Line::from(spans)
            })
            .collect()
    }
}

/// Display width of a text (wide characters count two).
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    width(c.encode_utf8(&mut buf))
}

/// Word wrap into rows of at most `max` columns; a word longer than a row is cut across rows.
/// Always at least one row (an empty text is one empty row).
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    for word in text.split(' ') {
        let w = width(word);
        if used > 0 && used + 1 + w <= max {
            row.push(' ');
            row.push_str(word);
            used += 1 + w;
            continue;
        }
        if used > 0 {
            rows.push(std::mem::take(&mut row));
        }
        used = 0;
        for piece in pieces(word, max) {
            let pw = width(piece);
            if used > 0 && used + pw > max {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            for c in piece.chars() {
                let cw = char_width(c);
                if used + cw > max && used > 0 {
                    rows.push(std::mem::take(&mut row));
                    used = 0;
                }
                row.push(c);
                used += cw;
            }
        }
    }
    rows.push(row);
    rows
}

/// A word too long for a row, in pieces that end after `/`, `-` or `_` (a path breaks between
/// its directories, not inside a name); pieces still too long are cut by the caller.
fn pieces(word: &str, max: usize) -> Vec<&str> {
    if width(word) <= max {
        return vec![word];
    }
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in word.char_indices() {
        if matches!(c, '/' | '-' | '_') {
            out.push(&word[start..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    out.push(&word[start..]);
    out.retain(|p| !p.is_empty());
    out
}

/// The text cut to `max` columns, ending in `…` when something was cut.
pub fn ellipsize(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let cw = char_width(c);
        if used + cw > max - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// The end of a text (a path's file name matters most), cut at the start with `…`.
pub fn ellipsize_start(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let cw = char_width(c);
        if used + cw > max - 1 {
            break;
        }
        tail.push(c);
        used += cw;
    }
    std::iter::once('…').chain(tail.into_iter().rev()).collect()
}

/// At most `max` wrapped rows of a text, the last one ending in `…` when the text goes on.
pub fn wrap_at_most(text: &str, width: usize, max: usize) -> Vec<String> {
    let mut rows = wrap(text, width);
    if rows.len() > max {
        rows.truncate(max);
        if let Some(last) = rows.last_mut() {
            *last = ellipsize(&format!("{last} …"), width);
        }
    }
    rows
}

/// Lays out items in `area`: wrapped to its width; when they do not fit its height, the last
/// row says how many lines are left out (and where to read them, if `more` says).
pub fn render_items(f: &mut Frame, area: Rect, items: &[Item], more: &str, theme: &Theme) {
    if area.is_empty() {
        return;
    }
    let width = usize::from(area.width);
    let height = usize::from(area.height);
    let mut lines: Vec<Line> = items.iter().flat_map(|i| i.lines(width)).collect();
    while lines.last().is_some_and(|l| l.width() == 0) {
        lines.pop();
    }
    if lines.len() > height {
        let left_out = lines.len() - (height - 1);
        lines.truncate(height - 1);
        let note = format!("… {left_out} more line(s){more}");
        lines.push(Line::from(Span::styled(
            ellipsize(&note, width),
            theme.dim(),
        )));
    }
    f.render_widget(Paragraph::new(lines), area);
}

/// How many rows items take at `width`.
pub fn height_of(items: &[Item], width: u16) -> u16 {
    let rows: usize = items
        .iter()
        .map(|i| i.lines(usize::from(width)).len())
        .sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// The mark and style of a yes / no / cannot tell.
pub fn verdict(ok: Option<bool>, theme: &Theme) -> (&'static str, Style) {
    match ok {
        Some(true) => ("✓", theme.ok()),
        Some(false) => ("✗", theme.bad()),
        None => ("?", theme.warn()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_words_and_cuts_long_ones() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), vec![""]);
        assert_eq!(wrap("x", 0), vec!["x"]);
        assert_eq!(
            wrap("/srv/backups/clinic.dump", 14),
            vec!["/srv/backups/", "clinic.dump"]
        );
    }

    #[test]
    fn ellipsizes_at_either_end() {
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
        assert_eq!(ellipsize("abc", 0), "");
        assert_eq!(ellipsize_start("/a/b/file.dump", 8), "…le.dump");
    }

    #[test]
    fn wraps_at_most_and_says_so() {
        assert_eq!(
            wrap_at_most("one two three four", 9, 2),
            vec!["one two", "three …"]
        );
    }

    #[test]
    fn items_hang_under_their_text() {
        let item = Item::marked("✓", Style::default(), "aaa bbb ccc");
        let rows: Vec<String> = item.lines(9).iter().map(ToString::to_string).collect();
        assert_eq!(rows, vec!["✓ aaa bbb", "  ccc"]);
    }
}

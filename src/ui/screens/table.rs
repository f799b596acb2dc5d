//! Tables that fit a narrow screen: column widths from what the cells hold, and rows two lines
//! high where one would not fit.

use ratatui::text::{Line, Text};
use ratatui::widgets::{Cell, Row};

use super::text::ellipsize;

/// Column widths: what each column's widest text wants; when that is more than the room
/// (one space between columns), the widest of the columns that may shrink gives way first.
pub fn columns(room: usize, want: &[usize], keep: &[usize]) -> Vec<usize> {
    let mut widths = want.to_vec();
    let gaps = want.len().saturating_sub(1);
    while widths.iter().sum::<usize>() + gaps > room {
        let widest = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| !keep.contains(i) && **w > 1)
            .max_by_key(|(_, w)| **w)
            .map(|(i, _)| i);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    widths
}

/// A row two lines high: the first line's cells over the second's.
pub fn row_of_two<'a>(widths: &[usize], top: [&str; 4], bottom: [&str; 4]) -> Row<'a> {
    let cells = top.into_iter().zip(bottom).enumerate().map(|(i, (a, b))| {
        let w = widths.get(i).copied().unwrap_or(0);
        Cell::new(Text::from(vec![
            Line::raw(ellipsize(a, w)),
            Line::raw(ellipsize(b, w)),
        ]))
    });
    Row::new(cells).height(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_share_the_room() {
        assert_eq!(columns(40, &[5, 8, 16, 4], &[0, 3]), vec![5, 8, 16, 4]);
        assert_eq!(columns(30, &[5, 8, 16, 4], &[0, 3]), vec![5, 8, 10, 4]);
        assert_eq!(columns(3, &[5, 4], &[0]), vec![5, 1]);
    }
}

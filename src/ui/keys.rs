//! Keys map to actions in one table; key releases are dropped here, at the source.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Enter: the natural next thing (confirm, proceed, leave the final screen).
    Proceed,
    /// Space: tick a checkbox.
    Tick,
    Up,
    Down,
    /// Tab / → : look at the next step's screen.
    NextStep,
    /// Shift-Tab / ← : the previous step's screen.
    PrevStep,
    Help,
    /// Esc / Ctrl-C: cancel (after a confirmation); a second time interrupts at once.
    Cancel,
    /// q: leave, when nothing runs.
    Quit,
    Refresh,
    Notify,
    Terminate,
    LogUp,
    LogDown,
    LogEnd,
}

pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::Cancel);
    }
    Some(match key.code {
        KeyCode::Enter => Action::Proceed,
        KeyCode::Char(' ') => Action::Tick,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Tab | KeyCode::Right => Action::NextStep,
        KeyCode::BackTab | KeyCode::Left => Action::PrevStep,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Esc => Action::Cancel,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('r') => Action::Refresh,
        KeyCode::Char('n') => Action::Notify,
        KeyCode::Char('t') => Action::Terminate,
        KeyCode::PageUp => Action::LogUp,
        KeyCode::PageDown => Action::LogDown,
        KeyCode::End => Action::LogEnd,
        _ => return None,
    })
}

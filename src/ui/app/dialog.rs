//! The wizard's dialogs: the confirmations the operator gives before something destructive,
//! and the keys they take.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{App, Command};
use crate::checklist::Answer;

/// A confirmation the operator must give before something destructive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// y/Enter confirms, n/Esc closes.
    Confirm {
        title: String,
        text: String,
        on_yes: Pending,
    },
    /// The riskiest actions: the operator types the database's name.
    TypeName {
        title: String,
        text: String,
        expected: String,
        typed: String,
        on_yes: Pending,
    },
}

/// What a confirmed dialog does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Answer(Answer),
    Cancel,
}

impl App {
    pub(super) fn dialog_key(&mut self, dialog: Dialog, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            self.dialog = Some(dialog);
            return Vec::new();
        }
        // Ctrl-C never types into a dialog: it closes it and cancels (or, when the run is
        // already cancelling, interrupts at once).
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.ask_cancel();
        }
        match dialog {
            Dialog::Confirm { .. } => self.confirm_key(dialog, key.code),
            Dialog::TypeName { .. } => self.type_name_key(dialog, key),
        }
    }

    /// A key in a y/n dialog.
    fn confirm_key(&mut self, dialog: Dialog, code: KeyCode) -> Vec<Command> {
        match dialog {
            // Only an explicit y confirms: Enter is the key a tired operator presses twice.
            Dialog::Confirm { on_yes, .. } if matches!(code, KeyCode::Char('y' | 'Y')) => {
                self.confirmed(on_yes)
            }
            Dialog::Confirm { .. } if matches!(code, KeyCode::Char('n' | 'N') | KeyCode::Esc) => {
                Vec::new()
            }
            d => {
                self.dialog = Some(d);
                Vec::new()
            }
        }
    }

    /// A key in a dialog where the operator types a database's name.
    fn type_name_key(&mut self, dialog: Dialog, key: KeyEvent) -> Vec<Command> {
        match dialog {
            Dialog::TypeName {
                expected,
                typed,
                on_yes,
                ..
            } if key.code == KeyCode::Enter && typed == expected => self.confirmed(on_yes),
            Dialog::TypeName { .. } if key.code == KeyCode::Esc => Vec::new(),
            Dialog::TypeName {
                title,
                text,
                expected,
                mut typed,
                on_yes,
            } => {
                match key.code {
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        typed.push(c)
                    }
                    KeyCode::Backspace => {
                        typed.pop();
                    }
                    KeyCode::Enter => {
                        self.notice = Some(format!("type \"{expected}\" exactly, or Esc"))
                    }
                    _ => {}
                }
                self.dialog = Some(Dialog::TypeName {
                    title,
                    text,
                    expected,
                    typed,
                    on_yes,
                });
                Vec::new()
            }
            d => {
                self.dialog = Some(d);
                Vec::new()
            }
        }
    }
}

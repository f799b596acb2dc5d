//! Entering and leaving the full-screen terminal, and the panic hook that restores it — for a
//! panic in the UI thread only. (ratatui's own hook fires for any thread, and a panic in the
//! executor would leave the loop drawing on a restored terminal; the executor reports its
//! panics as a failed step instead.)

use std::io::{self, Stdout};
use std::sync::Once;
use std::thread::ThreadId;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use super::app::App;

static HOOK: Once = Once::new();
static UI_THREAD: std::sync::OnceLock<ThreadId> = std::sync::OnceLock::new();

pub struct Terminal {
    /// Taken when leaving (see [`Terminal::leave`]).
    inner: Option<ratatui::Terminal<CrosstermBackend<Stdout>>>,
}

impl Terminal {
    pub fn enter() -> io::Result<Self> {
        let _ = UI_THREAD.set(std::thread::current().id());
        install_hook();
        enable_raw_mode()?;
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, Hide) {
            restore();
            return Err(e);
        }
        match ratatui::Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(inner) => Ok(Self { inner: Some(inner) }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    pub fn draw(&mut self, app: &App) -> io::Result<()> {
        match &mut self.inner {
            Some(t) => t.draw(|f| super::view::render(f, app)).map(|_| ()),
            None => Ok(()),
        }
    }

    pub fn autoresize(&mut self) {
        if let Some(t) = &mut self.inner {
            let _ = t.autoresize();
        }
    }

    pub fn leave(&mut self) {
        let Some(mut inner) = self.inner.take() else {
            return;
        };
        restore();
        // ratatui's own drop shows a hidden cursor and, when that fails, reports it with
        // eprintln!, which panics on a terminal that hung up: keep it from dropping then.
        if inner.show_cursor().is_err() {
            std::mem::forget(inner);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // While panicking the hook has restored the terminal already (and printed the report).
        if !std::thread::panicking() {
            self.leave();
        }
    }
}

/// Raw mode off, main screen back, cursor shown. Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if UI_THREAD.get() == Some(&std::thread::current().id()) {
                restore();
                previous(info);
            }
            // Other threads: the executor catches its panics and reports them as a failed step;
            // printing here would draw over the screen.
        }));
    });
}

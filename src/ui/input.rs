//! The terminal's input, read on its own thread — and noticed when it goes away.
//!
//! crossterm's reader loops forever on a terminal that hung up (a read at end of file returns
//! no bytes, and it tries again at once), so the thread would spin a core and the wizard would
//! never learn that nobody is there. pgstep therefore waits on standard input itself with
//! `poll(2)`, which reports the hang-up, and asks crossterm to read only when there is
//! something to read.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::time::Duration;

use ratatui::crossterm::event;

use crate::session::Senders;

/// How long one wait for input lasts before it looks again (only bounds how long a hang-up
/// that poll(2) reports as nothing but "readable" takes to be noticed).
const WAIT: Duration = Duration::from_millis(500);

/// What standard input has to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Something to read.
    Ready,
    /// Nothing yet.
    Idle,
    /// The terminal hung up or the descriptor is no longer usable.
    Gone,
}

/// Reads the terminal's events into `tx` until the wizard stops listening; says so when the
/// terminal goes away.
pub fn spawn(tx: Senders) {
    std::thread::spawn(move || {
        if std::io::stdin().is_terminal() {
            watch_stdin(&tx);
        } else {
            // crossterm reads /dev/tty then; only a signal says the terminal is gone.
            while let Ok(e) = event::read() {
                if !tx.terminal(e) {
                    return;
                }
            }
        }
        tx.terminal_lost();
    });
}

/// Returns when the terminal is gone (or the wizard stopped listening).
fn watch_stdin(tx: &Senders) {
    let fd = std::io::stdin().as_raw_fd();
    loop {
        match wait(fd, WAIT) {
            Input::Gone => return,
            Input::Idle => {}
            Input::Ready => {
                // One read can bring several keys (a paste, an escape sequence): hand on every
                // event crossterm has parsed, not just the first.
                loop {
                    let Ok(e) = event::read() else { return };
                    if !tx.terminal(e) {
                        return;
                    }
                    match event::poll(Duration::ZERO) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(_) => return,
                    }
                }
            }
        }
    }
}

fn wait(fd: i32, timeout: Duration) -> Input {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: fds is a valid array of one pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
    if n < 0 {
        return if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            Input::Idle
        } else {
            Input::Gone
        };
    }
    readiness(fds[0].revents)
}

fn readiness(revents: libc::c_short) -> Input {
    if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Input::Gone
    } else if revents & libc::POLLIN != 0 {
        Input::Ready
    } else {
        Input::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hang_up_counts_as_gone_even_with_data_said_to_be_readable() {
        assert_eq!(readiness(libc::POLLIN | libc::POLLHUP), Input::Gone);
        assert_eq!(readiness(libc::POLLERR), Input::Gone);
        assert_eq!(readiness(libc::POLLIN), Input::Ready);
        assert_eq!(readiness(0), Input::Idle);
    }
}

//! Lines for stdout and stderr that never panic.
//!
//! `println!` and `eprintln!` panic when the stream is gone: an SSH session that dropped (the
//! terminal answers EIO), `pgstep recover | head -1` (EPIPE). A panic there would cut a
//! recovery short or turn a cancelled run's exit code into 101, so pgstep writes its lines
//! through these macros, which drop the line instead. (`clippy::print_stdout` and
//! `print_stderr` are denied in the library to keep it that way.)

/// Like `println!`, but a closed or hung-up stdout drops the line instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout(), $($arg)*);
    }};
}

/// Like `eprintln!`, but a closed or hung-up stderr drops the line instead of panicking.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// Like `print!`, but a closed or hung-up stdout drops the text instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stdout(), $($arg)*);
    }};
}

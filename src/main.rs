//! The `pgstep` binary: parses the command line and hands over to the library.

fn main() {
    let _ = color_eyre::install();
    std::process::exit(pgstep::cli::run());
}

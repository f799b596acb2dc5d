//! Placeholder replaced by the wizard benchmark.
fn main() {}

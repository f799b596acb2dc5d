//! Exit codes, for scripts and configuration management that drive pgstep.

/// Everything asked for was done.
pub const SUCCESS: i32 = 0;
/// Something failed while pgstep was working — an error, or a failed sanity check of the
/// upgraded clone; what it changed was undone as far as it says (anything pending stays listed
/// by `pgstep status`), and it says whether it checked the source database unchanged.
pub const FAILED: i32 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: i32 = 2;
/// Refused before anything was changed: a guard or a check said no, or the input (bundle,
/// database, version) is not usable. Nothing was changed.
pub const REFUSED: i32 = 3;
/// The operator cancelled; what was changed was undone.
pub const CANCELLED: i32 = 130;

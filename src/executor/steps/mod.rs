//! The checklist's steps, one module each, named by the step's key (`StepId::key()`). Each
//! holds its step's work as free functions over the run's context and the typed state the
//! step needs; `run.rs` dispatches to them. The confirmations step has no executor work.

pub(super) mod apply_fixups;
pub(super) mod backup;
pub(super) mod banner;
pub(super) mod bootstrap;
pub(super) mod clone;
pub(super) mod clone_upgrade;
pub(super) mod connected_users;
pub(super) mod cut_over;
pub(super) mod disk_space;
pub(super) mod fingerprint;
pub(super) mod plan;
pub(super) mod restore;
pub(super) mod sanity_checks;

//! pgstep: upgrades a PostgreSQL application database from version N to N+1 the way the
//! best-practice checklists say (GNUmed's clone-and-upgrade, OMERO's backup/restore, OpenEMR's
//! re-runnable conditional SQL), and rehearses it beforehand.
//!
//! The core — bundles, scripts, fingerprints, plans — knows nothing of the terminal; the engine
//! reports through [`events::Observer`] so that any front end (headless lines, JSON, the wizard)
//! can follow it.

#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

#[macro_use]
pub mod console;

pub mod backup;
pub mod bundle;
pub mod cancel;
pub mod checklist;
pub mod cli;
pub mod cluster;
pub mod conn;
pub mod db;
pub mod demo;
pub mod diskspace;
pub mod drive;
pub mod engine;
pub mod events;
pub mod executor;
pub mod exit;
pub(crate) mod faults;
pub mod fingerprint;
pub mod format;
pub mod headless;
pub mod hex;
pub mod journal;
pub mod lock;
pub mod paths;
pub mod preview;
pub mod recover;
pub mod rehearsal;
pub mod report;
pub mod run_report;
pub mod sample;
pub mod script;
pub mod session;
pub mod signals;
pub mod survey;
pub mod ui;

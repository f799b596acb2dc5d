//! Fixups: minor versions applied in place (GNUmed's N.x → N.y, seeds/001–002), only after a
//! verified backup. Each file is recorded with its checksum in pgstep.fixup; a file already
//! recorded with the same checksum is not run again unless asked (fixups are idempotent, so
//! `--reapply` is always safe).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::SESSION_GRACE;
use super::{Context, EngineError, Failure, check_fingerprint, check_server_version};
use crate::backup::{Backup, BackupFormat, BackupRequest, take_backup};
use crate::bundle::{Fixup, Version};
use crate::cancel::Cancel;
use crate::db::DbError;
use crate::db::bookkeeping::{record_fixup, recorded_fixup};
use crate::db::runner::run_script;
use crate::db::sessions::other_sessions_settled;
use crate::db::version::read_version;
use crate::events::{Event, Level, log, phase};
use crate::fingerprint;

/// How the backup before a fixup is taken — or, with a recorded reason, not.
#[derive(Debug, Clone)]
pub enum BackupChoice {
    Into(PathBuf),
    Skip { reason: String },
}

#[derive(Debug, Clone)]
pub struct FixupOptions {
    pub database: String,
    pub to: Option<Version>,
    pub reapply: bool,
    pub override_schema_check: bool,
    pub backup: BackupChoice,
}

#[derive(Debug, Clone, Serialize)]
pub struct FixupOutcome {
    pub database: String,
    pub from: Version,
    pub to: Version,
    pub applied: Vec<String>,
    pub skipped: Vec<String>,
    pub backup: Option<Backup>,
    pub fingerprint: String,
    #[serde(with = "super::secs")]
    pub elapsed: Duration,
}

/// Applies the fixups of the database's major version up to `to` (default: the newest).
pub fn fixup(ctx: &mut Context<'_>, opts: &FixupOptions) -> Result<FixupOutcome, EngineError> {
    let started = Instant::now();
    let bundle = ctx.bundle;
    let db = opts.database.as_str();
    phase(ctx.obs, "plan");
    let mut maint = ctx.maintenance()?;
    let server_version = check_server_version(&mut maint, bundle)?;
    let mut session = ctx.session(db)?;
    let current = read_version(&mut session.client, &bundle.version_query, db)?;
    let fixups: Vec<&Fixup> = bundle
        .fixups_of(current.major)
        .filter(|f| opts.to.is_none_or(|t| f.version <= t))
        .collect();
    if let Some(to) = opts.to {
        if to.major != current.major || to < current {
            return Err(EngineError::Refused(format!(
                "--to {to}: database \"{db}\" is at {current}; fixups go forward within major version {} (major versions come by pgstep upgrade)",
                current.major
            )));
        }
    }
    let Some(last) = fixups.last().map(|f| f.version) else {
        return Err(EngineError::Refused(format!(
            "bundle \"{}\" has no fixups for version {}: nothing to do",
            bundle.name, current.major
        )));
    };
    let placeholders = ctx.placeholders(db)?;
    let mut pending = Vec::new();
    let mut skipped = Vec::new();
    for f in &fixups {
        for script in ctx.reload(&f.scripts, &placeholders)? {
            let file = script.path.to_string_lossy().into_owned();
            let recorded = recorded_fixup(&mut session.client, &file, &f.version.to_string())?;
            let sum = script.combined_sha256();
            let done = recorded.as_deref() == Some(sum.as_str()) && current >= f.version;
            if done && !opts.reapply {
                skipped.push(file);
            } else {
                pending.push((f.version, script));
            }
        }
    }
    if pending.is_empty() {
        ctx.info(format!("\"{db}\" is at {current} and every fixup up to {last} is recorded with the same checksum: nothing to do (--reapply runs them again)"));
        let fp = fingerprint::compute(&mut session.client, &bundle.schemas)
            .map_err(|e| DbError::query("fingerprint", e))?;
        return Ok(FixupOutcome {
            database: db.into(),
            from: current,
            to: current,
            applied: vec![],
            skipped,
            backup: None,
            fingerprint: fp.hash,
            elapsed: started.elapsed(),
        });
    }

    phase(ctx.obs, "fingerprint");
    let fp = fingerprint::compute(&mut session.client, &bundle.schemas)
        .map_err(|e| DbError::query("fingerprint", e))?;
    check_fingerprint(ctx, &fp, current, db, opts.override_schema_check)?;

    phase(ctx.obs, "connected users");
    drop(session); // our own session is not "another user"
    let others = other_sessions_settled(&mut maint, db, SESSION_GRACE)?;
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(|s| format!("  {s}")).collect();
        return Err(EngineError::Refused(format!(
            "{} other session(s) are connected to \"{db}\"; disconnect them before a fixup:\n{}",
            others.len(),
            list.join("\n")
        )));
    }

    phase(ctx.obs, "backup");
    let backup = match &opts.backup {
        BackupChoice::Into(dir) => Some(
            take_backup(
                &BackupRequest {
                    server: ctx.server,
                    db,
                    dir,
                    format: BackupFormat::Custom,
                    server_version_num: server_version,
                    version: current,
                    fingerprint: &fp.hash,
                    schemas: &bundle.schemas,
                },
                // The engine has no cancellation yet; the backup runs to its end.
                &Cancel::new(),
                ctx.obs,
            )
            .map_err(|e| EngineError::Refused(e.to_string()))?,
        ),
        BackupChoice::Skip { reason } => {
            log(
                ctx.obs,
                Level::Warning,
                format!("no backup before the fixup, because: {reason}"),
            );
            None
        }
    };

    phase(ctx.obs, "fixups");
    let mut applied = Vec::new();
    let result = apply(ctx, db, &pending, &mut applied);
    if let Err(what) = result {
        let mut failure = Failure {
            what: format!("a fixup of \"{db}\" failed: {what}"),
            ..Failure::default()
        };
        if !applied.is_empty() {
            failure.advice.push(format!(
                "Applied before the failure (and recorded in pgstep.fixup): {}.",
                applied.join(", ")
            ));
        }
        failure.advice.push(match &backup {
            Some(b) => format!("Fixups are idempotent: fix the cause and run pgstep fixup again. The backup taken before is {} (sha256 {}).", b.path.display(), b.sha256),
            None => "Fixups are idempotent: fix the cause and run pgstep fixup again.".to_owned(),
        });
        return Err(EngineError::Failed(failure));
    }
    let mut session = ctx.session(db)?;
    let now = read_version(&mut session.client, &bundle.version_query, db)?;
    let fp = fingerprint::compute(&mut session.client, &bundle.schemas)
        .map_err(|e| DbError::query("fingerprint", e))?;
    let matches = bundle
        .reference_for(now)
        .is_some_and(|(_, r)| r.hash == fp.hash);
    ctx.obs.event(Event::Check {
        name: "fingerprint after the fixups".into(),
        ok: matches,
        detail: format!(
            "{} {} version {now}",
            fp.display_hash(),
            if matches {
                "matches"
            } else {
                "does not match the reference for"
            }
        ),
    });
    if !matches {
        return Err(EngineError::Failed(Failure {
            what: format!("the fixups ran, but the schema of \"{db}\" does not match the bundle's reference for version {now}"),
            advice: vec!["The bundle's fixups or its reference are faulty; ask its maintainers. The database works as the fixups left it.".into()],
            ..Failure::default()
        }));
    }
    Ok(FixupOutcome {
        database: db.into(),
        from: current,
        to: now,
        applied,
        skipped,
        backup,
        fingerprint: fp.hash,
        elapsed: started.elapsed(),
    })
}

fn apply(
    ctx: &mut Context<'_>,
    db: &str,
    pending: &[(Version, crate::script::Script)],
    applied: &mut Vec<String>,
) -> Result<(), String> {
    for (i, (version, script)) in pending.iter().enumerate() {
        log(
            ctx.obs,
            Level::Info,
            format!("fixup {version}: running {}", script.path.display()),
        );
        let mut session = ctx.session(db).map_err(|e| e.to_string())?;
        run_script(&mut session, script, ctx.obs).map_err(|e| e.to_string())?;
        let file = script.path.to_string_lossy().into_owned();
        record_fixup(
            &mut session.client,
            &file,
            &version.to_string(),
            &script.combined_sha256(),
        )
        .map_err(|e| e.to_string())?;
        applied.push(file);
        // The marker is checked once all files of a fixup version have run.
        let last_of_version = pending.get(i + 1).is_none_or(|(v, _)| v != version);
        if last_of_version {
            let found = read_version(&mut session.client, &ctx.bundle.version_query, db)
                .map_err(|e| e.to_string())?;
            if found < *version {
                return Err(format!(
                    "fixup {version} ran but the version marker says {found}: the fixup must move the marker; the bundle is faulty"
                ));
            }
        }
    }
    Ok(())
}

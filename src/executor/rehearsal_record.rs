//! A rehearsal's record: how long each step took, how the backup went, what the upgrade
//! rewrote, and what would stop or slow the real run. Written at the rehearsal's end (the
//! cut-over step), or where it stopped (the failure path).

use std::path::PathBuf;

use super::ctx::Ctx;
use super::error::StepError;
use super::spec::BackupPlan;
use super::state::{Changes, Record, Source};
use crate::checklist::{BackupOutput, StepId};
use crate::db::clone::{TableFile, table_files};
use crate::engine::plan::UpgradePlan;
use crate::events::Level;
use crate::rehearsal::{DumpTime, Rehearsal, Rewritten, StepTime};

/// The tables the upgrade rewrote or created in the copy, from the catalogs of both.
pub(super) fn rewritten_by_the_upgrade(
    ctx: &mut Ctx,
    plan: &UpgradePlan,
) -> Result<Vec<Rewritten>, StepError> {
    let schemas = ctx.bundle()?.schemas.clone();
    let before = table_files(&mut ctx.session(&plan.source_db)?.client, &schemas)?;
    let after = table_files(&mut ctx.session(&plan.work_db)?.client, &schemas)?;
    let found = rewritten(&before, &after);
    if !found.is_empty() {
        let words: Vec<String> = found
            .iter()
            .map(|t| {
                format!(
                    "{} ({}{} MB)",
                    t.table,
                    t.rows.map_or_else(String::new, |n| format!("{n} rows, ")),
                    t.bytes / 1_000_000
                )
            })
            .collect();
        ctx.log(
            Level::Info,
            format!("the upgrade rewrote or created: {}", words.join(", ")),
        );
    }
    Ok(found)
}

/// The record of this rehearsal; `dump_size`: the size of its backup, if it took one;
/// `stopped`: where and why it stopped, if it did.
pub(super) fn record(
    ctx: &Ctx,
    source: &Source,
    record: &Record,
    (plan, dump_size): (&UpgradePlan, Option<u64>),
    rewritten: Vec<Rewritten>,
    stopped: Option<String>,
) -> Result<Rehearsal, StepError> {
    let bundle = ctx.bundle()?;
    Ok(Rehearsal {
        run_id: ctx
            .run_id
            .as_ref()
            .map(|(id, _)| id.clone())
            .unwrap_or_default(),
        bundle: bundle.name.clone(),
        bundle_sha256: bundle.sha256.clone(),
        server: ctx.spec.server.host_display(),
        database: plan.source_db.clone(),
        // Matched on major versions: a rehearsal of 1.2 → 2 predicts an upgrade of 1.3 → 2.
        from: plan.from.major.to_string(),
        to: plan.to.major.to_string(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        database_size: source.size,
        dump_size,
        steps: record
            .step_times
            .iter()
            .map(|(s, d)| StepTime {
                step: s.key().to_owned(),
                seconds: d.as_secs_f64(),
            })
            .collect(),
        problems: record.problems.clone(),
        copied_from_backup: record.copied_from_backup,
        dump: dump_time(ctx, record),
        rewritten,
        stopped,
    })
}

/// Removes the rehearsal's backup — it was only for measuring; the real run takes its
/// own — and returns its size.
pub(super) fn discard_backup(changes: &Changes) -> Option<u64> {
    let Some(BackupOutput::Taken { path, size, .. }) = &changes.backup else {
        return None;
    };
    let path = std::path::Path::new(path);
    let _ = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    let _ = std::fs::remove_file(crate::backup::metadata_path_of(path));
    Some(*size)
}

/// After a rehearsal stopped (the failure path has undone what it made): its record, with
/// where it stopped, so that the problem is in the rehearsal's report like any other.
/// Returns the report's path.
pub(super) fn record_stopped(
    ctx: &mut Ctx,
    source: &Source,
    changes: &Changes,
    rec: &mut Record,
    why: &str,
) -> Option<PathBuf> {
    let plan = source.upgrade.as_ref()?;
    rec.problems.push(format!(
        "the rehearsal stopped: {why}; the real run would stop there too"
    ));
    let dump_size = discard_backup(changes);
    let rehearsal = record(
        ctx,
        source,
        rec,
        (plan, dump_size),
        Vec::new(),
        Some(why.to_owned()),
    )
    .ok()?;
    match crate::rehearsal::write(&ctx.spec.data_dir, &rehearsal) {
        Ok(md) => Some(md),
        Err(e) => {
            ctx.log(
                Level::Warning,
                format!("cannot write the rehearsal's record: {e}"),
            );
            None
        }
    }
}

/// How the backup went: its format, its duration, and the steps it ran beside.
fn dump_time(ctx: &Ctx, record: &Record) -> Option<DumpTime> {
    let (took, alongside) = record.backup_took?;
    let BackupPlan::Into { format, .. } = &ctx.spec.backup else {
        return None;
    };
    let beside = record
        .step_times
        .iter()
        .filter(|(s, _)| {
            matches!(
                s,
                StepId::Banner | StepId::CloneUpgrade | StepId::SanityChecks
            )
        })
        .map(|(_, d)| d.as_secs_f64())
        .sum();
    Some(DumpTime {
        format: format.name().into(),
        jobs: format.jobs(),
        seconds: took.as_secs_f64(),
        alongside,
        beside_seconds: if alongside { beside } else { 0.0 },
    })
}

/// The tables of `after` (the upgraded copy) with a file `before` (the source) did not have:
/// the same OID with a new file was rewritten, a new OID was created.
fn rewritten(before: &[TableFile], after: &[TableFile]) -> Vec<Rewritten> {
    after
        .iter()
        .filter_map(|t| {
            let was = before.iter().find(|b| b.oid == t.oid);
            if was.is_some_and(|b| b.filenode == t.filenode) {
                return None;
            }
            Some(Rewritten {
                table: t.name.clone(),
                rows: (t.rows >= 0.0).then(|| t.rows.round() as u64),
                bytes: t.bytes,
                created: was.is_none(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(oid: u32, name: &str, filenode: u32, rows: f64) -> TableFile {
        TableFile {
            oid,
            name: name.into(),
            filenode,
            rows,
            bytes: 8192,
        }
    }

    #[test]
    fn a_new_file_is_a_rewrite_a_new_oid_a_creation() {
        let before = [
            file(1, "app.big", 10, 1e6),
            file(2, "app.same", 20, 5.0),
            file(3, "app.dropped", 30, 1.0),
        ];
        let after = [
            file(1, "app.big", 11, 1e6),
            file(2, "app.same", 20, 5.0),
            file(4, "app.new", 40, -1.0),
        ];
        let found = rewritten(&before, &after);
        assert_eq!(
            found,
            vec![
                Rewritten {
                    table: "app.big".into(),
                    rows: Some(1_000_000),
                    bytes: 8192,
                    created: false
                },
                Rewritten {
                    table: "app.new".into(),
                    rows: None,
                    bytes: 8192,
                    created: true
                },
            ]
        );
    }
}

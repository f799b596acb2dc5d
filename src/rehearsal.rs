//! What a rehearsal measured — each step's duration with the sizes it depended on, every
//! problem found — and the downtime it predicts, kept in the data directory so that the real
//! run can say what to expect.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The steps that happen during the downtime (the plan and the confirmations come before it).
pub const DOWNTIME_STEPS: [&str; 9] = [
    "connected_users",
    "disk_space",
    "fingerprint",
    "clone",
    "backup",
    "banner",
    "clone_upgrade",
    "sanity_checks",
    "cut_over",
];

/// Steps whose duration grows with the database's size. The backup's time is what is left of
/// it once the clone is upgraded and checked (it runs alongside them).
const SIZE_BOUND_STEPS: [&str; 4] = ["clone", "backup", "clone_upgrade", "sanity_checks"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTime {
    pub step: String,
    pub seconds: f64,
}

/// One rehearsal's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rehearsal {
    pub run_id: String,
    pub bundle: String,
    pub bundle_sha256: String,
    pub server: String,
    pub database: String,
    pub from: String,
    pub to: String,
    pub at: String,
    /// The rehearsed database's size (bytes).
    pub database_size: u64,
    pub dump_size: Option<u64>,
    pub steps: Vec<StepTime>,
    /// What would stop or slow the real run.
    pub problems: Vec<String>,
    /// The copy was restored from the backup (users were connected), so the clone step took
    /// longer than the real `CREATE DATABASE … TEMPLATE` will.
    pub copied_from_backup: bool,
    /// How the backup went (absent in records of earlier versions).
    #[serde(default)]
    pub dump: Option<DumpTime>,
    /// The tables the upgrade rewrote or created: what its duration depends on.
    #[serde(default)]
    pub rewritten: Vec<Rewritten>,
    /// Where and why the rehearsal stopped (the real run would stop there too); None: it went
    /// through. A stopped rehearsal predicts nothing.
    #[serde(default)]
    pub stopped: Option<String>,
}

/// A table the upgrade gave a new file: rewritten (ALTER TABLE … TYPE and the like) or created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rewritten {
    /// `schema.table`
    pub table: String,
    /// Rows after the upgrade (the planner's count after ANALYZE; None if unknown).
    pub rows: Option<u64>,
    pub bytes: u64,
    /// New in this version, as opposed to rewritten.
    pub created: bool,
}

/// The rehearsal's backup: its format, how long it took, and what it ran beside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpTime {
    /// "custom" or "directory".
    pub format: String,
    pub jobs: u32,
    /// From pg_dump's start to the verified backup.
    pub seconds: f64,
    /// Taken alongside the upgrade of the copy (not before it, as with users connected).
    pub alongside: bool,
    /// The steps it ran beside: the upgrade of the copy and the sanity checks.
    pub beside_seconds: f64,
}

impl Rehearsal {
    /// The downtime to expect for a database of `size` bytes (the rehearsed size when None):
    /// the downtime steps, the size-bound ones scaled linearly by size.
    pub fn predicted_downtime(&self, size: Option<u64>) -> f64 {
        self.expected(size).iter().map(|s| s.seconds).sum()
    }

    /// Seconds of downtime per byte of database: the size-bound steps over the rehearsed size.
    pub fn per_byte(&self) -> f64 {
        if self.database_size == 0 {
            return 0.0;
        }
        (self.predicted_downtime(None) - self.predicted_downtime(Some(0)))
            / self.database_size as f64
    }

    /// Each downtime step's expected duration for a database of `size` bytes.
    pub fn expected(&self, size: Option<u64>) -> Vec<StepTime> {
        let ratio = match (size, self.database_size) {
            (Some(s), r) if r > 0 => s as f64 / r as f64,
            _ => 1.0,
        };
        self.steps
            .iter()
            .filter(|s| DOWNTIME_STEPS.contains(&s.step.as_str()))
            .map(|s| {
                let scale = if SIZE_BOUND_STEPS.contains(&s.step.as_str()) {
                    ratio
                } else {
                    1.0
                };
                StepTime {
                    step: s.step.clone(),
                    seconds: s.seconds * scale,
                }
            })
            .collect()
    }
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("rehearsals")
}

/// Writes the record (JSON) and a report a DBA can read (Markdown); returns the Markdown's path.
pub fn write(data_dir: &Path, r: &Rehearsal) -> std::io::Result<PathBuf> {
    let dir = dir(data_dir);
    crate::paths::private_dir(&dir)?;
    let json = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    crate::paths::write_private(&dir.join(format!("{}.json", r.run_id)), json + "\n")?;
    let md = dir.join(format!("{}.md", r.run_id));
    crate::paths::write_private(&md, markdown(r))?;
    Ok(md)
}

/// The newest rehearsal of this bundle's step `from` → `to` that went through (one that
/// stopped measured only part of the way).
pub fn latest(data_dir: &Path, bundle: &str, from: &str, to: &str) -> Option<Rehearsal> {
    let mut found: Vec<Rehearsal> = fs::read_dir(dir(data_dir))
        .ok()?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_str::<Rehearsal>(&fs::read_to_string(e.path()).ok()?).ok())
        .filter(|r| r.bundle == bundle && r.from == from && r.to == to && r.stopped.is_none())
        .collect();
    found.sort_by(|a, b| a.at.cmp(&b.at));
    found.pop()
}

fn markdown(r: &Rehearsal) -> String {
    let mut s = format!(
        "# Rehearsal of {} {} → {} on {}\n\n- Database: {} on {} ({} bytes)\n- Rehearsed: {}\n- Run id: {}\n\n",
        r.bundle, r.from, r.to, r.database, r.database, r.server, r.database_size, r.at, r.run_id
    );
    if let Some(why) = &r.stopped {
        s.push_str(&format!(
            "**The rehearsal stopped.** The real run would stop there too, and undo what it did; \
             fix the problem and rehearse again. No downtime can be predicted from a rehearsal that stopped \
             (the steps below are the ones it got through).\n\n```text\n{why}\n```\n\n"
        ));
        s.push_str(&steps_and_problems(r));
        return s;
    }
    s.push_str(&format!(
        "**Downtime to expect on this database: {:.1} s** (the steps from the connected-user check to the cut-over; \
         the size-bound steps — backup, clone and upgrade, sanity checks — grow with the database's size).\n\n",
        r.predicted_downtime(None)
    ));
    if r.database_size > 0 {
        let gb = 1e9;
        let (fixed, per_gb) = (r.predicted_downtime(Some(0)), r.per_byte() * gb);
        s.push_str(&format!(
            "On a database of another size (the production database, if this one was a test copy): \
             about {fixed:.1} s + {per_gb:.1} s per GB — for 1 GB {:.0} s, 10 GB {:.0} s, 100 GB {:.0} s. \
             The real run, and `pgstep plan` on the production server, say this for the database they are given.\n\n",
            fixed + per_gb,
            fixed + 10.0 * per_gb,
            fixed + 100.0 * per_gb
        ));
    }
    s.push_str(&steps_and_problems(r));
    s
}

/// The steps' durations, the backup, what the upgrade rewrote, the problems.
fn steps_and_problems(r: &Rehearsal) -> String {
    let mut s = String::new();
    s.push_str("| Step | Seconds |\n|---|---:|\n");
    for st in &r.steps {
        s.push_str(&format!("| {} | {:.2} |\n", st.step, st.seconds));
    }
    if let Some(d) = r.dump_size {
        s.push_str(&format!("\nBackup size: {d} bytes.\n"));
    }
    if let Some(d) = &r.dump {
        s.push_str(&format!(
            "\nBackup: {} format{}, {:.1} s from start to verified{}.\n",
            d.format,
            if d.format == "directory" {
                format!(" with {} workers", d.jobs)
            } else {
                String::new()
            },
            d.seconds,
            if d.alongside {
                format!(
                    ", alongside the upgrade and checks ({:.1} s): {}",
                    d.beside_seconds,
                    if d.seconds <= d.beside_seconds {
                        "it cost no downtime"
                    } else {
                        "the cut-over waited for it"
                    }
                )
            } else {
                ", before the copy was made".into()
            }
        ));
    }
    if r.copied_from_backup {
        s.push_str("\nUsers were connected, so the copy was restored from the backup: the real clone (CREATE DATABASE … TEMPLATE) is faster than this rehearsal's.\n");
    }
    if !r.rewritten.is_empty() {
        s.push_str("\n## What the upgrade rewrote\n\nThe upgrade's duration grows with these tables (each got a new file).\n\n| Table | | Rows | Bytes |\n|---|---|---:|---:|\n");
        for t in &r.rewritten {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                t.table,
                if t.created { "created" } else { "rewritten" },
                t.rows.map_or_else(|| "?".into(), |n| n.to_string()),
                t.bytes
            ));
        }
    }
    s.push_str("\n## Problems found\n\n");
    if r.problems.is_empty() {
        s.push_str("None.\n");
    }
    for p in &r.problems {
        s.push_str(&format!("- {}\n", p.replace('\n', "\n  ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Rehearsal {
        let st = |step: &str, seconds| StepTime {
            step: step.into(),
            seconds,
        };
        Rehearsal {
            run_id: "r".into(),
            bundle: "clinic".into(),
            bundle_sha256: String::new(),
            server: "s".into(),
            database: "clinic_v1".into(),
            from: "1".into(),
            to: "2".into(),
            at: "2026-11-21T10:00:00Z".into(),
            database_size: 100,
            dump_size: None,
            steps: vec![
                st("plan", 9.0),
                st("connected_users", 0.5),
                st("backup", 2.0),
                st("clone_upgrade", 4.0),
                st("sanity_checks", 1.0),
                st("cut_over", 0.1),
            ],
            problems: vec![],
            copied_from_backup: false,
            dump: None,
            rewritten: vec![],
            stopped: None,
        }
    }

    #[test]
    fn the_prediction_counts_the_downtime_steps_and_scales_the_size_bound_ones() {
        let r = r();
        assert!(
            (r.predicted_downtime(None) - 7.6).abs() < 1e-9,
            "the plan step is before the downtime"
        );
        assert!((r.predicted_downtime(Some(200)) - (0.5 + 4.0 + 8.0 + 2.0 + 0.1)).abs() < 1e-9);
        // 0.6 s whatever the size, 7 s for the 100 rehearsed bytes.
        assert!((r.predicted_downtime(Some(0)) - 0.6).abs() < 1e-9);
        assert!((r.per_byte() - 0.07).abs() < 1e-9);
        let md = markdown(&r);
        assert!(
            md.contains("about 0.6 s + 70000000.0 s per GB"),
            "the report scales the downtime to another size: {md}"
        );
    }
}

//! Every screen of the wizard, rendered without a terminal or a database: the states are built
//! by feeding the App executor events, keys and clock ticks (never real time), and compared as
//! text with the committed snapshots in tests/snapshots/.
//!
//! PGSTEP_UPDATE_SNAPSHOTS=1 cargo test --test screens   writes them instead; then READ them.

use std::path::PathBuf;
use std::time::Duration;

use pgstep::bundle::Version;
use pgstep::checklist::{
    BackupOutput, CheckResult, ExecEvent, ManualItem, PlanKind, PlanSummary, SessionInfo,
    SpaceLine, StepId, StepOutput, StepReport, StepStatus,
};
use pgstep::events::{Event, Level, Unit};
use pgstep::ui::app::{App, Dialog};
use pgstep::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::Color;

// ---------------------------------------------------------------------------------------------
// Snapshots

const UPDATE: &str = "PGSTEP_UPDATE_SNAPSHOTS";

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// The buffer as text: one line per row, trailing spaces trimmed, wide characters once.
fn buffer_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..buf.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let symbol = buf[(x, y)].symbol();
            skip = ratatui::text::Span::raw(symbol).width().saturating_sub(1);
            line.push_str(symbol);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Compares with tests/snapshots/<name>.txt, or writes it when PGSTEP_UPDATE_SNAPSHOTS=1.
fn check_snapshot(name: &str, text: &str) -> Result<(), String> {
    let path = snapshot_dir().join(format!("{name}.txt"));
    if std::env::var(UPDATE).is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(snapshot_dir()).expect("create tests/snapshots");
        std::fs::write(&path, text).expect("write the snapshot");
        println!("wrote {}", path.display());
        return Ok(());
    }
    match std::fs::read_to_string(&path) {
        Ok(want) if want == text => Ok(()),
        Ok(want) => Err(format!(
            "{name}: the screen differs from {}\n--- expected\n{want}--- got\n{text}\
             (if the change is intended: {UPDATE}=1 cargo test --test screens, then read the file)",
            path.display()
        )),
        Err(_) => Err(format!(
            "{name}: no snapshot at {}; create it with {UPDATE}=1 cargo test --test screens, \
             read it, and commit it",
            path.display()
        )),
    }
}

fn render(app: &App, width: u16, height: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    term.draw(|f| pgstep::ui::view::render(f, app))
        .expect("draw");
    term.backend().buffer().clone()
}

fn screen(app: &App, width: u16, height: u16) -> String {
    buffer_text(&render(app, width, height))
}

// ---------------------------------------------------------------------------------------------
// A run, driven by hand

struct Run {
    app: App,
    now: u64,
}

impl Run {
    fn new(kind: PlanKind) -> Self {
        let mut app = App::new(kind);
        app.tick(0);
        let _ = app.start();
        Self { app, now: 0 }
    }

    fn wait(&mut self, ms: u64) -> &mut Self {
        self.now += ms;
        self.app.tick(self.now);
        self
    }

    fn exec(&mut self, e: ExecEvent) -> &mut Self {
        let _ = self.app.on_exec(e);
        self
    }

    fn started(&mut self, step: StepId) -> &mut Self {
        self.exec(ExecEvent::StepStarted(step))
    }

    fn finished(&mut self, step: StepId, status: StepStatus, ms: u64, output: StepOutput) {
        self.wait(ms);
        self.exec(ExecEvent::StepDone {
            step,
            status,
            output,
            elapsed: Duration::from_millis(ms),
        });
    }

    fn done(&mut self, step: StepId, ms: u64, output: StepOutput) {
        self.started(step);
        self.finished(step, StepStatus::Done, ms, output);
    }

    fn failed(&mut self, step: StepId, ms: u64, error: &str) {
        self.wait(ms);
        self.exec(ExecEvent::StepFailed {
            step,
            error: error.into(),
            elapsed: Duration::from_millis(ms),
            refused: false,
            location: None,
        });
    }

    fn log(&mut self, text: &str) -> &mut Self {
        self.exec(ExecEvent::Engine(Event::Log {
            level: Level::Info,
            text: text.into(),
        }))
    }

    fn notice(&mut self, text: &str) -> &mut Self {
        self.exec(ExecEvent::Engine(Event::Log {
            level: Level::Notice,
            text: text.into(),
        }))
    }

    fn phase(&mut self, name: &str) -> &mut Self {
        self.exec(ExecEvent::Engine(Event::Phase { name: name.into() }))
    }

    fn check(&mut self, c: &CheckResult) -> &mut Self {
        self.exec(ExecEvent::Engine(Event::Check {
            name: c.name.clone(),
            ok: c.ok,
            detail: c.detail.clone(),
        }))
    }

    fn progress(&mut self, unit: Unit, done: u64, total: Option<u64>) -> &mut Self {
        self.exec(ExecEvent::Engine(Event::Progress { unit, done, total }))
    }

    /// Two progress reports two seconds apart, so that the rate and time left show.
    fn progressing(&mut self, unit: Unit, from: u64, to: u64, total: Option<u64>) -> &mut Self {
        self.progress(unit, from, total);
        self.wait(2_000);
        self.progress(unit, to, total)
    }

    fn key(&mut self, code: KeyCode) -> &mut Self {
        let _ = self.app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        self
    }

    fn ctrl(&mut self, c: char) -> &mut Self {
        let _ = self
            .app
            .on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
        self
    }

    fn keys(&mut self, codes: &[KeyCode]) -> &mut Self {
        for c in codes {
            self.key(*c);
        }
        self
    }

    fn type_text(&mut self, text: &str) -> &mut Self {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
        self
    }

    fn undo_done(&mut self, ms: u64, undone: &[&str], advice: &[&str]) {
        // As measured by the failure path: nothing wrote to the source.
        let unchanged = pgstep::checklist::SourceVerdict::Unchanged {
            db: "clinic".into(),
        };
        self.undo_done_measured(ms, undone, advice, unchanged);
    }

    fn undo_done_measured(
        &mut self,
        ms: u64,
        undone: &[&str],
        advice: &[&str],
        source: pgstep::checklist::SourceVerdict,
    ) {
        self.wait(ms);
        self.exec(ExecEvent::FailurePathDone {
            undone: undone.iter().map(|s| s.to_string()).collect(),
            advice: advice.iter().map(|s| s.to_string()).collect(),
            changed_anything: true,
            source: Some(source),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// What the steps report, as the executor would

fn v(major: u32) -> Version {
    Version::new(major, 0)
}

fn plan_summary() -> PlanSummary {
    PlanSummary {
        application: "clinic".into(),
        server: "db1.practice.lan:5432".into(),
        source_db: "clinic".into(),
        target_db: "clinic_v3".into(),
        from: v(1),
        to: v(3),
        lines: vec![
            "step 1 → 2: 3 script(s), 214 statement(s)".into(),
            "step 2 → 3: 2 script(s), 96 statement(s), in one transaction".into(),
        ],
        run_id: Some("20261121-2203-clinic".into()),
        journal: Some("/var/lib/pgstep/runs/20261121-2203-clinic/journal.jsonl".into()),
        expected: Vec::new(),
        rehearsal: None,
        backup: Some(pgstep::checklist::BackupChoice {
            format: "directory format with 3 parallel pg_dump workers".into(),
            why: "42.0 GB of table data over 118 tables, 7 spare core(s): estimated 2.9× as fast as one file".into(),
        }),
    }
}

fn session(pid: i32, user: &str, app: &str, client: &str, age: i64, state: &str) -> SessionInfo {
    SessionInfo {
        pid,
        user: user.into(),
        application: app.into(),
        client: client.into(),
        since: "2026-11-21T19:12:00+00".into(),
        age_seconds: age,
        state: state.into(),
    }
}

fn two_sessions() -> Vec<SessionInfo> {
    vec![
        session(
            48213,
            "dr_meier",
            "clinic-frontdesk",
            "10.0.4.17",
            10_380,
            "idle",
        ),
        session(
            48377,
            "importer",
            "lab-import (cron)",
            "10.0.4.30",
            75,
            "idle in transaction",
        ),
    ]
}

fn disk_measured() -> Vec<SpaceLine> {
    vec![
        SpaceLine {
            what: "clone of clinic (data directory) /var/lib/postgresql/16/main: 2.4 GB needed, 61.8 GB free".into(),
            required: 2_400_000_000,
            available: Some(61_800_000_000),
        },
        SpaceLine {
            what: "backup /srv/backups/pgstep: 0.9 GB needed, 1.3 GB free".into(),
            required: 900_000_000,
            available: Some(1_300_000_000),
        },
    ]
}

fn disk_unmeasurable() -> Vec<SpaceLine> {
    vec![
        SpaceLine {
            what: "clone of clinic (data directory): 2.4 GB needed, free space unknown — confirm there is room (the server is on another machine)".into(),
            required: 2_400_000_000,
            available: None,
        },
        SpaceLine {
            what: "backup /srv/backups/pgstep: 0.9 GB needed, 41.2 GB free".into(),
            required: 900_000_000,
            available: Some(41_200_000_000),
        },
    ]
}

const HASH: &str = "9f2c4e71d0a85b3e6c1f7a9d2b4e8c0f5a3d7e1b9c6f2a4d8e0b3c5f7a1d9e2c";

fn fingerprint_ok() -> StepOutput {
    StepOutput::Fingerprint {
        hash: HASH.into(),
        matches: true,
        reference: Some(v(1)),
        diff: String::new(),
    }
}

fn fingerprint_diff() -> StepOutput {
    StepOutput::Fingerprint {
        hash: HASH.into(),
        matches: false,
        reference: Some(v(1)),
        diff: "  + added    index clinic.patients_lastname_idx: btree (lastname)\n  \
               - removed  column clinic.visits.legacy_code: text\n  \
               ~ changed  column clinic.patients.phone\n      \
               expected: character varying(20)\n      \
               found:    character varying(40)\n"
            .into(),
    }
}

fn backup_taken() -> StepOutput {
    StepOutput::Backup(BackupOutput::Taken {
        path: "/srv/backups/pgstep/clinic-v1-20261121-2204.dump".into(),
        size: 912_400_000,
        sha256: HASH.into(),
        entries: 187,
    })
}

fn upgraded() -> StepOutput {
    StepOutput::Upgraded(vec![
        StepReport {
            from: v(1),
            to: v(2),
            scripts: 3,
            statements: 214,
            skipped_blocks: 0,
            elapsed: Duration::from_millis(131_400),
        },
        StepReport {
            from: v(2),
            to: v(3),
            scripts: 2,
            statements: 96,
            skipped_blocks: 0,
            elapsed: Duration::from_millis(48_900),
        },
    ])
}

fn check(name: &str, ok: bool, detail: &str) -> CheckResult {
    CheckResult::new(name, ok, detail)
}

fn checks_passed() -> Vec<CheckResult> {
    vec![
        check(
            "fingerprint",
            true,
            "sha256:9f2c4e71 matches the reference for version 3",
        ),
        check("version marker", true, "3 (expected 3)"),
        check("plausibility: patients", true, "18342 rows on both"),
        check("plausibility: visits per year", true, "12 rows equal"),
        check("row counts", true, "41 tables equal"),
        check("privileges", true, "3 roles keep their privileges"),
        check("amcheck", true, "57 indexes verified"),
        check("analyze", true, "done in 3.1s"),
    ]
}

fn checks_failed() -> Vec<CheckResult> {
    let mut c = checks_passed();
    c[5] = check(
        "privileges: clinic_staff",
        false,
        "lost SELECT on clinic.visits (the table was recreated by 0003_visits.sql)\nsecond line",
    );
    c
}

// ---------------------------------------------------------------------------------------------
// Walking an upgrade to a step

const CONFIRM_ALL: [KeyCode; 5] = [
    KeyCode::Char(' '),
    KeyCode::Char(' '),
    KeyCode::Char(' '),
    KeyCode::Char(' '),
    KeyCode::Enter,
];

/// An upgrade in which every step up to (not including) `until` went well.
fn upgrade_until(until: StepId) -> Run {
    let mut r = Run::new(PlanKind::Upgrade);
    for step in PlanKind::Upgrade.steps() {
        if *step == until {
            return r;
        }
        finish_step(&mut r, *step);
        if *step == StepId::SanityChecks {
            await_backup(&mut r);
        }
    }
    r
}

/// The Backup step looked at while the clone is upgraded (the backup going on alongside),
/// after `then` happened.
fn backup_seen_while_upgrading(then: impl FnOnce(&mut Run)) -> App {
    let mut r = upgrade_until(StepId::CloneUpgrade);
    r.started(StepId::CloneUpgrade);
    r.wait(3_000);
    then(&mut r);
    r.app.viewing = r
        .app
        .checklist
        .steps
        .iter()
        .position(|s| s.id == StepId::Backup);
    r.app
}

/// The wait for the backup taken in the background, before the cut-over is asked.
fn await_backup(r: &mut Run) {
    r.started(StepId::Backup);
    r.log("pg_dump: dumping contents of table \"clinic.visits\"");
    r.log("backup verified: 187 archive entries, 41 table(s), 912400000 bytes");
    r.finished(StepId::Backup, StepStatus::Done, 2_300, backup_taken());
}

fn cloned() -> StepOutput {
    StepOutput::Cloned {
        db: "clinic_v3".into(),
        source: "clinic".into(),
        size: 2_140_000_000,
        how: "FILE_COPY".into(),
        carried: vec![
            "owner clinic_owner".into(),
            "comment".into(),
            "2 settings".into(),
            "privileges".into(),
        ],
    }
}

fn finish_step(r: &mut Run, step: StepId) {
    use StepId::*;
    match step {
        Plan => {
            r.started(Plan);
            r.log("clinic on db1.practice.lan:5432: \"clinic\" is at version 1; upgrading to 3 as \"clinic_v3\"");
            r.finished(
                Plan,
                StepStatus::Done,
                1_200,
                StepOutput::Plan(plan_summary()),
            );
        }
        Confirmations => {
            r.wait(38_000).keys(&CONFIRM_ALL);
        }
        ConnectedUsers => {
            r.started(ConnectedUsers);
            r.log("new connections to \"clinic\" are blocked for the downtime (except postgres)");
            r.log("nobody else is connected to \"clinic\"");
            r.finished(
                ConnectedUsers,
                StepStatus::Done,
                2_100,
                StepOutput::Sessions {
                    sessions: vec![],
                    unblockable: vec!["postgres".into()],
                },
            );
        }
        DiskSpace => r.done(DiskSpace, 300, StepOutput::Disk(disk_measured())),
        Fingerprint => r.done(Fingerprint, 800, fingerprint_ok()),
        Clone => r.done(Clone, 2_100, cloned()),
        Backup => {
            // It goes on in the background; the checklist waits for it before the cut-over.
            r.started(Backup);
            r.log("pg_dump of \"clinic\" goes on in the background while the clone is upgraded and checked; the cut-over waits until it is verified");
            r.finished(
                Backup,
                StepStatus::Running,
                40,
                StepOutput::Nothing {
                    note: "pg_dump of \"clinic\" goes on in the background while the clone is upgraded and checked; the cut-over waits until it is verified".into(),
                },
            );
        }
        Banner => r.done(
            Banner,
            100,
            StepOutput::Banner {
                message: Some(
                    "upgrade clinic v1 → v3 in progress: please log off; the system is back soon"
                        .into(),
                ),
            },
        ),
        CloneUpgrade => {
            r.started(CloneUpgrade);
            r.phase("step 1 → 2")
                .log("running sql/v2/0001_patients.sql");
            r.phase("step 2 → 3").log("running sql/v3/0001_visits.sql");
            r.finished(CloneUpgrade, StepStatus::Done, 180_300, upgraded());
        }
        SanityChecks => {
            r.started(SanityChecks);
            for c in checks_passed() {
                r.check(&c);
            }
            r.finished(
                SanityChecks,
                StepStatus::Done,
                12_400,
                StepOutput::Checks(checks_passed()),
            );
        }
        CutOver => {
            r.wait(5_000)
                .key(KeyCode::Enter)
                .type_text("clinic_v3")
                .key(KeyCode::Enter);
            r.done(
                CutOver,
                900,
                StepOutput::CutOver {
                    new_db: "clinic_v3".into(),
                    old_db: "clinic".into(),
                    old_open: None,
                },
            );
        }
        _ => unreachable!("not an upgrade step"),
    }
}

/// An upgrade that ran `step` for a while, with progress in `unit`.
fn running(step: StepId, unit: Unit, from: u64, to: u64, total: Option<u64>) -> App {
    let mut r = upgrade_until(step);
    r.started(step);
    r.wait(3_000);
    if step == StepId::CloneUpgrade {
        r.phase("step 1 → 2")
            .log("running sql/v2/0001_patients.sql");
        r.notice("NOTICE:  table \"visits_legacy\" does not exist, skipping");
        r.log("running sql/v2/0002_visits_add_index_concurrently.sql");
    }
    r.progressing(unit, from, to, total);
    r.app
}

fn finished_upgrade() -> Run {
    let mut r = upgrade_until(StepId::CutOver);
    finish_step(&mut r, StepId::CutOver);
    r.app.report = Some(PathBuf::from(
        "/var/lib/pgstep/runs/20261121-2203-clinic/report.md",
    ));
    r
}

/// The cut-over went through, but the server went away before the old database was made
/// read-only and closed: the screen must not say it was.
fn finished_upgrade_old_left_open() -> App {
    let mut r = upgrade_until(StepId::CutOver);
    r.wait(5_000)
        .key(KeyCode::Enter)
        .type_text("clinic_v3")
        .key(KeyCode::Enter);
    r.started(StepId::CutOver);
    r.finished(
        StepId::CutOver,
        StepStatus::Warning,
        900,
        StepOutput::CutOver {
            new_db: "clinic_v3".into(),
            old_db: "clinic".into(),
            old_open: Some("the server could not be reached".into()),
        },
    );
    r.app.report = Some(PathBuf::from(
        "/var/lib/pgstep/runs/20261121-2203-clinic/report.md",
    ));
    r.app
}

/// A rehearsal that got through with one failed check: nothing users see changed.
fn finished_rehearsal() -> App {
    use StepId::*;
    let mut r = Run::new(PlanKind::Rehearsal);
    for step in [Plan, ConnectedUsers, DiskSpace, Fingerprint, Clone, Backup] {
        finish_step(&mut r, step);
    }
    r.started(Banner);
    r.finished(
        Banner,
        StepStatus::Skipped,
        0,
        StepOutput::Nothing {
            note: "rehearsal: no banner, users see nothing".into(),
        },
    );
    finish_step(&mut r, CloneUpgrade);
    let checks = vec![
        check(
            "target fingerprint",
            true,
            "sha256:9f2c4e71 matches version 3",
        ),
        check(
            "plausibility: visits kept",
            false,
            "old gives [48211], new gives [48209]",
        ),
    ];
    r.started(SanityChecks);
    r.finished(
        SanityChecks,
        StepStatus::Warning,
        12_400,
        StepOutput::Checks(checks),
    );
    await_backup(&mut r);
    r.done(
        CutOver,
        300,
        StepOutput::Rehearsed {
            note: "rehearsal done: about 197.5 s of downtime to expect on \"clinic\"; 1 problem(s) found; record /var/lib/pgstep/rehearsals/20261121T2203Z-clinic-4711.md".into(),
            downtime: 197.5,
            problems: vec!["sanity check failed: plausibility: visits kept: old gives [48211], new gives [48209]; the real run would stop at the sanity checks".into()],
            record: "/var/lib/pgstep/rehearsals/20261121T2203Z-clinic-4711.md".into(),
        },
    );
    r.app.report = Some(PathBuf::from(
        "/var/lib/pgstep/reports/20261121T2203Z-clinic-4711.md",
    ));
    r.app
}

/// The finished upgrade, looking back at one step's screen.
fn looking_at(step: StepId) -> App {
    let mut app = finished_upgrade().app;
    app.viewing = app.checklist.steps.iter().position(|s| s.id == step);
    app
}

fn failed_at_clone() -> Run {
    let mut r = upgrade_until(StepId::CloneUpgrade);
    r.started(StepId::CloneUpgrade);
    r.phase("step 1 → 2")
        .log("running sql/v2/0001_patients.sql");
    r.log("running sql/v2/0002_visits.sql");
    r.failed(
        StepId::CloneUpgrade,
        61_000,
        "sql/v2/0002_visits.sql line 48: ERROR:  column \"legacy_code\" does not exist (SQLSTATE 42703)\n  ALTER TABLE clinic.visits DROP COLUMN legacy_code",
    );
    r
}

// ---------------------------------------------------------------------------------------------
// The states

fn confirmations_asking() -> App {
    let mut r = upgrade_until(StepId::Confirmations);
    r.wait(12_000)
        .keys(&[KeyCode::Char(' '), KeyCode::Char(' ')]);
    r.app
}

fn sessions_asking() -> Run {
    let mut r = upgrade_until(StepId::ConnectedUsers);
    r.started(StepId::ConnectedUsers);
    r.log("new connections to \"clinic\" are blocked for the downtime (except postgres)");
    r.finished(
        StepId::ConnectedUsers,
        StepStatus::Done,
        2_100,
        StepOutput::Sessions {
            sessions: two_sessions(),
            unblockable: vec!["postgres".into()],
        },
    );
    r.wait(4_000).key(KeyCode::Down);
    r
}

fn disk_asking() -> Run {
    let mut r = upgrade_until(StepId::DiskSpace);
    r.done(
        StepId::DiskSpace,
        400,
        StepOutput::Disk(disk_unmeasurable()),
    );
    r
}

fn fingerprint_asking() -> Run {
    let mut r = upgrade_until(StepId::Fingerprint);
    r.done(StepId::Fingerprint, 900, fingerprint_diff());
    r
}

fn cutover_asking() -> Run {
    let mut r = upgrade_until(StepId::CutOver);
    r.wait(3_000);
    r
}

fn fixup_plan() -> PlanSummary {
    PlanSummary {
        target_db: "clinic".into(),
        from: Version::new(3, 0),
        to: Version::new(3, 2),
        lines: vec![
            "fixup 3.1: sql/fixups/3.1/0001_phone_index.sql".into(),
            "fixup 3.2: sql/fixups/3.2/0001_visit_codes.sql".into(),
        ],
        ..plan_summary()
    }
}

fn fixups_until_apply() -> Run {
    let mut r = Run::new(PlanKind::Fixup);
    r.done(StepId::Plan, 900, StepOutput::Plan(fixup_plan()));
    r.wait(20_000).keys(&CONFIRM_ALL);
    r.done(
        StepId::ConnectedUsers,
        1_000,
        StepOutput::Sessions {
            sessions: vec![],
            unblockable: vec![],
        },
    );
    r.done(StepId::DiskSpace, 200, StepOutput::Disk(disk_measured()));
    r.done(StepId::Fingerprint, 700, fingerprint_ok());
    r.done(StepId::Backup, 40_000, backup_taken());
    r.done(StepId::Banner, 100, StepOutput::Banner { message: None });
    r
}

fn restore_plan() -> PlanSummary {
    PlanSummary {
        source_db: "/srv/backups/pgstep/clinic-v1-20261121-2204.dump (backup of \"clinic\", 2026-11-21 22:04)".into(),
        target_db: "clinic_restored".into(),
        from: v(1),
        to: v(1),
        lines: vec![format!("restore 912400000 bytes (sha256 {HASH}) with 2 job(s)")],
        ..plan_summary()
    }
}

fn restore_until_restore() -> Run {
    let mut r = Run::new(PlanKind::Restore);
    r.done(StepId::Plan, 600, StepOutput::Plan(restore_plan()));
    r.started(StepId::DiskSpace);
    r.finished(
        StepId::DiskSpace,
        StepStatus::Skipped,
        10,
        StepOutput::Nothing {
            note: "the restored size is known only after the restore; pg_restore stops with a clear error if the disk fills, and the partial database is dropped".into(),
        },
    );
    r
}

fn bootstrap_plan() -> PlanSummary {
    PlanSummary {
        source_db: String::new(),
        target_db: "clinic_test".into(),
        from: v(1),
        to: v(3),
        lines: vec!["baseline 1, then 2 step(s)".into()],
        ..plan_summary()
    }
}

fn bootstrap_until() -> Run {
    let mut r = Run::new(PlanKind::Bootstrap);
    r.done(StepId::Plan, 300, StepOutput::Plan(bootstrap_plan()));
    r
}

type State = (&'static str, fn() -> App);

/// Every screen state worth a look, by name.
/// The same app, as if the latest rehearsal had measured each downtime step.
fn with_rehearsal(mut app: App) -> App {
    if let Some(StepOutput::Plan(p)) = app
        .checklist
        .steps
        .iter_mut()
        .find(|s| s.id == StepId::Plan)
        .and_then(|s| s.output.as_mut())
    {
        p.expected = [
            ("connected_users", 2.0),
            ("disk_space", 0.3),
            ("fingerprint", 0.8),
            ("backup", 40.0),
            ("banner", 0.1),
            ("clone_upgrade", 170.0),
            ("sanity_checks", 12.0),
            ("cut_over", 1.0),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
        p.rehearsal = Some("20261114T2200Z-clinic-77 (2026-11-14T22:00:00Z)".into());
    }
    app
}

fn states() -> Vec<State> {
    vec![
        ("clone_upgrade_running_with_rehearsal", || {
            with_rehearsal(running(
                StepId::CloneUpgrade,
                Unit::Statements,
                20,
                57,
                Some(120),
            ))
        }),
        // Each step running, with progress.
        ("plan_running", || {
            running(StepId::Plan, Unit::Scripts, 1, 4, Some(7))
        }),
        ("connected_users_running", || {
            running(StepId::ConnectedUsers, Unit::Steps, 0, 1, Some(2))
        }),
        ("disk_space_running", || {
            running(StepId::DiskSpace, Unit::Steps, 0, 1, Some(2))
        }),
        ("fingerprint_running", || {
            running(StepId::Fingerprint, Unit::Tables, 6, 31, Some(41))
        }),
        ("backup_running", || {
            running(StepId::Backup, Unit::Bytes, 120_000_000, 310_000_000, None)
        }),
        ("banner_running", || {
            running(StepId::Banner, Unit::Steps, 0, 1, Some(1))
        }),
        ("clone_upgrade_running", || {
            running(StepId::CloneUpgrade, Unit::Statements, 12, 57, Some(120))
        }),
        ("sanity_checks_running", || {
            running(StepId::SanityChecks, Unit::Tables, 10, 30, Some(41))
        }),
        ("cut_over_running", || {
            let mut r = cutover_asking();
            r.key(KeyCode::Enter)
                .type_text("clinic_v3")
                .key(KeyCode::Enter);
            r.started(StepId::CutOver);
            r.wait(300).progressing(Unit::Steps, 1, 2, Some(3));
            r.app
        }),
        ("apply_fixups_running", || {
            let mut r = fixups_until_apply();
            r.started(StepId::ApplyFixups)
                .wait(1_000)
                .log("running sql/fixups/3.1/0001_phone_index.sql");
            r.progressing(Unit::Statements, 2, 9, Some(14));
            r.app
        }),
        ("restore_running", || {
            let mut r = restore_until_restore();
            r.started(StepId::Restore).wait(5_000).phase("restore");
            r.progressing(Unit::Tables, 8, 20, Some(41));
            r.app
        }),
        ("bootstrap_running", || {
            let mut r = bootstrap_until();
            r.started(StepId::Bootstrap).wait(1_000).phase("baseline 1");
            r.progressing(Unit::Statements, 40, 180, Some(410));
            r.app
        }),
        // The questions and their dialogs.
        ("confirmations_asking", confirmations_asking),
        ("confirmations_enter_too_soon", || {
            let mut app = confirmations_asking();
            let _ = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
            app
        }),
        ("sessions_asking", || sessions_asking().app),
        ("sessions_terminate_dialog", || {
            let mut r = sessions_asking();
            r.key(KeyCode::Char('t'));
            r.app
        }),
        ("disk_unmeasurable_asking", || disk_asking().app),
        ("disk_unmeasurable_dialog", || {
            let mut r = disk_asking();
            r.key(KeyCode::Enter);
            r.app
        }),
        ("fingerprint_mismatch_asking", || fingerprint_asking().app),
        ("fingerprint_mismatch_type_name", || {
            let mut r = fingerprint_asking();
            r.key(KeyCode::Enter).type_text("clin");
            r.app
        }),
        ("cut_over_asking", || cutover_asking().app),
        ("cut_over_type_name", || {
            let mut r = cutover_asking();
            r.key(KeyCode::Enter).type_text("clinic_v");
            r.app
        }),
        ("cancel_dialog", || {
            let mut app = running(StepId::CloneUpgrade, Unit::Statements, 12, 57, Some(120));
            let _ = app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
            app
        }),
        ("cancelling", || {
            let mut app = running(StepId::CloneUpgrade, Unit::Statements, 12, 57, Some(120));
            let _ = app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
            let _ = app.on_key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE));
            app
        }),
        ("help_overlay", || {
            let mut app = running(StepId::CloneUpgrade, Unit::Statements, 12, 57, Some(120));
            let _ = app.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
            app
        }),
        ("browsing_back_while_running", || {
            let mut app = running(StepId::CloneUpgrade, Unit::Statements, 12, 57, Some(120));
            for _ in 0..4 {
                let _ = app.on_key(KeyEvent::new(KeyCode::Left, KeyModifiers::NONE));
            }
            app
        }),
        ("pending_step_preview", || {
            let mut app = upgrade_until(StepId::Confirmations).app;
            let _ = app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
            app
        }),
        // Each step's finished output.
        ("plan_done", || looking_at(StepId::Plan)),
        ("confirmations_done", || looking_at(StepId::Confirmations)),
        ("connected_users_done", || {
            looking_at(StepId::ConnectedUsers)
        }),
        ("disk_space_done", || looking_at(StepId::DiskSpace)),
        ("fingerprint_done", || looking_at(StepId::Fingerprint)),
        ("fingerprint_accepted", || {
            let mut r = fingerprint_asking();
            r.key(KeyCode::Enter)
                .type_text("clinic")
                .key(KeyCode::Enter);
            r.started(StepId::Fingerprint);
            r.finished(
                StepId::Fingerprint,
                StepStatus::Warning,
                50,
                fingerprint_diff(),
            );
            r.done(StepId::Backup, 42_000, backup_taken());
            r.app.viewing = Some(4);
            r.app
        }),
        ("backup_done", || looking_at(StepId::Backup)),
        ("clone_done", || looking_at(StepId::Clone)),
        ("backup_in_background", || {
            backup_seen_while_upgrading(|r| {
                r.log("pg_dump: dumping contents of table \"clinic.visits\"");
            })
        }),
        ("backup_ended_in_background", || {
            backup_seen_while_upgrading(|r| {
                r.app.on_exec(ExecEvent::BackgroundEnded {
                    step: StepId::Backup,
                    ok: true,
                    took: Duration::from_millis(76_200),
                });
            })
        }),
        ("backup_awaited", || {
            let mut r = upgrade_until(StepId::SanityChecks);
            finish_step(&mut r, StepId::SanityChecks);
            r.started(StepId::Backup);
            r.wait(2_000);
            r.progressing(Unit::Bytes, 700_000_000, 810_000_000, None);
            r.app
        }),
        ("backup_skipped", || {
            let mut r = upgrade_until(StepId::Backup);
            r.started(StepId::Backup);
            r.finished(
                StepId::Backup,
                StepStatus::Warning,
                95_000,
                StepOutput::Backup(BackupOutput::Skipped {
                    reason: "the nightly backup of 21:00 is verified and the practice has no room for a second copy".into(),
                    bytes_read: 2_350_000_000,
                }),
            );
            r.app.viewing = Some(6);
            r.app
        }),
        ("banner_done", || looking_at(StepId::Banner)),
        ("clone_upgrade_done", || looking_at(StepId::CloneUpgrade)),
        ("sanity_checks_done", || looking_at(StepId::SanityChecks)),
        ("cut_over_done", || looking_at(StepId::CutOver)),
        ("apply_fixups_done", || {
            let mut r = fixups_until_apply();
            r.done(
                StepId::ApplyFixups,
                3_200,
                StepOutput::Fixups {
                    applied: vec![
                        "sql/fixups/3.1/0001_phone_index.sql".into(),
                        "sql/fixups/3.2/0001_visit_codes.sql".into(),
                    ],
                    skipped: vec!["sql/fixups/3.1/0000_noop.sql".into()],
                    version: Version::new(3, 2),
                },
            );
            r.app.viewing = Some(7);
            r.app
        }),
        ("restore_done", || {
            let mut r = restore_until_restore();
            r.done(
                StepId::Restore,
                64_000,
                StepOutput::Restored {
                    db: "clinic_restored".into(),
                    fingerprint_matches: Some(true),
                },
            );
            r.app.viewing = Some(2);
            r.app
        }),
        ("bootstrap_done", || {
            let mut r = bootstrap_until();
            r.done(
                StepId::Bootstrap,
                7_400,
                StepOutput::Bootstrapped {
                    db: "clinic_test".into(),
                    version: v(3),
                },
            );
            r.app.viewing = Some(1);
            r.app
        }),
        // Failure.
        ("clone_upgrade_undoing", || failed_at_clone().app),
        ("clone_upgrade_failed_step", || {
            let mut r = failed_at_clone();
            r.undo_done(4_000, &["dropped the clone \"clinic_v3\""], &[]);
            r.app.viewing = Some(7);
            r.app
        }),
        ("sanity_checks_failed_step", || {
            let mut r = upgrade_until(StepId::SanityChecks);
            r.started(StepId::SanityChecks);
            r.wait(12_000);
            for c in checks_failed() {
                r.check(&c);
            }
            r.exec(ExecEvent::StepFailed {
                step: StepId::SanityChecks,
                error: "1 sanity check(s) failed; first: privileges: clinic_staff: lost SELECT on clinic.visits (the table was recreated by 0003_visits.sql)\nsecond line".into(),
                elapsed: Duration::from_millis(12_000),
                refused: false,
                location: None,
            });
            r.app
        }),
        // The final screen.
        ("final_success", || finished_upgrade().app),
        (
            "final_success_old_left_open",
            finished_upgrade_old_left_open,
        ),
        ("final_rehearsal", finished_rehearsal),
        ("final_failure", || {
            let mut r = failed_at_clone();
            r.undo_done(
                4_000,
                &[
                    "dropped the clone \"clinic_v3\"",
                    "removed the logon banner from \"clinic\"",
                    "restored access to \"clinic\" exactly as it was",
                ],
                &[],
            );
            r.app.report = Some(PathBuf::from(
                "/var/lib/pgstep/runs/20261121-2203-clinic/report.md",
            ));
            r.app
        }),
        ("final_failure_not_all_undone", || {
            let mut r = failed_at_clone();
            r.undo_done(
                9_000,
                &["dropped the clone \"clinic_v3\""],
                &["cannot connect to the server to undo the changes: connection refused. Run `pgstep recover` once it is reachable."],
            );
            r.app
        }),
        ("final_failure_source_changed", || {
            let mut r = failed_at_clone();
            r.undo_done_measured(
                4_000,
                &[
                    "dropped the clone \"clinic_v3\"",
                    "removed the logon banner from \"clinic\"",
                    "restored access to \"clinic\" exactly as it was",
                ],
                &[],
                pgstep::checklist::SourceVerdict::Changed {
                    db: "clinic".into(),
                    rows_written: 3,
                    tables_written: vec![pgstep::checklist::TableWrites {
                        table: "clinic.patient".into(),
                        rows: 3,
                    }],
                    fingerprint_changed: false,
                    tables_rewritten: vec![],
                    backup: Some("/var/backups/pgstep/clinic-v1-20261121T2203.dump".into()),
                },
            );
            r.app
        }),
        ("final_source_unknown", || {
            let mut r = failed_at_clone();
            r.undo_done_measured(
                9_000,
                &["dropped the clone \"clinic_v3\""],
                &["cannot connect to the server to undo the changes: connection refused. Run `pgstep recover` once it is reachable."],
                pgstep::checklist::SourceVerdict::Unknown {
                    db: "clinic".into(),
                    why: "pgstep could not read its state at the end (connection refused)".into(),
                },
            );
            r.app
        }),
        ("final_cancelled", || {
            let mut r = sessions_asking();
            r.key(KeyCode::Esc).key(KeyCode::Char('y'));
            r.undo_done(
                1_500,
                &["restored access to \"clinic\" exactly as it was"],
                &[],
            );
            r.app.report = Some(PathBuf::from(
                "/var/lib/pgstep/runs/20261121-2203-clinic/report.md",
            ));
            r.app
        }),
    ]
}

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

#[test]
fn every_screen_matches_its_snapshot() {
    let mut failures = Vec::new();
    for (name, build) in states() {
        let app = build();
        for (w, h) in SIZES {
            let text = screen(&app, w, h);
            if let Err(e) = check_snapshot(&format!("{name}.{w}x{h}"), &text) {
                failures.push(e);
            }
        }
    }
    let app = finished_upgrade().app;
    for (w, h) in [(60, 20), (79, 24)] {
        if let Err(e) = check_snapshot(&format!("terminal_too_small.{w}x{h}"), &screen(&app, w, h))
        {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// State is never told by colour alone: with NO_COLOR no cell has a colour at all.
#[test]
fn no_color_draws_no_colour() {
    for (name, build) in states() {
        let mut app = build();
        app.no_color = true;
        let buf = render(&app, 120, 40);
        for cell in buf.content() {
            assert!(
                cell.fg == Color::Reset && cell.bg == Color::Reset,
                "{name}: a coloured cell {cell:?} under NO_COLOR"
            );
        }
    }
}

/// Screens are drawn into whatever area ratatui gives, down to nothing.
#[test]
fn screens_never_panic_on_tiny_areas() {
    let theme = Theme::new(false);
    for (_, build) in states() {
        let app = build();
        for (w, h) in [
            (0, 0),
            (1, 1),
            (0, 10),
            (10, 0),
            (3, 2),
            (12, 4),
            (44, 6),
            (44, 9),
            (20, 60),
        ] {
            let mut term = Terminal::new(TestBackend::new(w.max(1), h.max(1))).expect("terminal");
            term.draw(|f| pgstep::ui::screens::render(f, Rect::new(0, 0, w, h), &app, &theme))
                .expect("draw");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Key sequences lead to the expected screen

fn press(app: &mut App, code: KeyCode) {
    let _ = app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn key_sequences_lead_to_the_expected_screen() {
    use KeyCode::*;
    type Case = (
        &'static str,
        fn() -> App,
        &'static [KeyCode],
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "Tab shows the next step",
            confirmations_asking,
            &[Tab],
            &["Connected users", "step 3 of 11", "not started yet"],
            &[],
        ),
        (
            "← shows the previous step",
            confirmations_asking,
            &[Left],
            &["Plan", "step 1 of 11", "clinic_v3"],
            &["0 of 4 ticked"],
        ),
        (
            "→ after ← comes back to the question",
            confirmations_asking,
            &[Left, Right],
            &["2 of 4 ticked"],
            &["The run is at step"],
        ),
        (
            "? opens the help",
            confirmations_asking,
            &[Char('?')],
            &["Help", "the human parts of the checklist"],
            &[],
        ),
        (
            "? again closes it",
            confirmations_asking,
            &[Char('?'), Char('?')],
            &["2 of 4 ticked"],
            &["Help"],
        ),
        (
            "any key closes the help",
            confirmations_asking,
            &[Char('?'), Down],
            &["2 of 4 ticked"],
            &["Help"],
        ),
        (
            "Esc opens the cancel dialog",
            || sessions_asking().app,
            &[Esc],
            &["Cancel the run?"],
            &[],
        ),
        (
            "n closes it",
            || sessions_asking().app,
            &[Esc, Char('n')],
            &["2 still connected"],
            &["Cancel the run?"],
        ),
        (
            "t asks before terminating",
            || sessions_asking().app,
            &[Char('t')],
            &["Terminate the connected sessions?"],
            &[],
        ),
        (
            "Esc closes the terminate dialog",
            || sessions_asking().app,
            &[Char('t'), Esc],
            &["terminate all 2"],
            &["Terminate the connected"],
        ),
        (
            "Space ticks and Enter goes on",
            confirmations_asking,
            &[Char(' '), Char(' '), Enter],
            &["Connected users", "running"],
            &["ticked"],
        ),
        (
            "a wrong name does not cut over",
            || cutover_asking().app,
            &[Enter, Char('x'), Enter],
            &["type \"clinic_v3\" exactly, or Esc"],
            &[],
        ),
    ];
    for (what, build, keys, present, absent) in cases {
        let mut app = build();
        for k in keys {
            press(&mut app, *k);
        }
        let text = screen(&app, 120, 40);
        for p in present {
            assert!(
                text.contains(p),
                "{what}: \"{p}\" is not on the screen:\n{text}"
            );
        }
        for a in absent {
            assert!(
                !text.contains(a),
                "{what}: \"{a}\" should not be on the screen:\n{text}"
            );
        }
    }
}

#[test]
fn the_shown_step_follows_tab_and_arrows() {
    use KeyCode::*;
    let cases: [(&[KeyCode], usize, Option<usize>); 5] = [
        (&[], 1, None),
        (&[Tab], 2, Some(2)),
        (&[Tab, Tab, BackTab], 2, Some(2)),
        (&[Left], 0, Some(0)),
        (&[Left, Left, Right], 1, None),
    ];
    for (keys, shown, viewing) in cases {
        let mut app = confirmations_asking();
        for k in keys {
            press(&mut app, *k);
        }
        assert_eq!(
            (app.shown_step(), app.viewing),
            (shown, viewing),
            "{keys:?}"
        );
    }
}

#[test]
fn the_type_the_name_dialog_takes_the_name_and_backspace() {
    let mut app = fingerprint_asking().app;
    for k in [
        KeyCode::Enter,
        KeyCode::Char('c'),
        KeyCode::Char('x'),
        KeyCode::Backspace,
    ] {
        press(&mut app, k);
    }
    match &app.dialog {
        Some(Dialog::TypeName { typed, .. }) => assert_eq!(typed, "c"),
        other => panic!("expected the type-the-name dialog, got {other:?}"),
    }
}

#[test]
fn a_flood_of_log_lines_keeps_the_log_bounded() {
    let mut r = upgrade_until(StepId::CloneUpgrade);
    r.started(StepId::CloneUpgrade);
    for i in 0..(pgstep::ui::app::LOG_CAPACITY + 500) {
        r.notice(&format!("NOTICE: line {i}"));
    }
    assert_eq!(r.app.log.len(), pgstep::ui::app::LOG_CAPACITY);
    assert!(screen(&r.app, 80, 24).contains(&format!(
        "NOTICE: line {}",
        pgstep::ui::app::LOG_CAPACITY + 499
    )));
}

#[test]
fn confirmations_items_are_the_manual_items() {
    let items: Vec<ManualItem> = pgstep::checklist::manual_items();
    let text = screen(&confirmations_asking(), 120, 40);
    for i in items {
        assert!(text.contains(&i.text), "{} is missing", i.text);
    }
}

#[test]
fn ctrl_c_opens_the_cancel_dialog_while_running() {
    let mut r = upgrade_until(StepId::Backup);
    r.started(StepId::Backup);
    r.ctrl('c');
    assert!(matches!(r.app.dialog, Some(Dialog::Confirm { .. })));
}

/// The loop's drain step stops at the command that ends the wizard; what follows stays queued.
#[test]
fn a_batch_stops_where_the_wizard_ends() {
    use pgstep::session::Input;
    use pgstep::ui::{Command, process_batch};
    use ratatui::crossterm::event::Event as TermEvent;
    let mut app = finished_upgrade().app;
    let keys = [KeyCode::Char('?'), KeyCode::Enter, KeyCode::Char('?')]
        .map(|c| Input::Term(TermEvent::Key(KeyEvent::new(c, KeyModifiers::NONE))));
    let mut queue = keys.into_iter();
    let mut carried = Vec::new();
    let batch = process_batch(&mut app, queue.by_ref(), |c| {
        let quit = c.contains(&Command::Quit);
        carried.extend(c);
        quit
    });
    // '?' opened the help; Enter closed it (any key does) without quitting; the last '?' opened it.
    assert_eq!((batch.events, batch.quit, app.help), (3, false, true));
    assert!(carried.is_empty());
    press(&mut app, KeyCode::Esc);
    let enter = Input::Term(TermEvent::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let later = Input::Term(TermEvent::Key(KeyEvent::new(
        KeyCode::Char('?'),
        KeyModifiers::NONE,
    )));
    let mut queue = [enter, later].into_iter();
    let batch = process_batch(&mut app, queue.by_ref(), |c| c.contains(&Command::Quit));
    assert_eq!((batch.events, batch.quit), (1, true));
    assert_eq!(queue.count(), 1, "the event after Quit stays queued");
}

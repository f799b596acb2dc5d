//! The wizard under a flood of log lines: how long a frame takes, and how long a key waits.
//!
//! (a) render time of a full frame at 120×40 into a TestBackend with a full log;
//! (b) key latency while an executor floods log lines at 50,000 lines/s and a key arrives every
//!     50 ms, with the wizard loop's own policy (drain everything queued, then one frame, at
//!     most every FRAME) — `pgstep::ui::process_batch` is the loop's drain step itself;
//! (c) the same with a producer as fast as it can go, to see whether draining starves frames.
//!
//! Prints figures; asserts nothing. `cargo bench --bench wizard`.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pgstep::bundle::Version;
use pgstep::checklist::{ExecEvent, PlanKind, PlanSummary, StepId, StepOutput, StepStatus};
use pgstep::events::{Event, Level, Unit};
use pgstep::session::{Inbox, Input, Senders, inbox};
use pgstep::ui::app::{App, LOG_CAPACITY};
use pgstep::ui::{FRAME, process_batch};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};

const FLOOD_RATE: u64 = 50_000;
const FLOOD_FOR: Duration = Duration::from_secs(3);
const KEY_EVERY: Duration = Duration::from_millis(50);

fn main() {
    println!(
        "pgstep wizard benchmark (FRAME = {} ms)\n",
        FRAME.as_millis()
    );
    frame_time();
    println!();
    flood(
        "(b) key latency during a flood of 50,000 log lines/s for 3 s",
        Some(FLOOD_RATE),
        FLOOD_FOR,
    );
    println!();
    flood(
        "(c) key latency while a producer sends 1,000,000 lines as fast as it can",
        None,
        FLOOD_FOR,
    );
}

// ---------------------------------------------------------------------------------------------
// A wizard in the middle of the upgrade

fn exec(app: &mut App, e: ExecEvent) {
    let _ = app.on_exec(e);
}

fn done(app: &mut App, step: StepId, output: StepOutput) {
    exec(app, ExecEvent::StepStarted(step));
    exec(
        app,
        ExecEvent::StepDone {
            step,
            status: StepStatus::Done,
            output,
            elapsed: Duration::from_millis(800),
        },
    );
}

fn nothing() -> StepOutput {
    StepOutput::Nothing {
        note: String::new(),
    }
}

fn notice(i: u64) -> ExecEvent {
    ExecEvent::Engine(Event::Log {
        level: Level::Notice,
        text: format!(
            "NOTICE:  row {i}: relation \"clinic.visits_{}\" already exists, skipping",
            i % 97
        ),
    })
}

/// The clone-and-upgrade step running, statements progressing.
fn upgrading() -> App {
    let mut app = App::new(PlanKind::Upgrade);
    let _ = app.start();
    let plan = PlanSummary {
        application: "clinic".into(),
        server: "db1.practice.lan:5432".into(),
        source_db: "clinic".into(),
        target_db: "clinic_v2".into(),
        from: Version::new(1, 0),
        to: Version::new(2, 0),
        lines: vec!["step 1 → 2: 3 script(s), 2140 statement(s)".into()],
        run_id: None,
        journal: None,
        expected: Vec::new(),
        rehearsal: None,
        backup: None,
    };
    done(&mut app, StepId::Plan, StepOutput::Plan(plan));
    for _ in 0..4 {
        let _ = app.on_key(key(KeyCode::Char(' ')));
    }
    let _ = app.on_key(key(KeyCode::Enter));
    let sessions = StepOutput::Sessions {
        sessions: vec![],
        unblockable: vec![],
    };
    done(&mut app, StepId::ConnectedUsers, sessions);
    for step in [
        StepId::DiskSpace,
        StepId::Fingerprint,
        StepId::Backup,
        StepId::Banner,
    ] {
        done(&mut app, step, nothing());
    }
    exec(&mut app, ExecEvent::StepStarted(StepId::CloneUpgrade));
    exec(
        &mut app,
        ExecEvent::Engine(Event::Phase {
            name: "step 1 → 2".into(),
        }),
    );
    app
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn progress(done: u64) -> ExecEvent {
    ExecEvent::Engine(Event::Progress {
        unit: Unit::Statements,
        done,
        total: Some(2140),
    })
}

// ---------------------------------------------------------------------------------------------
// Figures

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn log_bytes(app: &App) -> usize {
    let lines = app.log.capacity() * std::mem::size_of::<pgstep::ui::app::LogLine>();
    lines + app.log.iter().map(|l| l.text.capacity()).sum::<usize>()
}

// ---------------------------------------------------------------------------------------------
// (a) frame time

fn frame_time() {
    let mut app = upgrading();
    for i in 0..LOG_CAPACITY as u64 {
        exec(&mut app, notice(i));
    }
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
    let mut times = Vec::with_capacity(500);
    for frame in 0..520u64 {
        // Each frame differs, as in a run: the clock moves, a line arrives, progress grows.
        app.tick(frame * 33);
        exec(&mut app, notice(LOG_CAPACITY as u64 + frame));
        exec(&mut app, progress(frame * 4));
        let t = Instant::now();
        term.draw(|f| pgstep::ui::view::render(f, &app))
            .expect("draw");
        if frame >= 20 {
            times.push(t.elapsed());
        }
    }
    times.sort();
    println!(
        "(a) full frame at 120×40, TestBackend, log full ({} lines)",
        app.log.len()
    );
    println!(
        "    frames {}   median {}   p99 {}   max {}",
        times.len(),
        ms(percentile(&times, 50)),
        ms(percentile(&times, 99)),
        ms(times.last().copied().unwrap_or_default())
    );
}

// ---------------------------------------------------------------------------------------------
// (b), (c) the loop under a flood

/// Unthrottled, the producer stops here (the channel is unbounded, as the wizard's is).
const UNTHROTTLED_LINES: u64 = 1_000_000;

/// Sends log lines at `rate` per second for `for_`; None: as fast as it can, up to
/// UNTHROTTLED_LINES.
fn producer(tx: Senders, rate: Option<u64>, for_: Duration) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < for_ {
            let due = match rate {
                Some(r) => (start.elapsed().as_secs_f64() * r as f64) as u64,
                None if sent >= UNTHROTTLED_LINES => break,
                None => sent + 1_000,
            };
            while sent < due {
                if !tx.exec(notice(sent)) {
                    return sent;
                }
                sent += 1;
                if sent.is_multiple_of(200) {
                    let _ = tx.exec(progress(sent / 200 % 2140));
                }
            }
            if rate.is_some() {
                thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    })
}

/// A key every KEY_EVERY (PgUp and PgDn in turn), its send time noted just before it is sent.
fn typist(tx: Senders, sent_at: Arc<Mutex<Vec<Instant>>>, for_: Duration) {
    thread::spawn(move || {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < for_ {
            thread::sleep(KEY_EVERY);
            let code = if n.is_multiple_of(2) {
                KeyCode::PageUp
            } else {
                KeyCode::PageDown
            };
            sent_at.lock().expect("lock").push(Instant::now());
            if !tx.terminal(TermEvent::Key(key(code))) {
                return;
            }
            n += 1;
        }
    });
}

struct LoopFigures {
    latencies: Vec<Duration>,
    frames: u64,
    events: u64,
    longest_drain: Duration,
    elapsed: Duration,
    app: App,
}

/// The wizard loop's policy (`ui::event_loop`): wait for an event at most until the next frame
/// is due, take the keys waiting and the executor's events for at most `DRAIN_BUDGET`
/// (`Inbox::batch`), hand them to `process_batch`, then draw if a frame is due.
fn wizard_loop(inbox: &Inbox, sent_at: &Mutex<Vec<Instant>>) -> LoopFigures {
    let mut app = upgrading();
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
    let started = Instant::now();
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let (mut keys_seen, mut keys_drawn) = (0usize, 0usize);
    let (mut latencies, mut frames, mut events) = (Vec::new(), 0u64, 0u64);
    let mut longest_drain = Duration::ZERO;
    loop {
        let timeout = FRAME.saturating_sub(last_draw.map_or(FRAME, |t| t.elapsed()));
        let Ok(first) = inbox.wait(timeout) else {
            break;
        };
        app.tick(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        let drain = Instant::now();
        let queued = inbox.batch(first).inspect(|e| {
            if matches!(e, Input::Term(_)) {
                keys_seen += 1;
            }
        });
        let batch = process_batch(&mut app, queued, |_| false);
        longest_drain = longest_drain.max(drain.elapsed());
        events += batch.events as u64;
        dirty |= batch.events > 0;
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            term.draw(|fr| pgstep::ui::view::render(fr, &app))
                .expect("draw");
            let now = Instant::now();
            let sent = sent_at.lock().expect("lock");
            for at in &sent[keys_drawn..keys_seen.min(sent.len())] {
                latencies.push(now - *at);
            }
            keys_drawn = keys_seen.min(sent.len());
            last_draw = Some(now);
            frames += 1;
            dirty = false;
        }
        if last_draw.is_some_and(|t| t.elapsed() >= Duration::from_secs(1)) {
            dirty = true;
        }
    }
    LoopFigures {
        latencies,
        frames,
        events,
        longest_drain,
        elapsed: started.elapsed(),
        app,
    }
}

fn flood(title: &str, rate: Option<u64>, for_: Duration) {
    let (tx, inbox) = inbox();
    let sent_at = Arc::new(Mutex::new(Vec::new()));
    let lines = producer(tx.clone(), rate, for_);
    typist(tx, Arc::clone(&sent_at), for_);
    let f = wizard_loop(&inbox, &sent_at);
    let produced = lines.join().unwrap_or_default();
    let mut lat = f.latencies.clone();
    lat.sort();
    let secs = f.elapsed.as_secs_f64();
    println!("{title}");
    println!(
        "    {produced} log lines offered, {} events handled in {:.2} s",
        f.events,
        f.elapsed.as_secs_f64()
    );
    println!(
        "    keys {} (one every {} ms)   latency send → end of its frame: median {}   p99 {}   max {}",
        lat.len(),
        KEY_EVERY.as_millis(),
        ms(percentile(&lat, 50)),
        ms(percentile(&lat, 99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    println!(
        "    frames {} in {:.2} s = {:.1} fps   longest drain {}",
        f.frames,
        secs,
        f.frames as f64 / secs,
        ms(f.longest_drain)
    );
    println!(
        "    log: {} lines kept (LOG_CAPACITY {}), about {:.1} MB",
        f.app.log.len(),
        LOG_CAPACITY,
        log_bytes(&f.app) as f64 / 1e6
    );
}

//! SIGHUP: a broken config is refused and the running one keeps shipping; a config that
//! adds a source starts shipping it without losing or repeating the other sources' lines.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent::{Db, Source, WAIT, Workspace, append_lines, assert_exactly_once, wait_until};

#[test]
fn sighup_with_a_broken_config_keeps_the_running_one() {
    let Some(db) = Db::new("reload_bad") else {
        return;
    };
    let ws = Workspace::new("reload-bad");
    ws.write_config(Some(&db), "", &[Source::nginx("web", &ws.log("*.log"))]);
    let log = ws.log("access.log");
    append_lines(&log, 0, 500);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    db.wait_rows("web", &ws.host, 500);

    // An unknown key appended to the main file, and a drop-in adding a source.
    let good = fs::read_to_string(ws.config()).unwrap();
    let broken = format!("{good}\n[batch]\nmax_recods = 10\n");
    let bad_line = broken.lines().count();
    fs::write(ws.config(), &broken).unwrap();
    fs::write(
        ws.dropin("20-more.toml"),
        format!(
            "[[source]]\nname = \"more\"\npaths = [\"{}\"]\nformat = \"nginx\"\n",
            ws.log("more/*.log").display()
        ),
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_log("reload refused", WAIT);
    let stderr = agent.stderr();
    let refusal = stderr
        .lines()
        .find(|l| l.contains("reload refused"))
        .unwrap();
    assert!(refusal.contains("ERROR"), "{refusal}");
    assert!(
        refusal.contains(&format!("{}:{bad_line}:", ws.config().display())),
        "the refusal names file and line: {refusal}"
    );
    assert!(refusal.contains("batch.max_recods"), "{refusal}");
    assert!(!stderr.contains("config reloaded"), "{stderr}");

    // The old config keeps running: new lines of its source still land, once each.
    append_lines(&log, 500, 1000);
    let rows = db.wait_rows("web", &ws.host, 1000);
    assert_exactly_once(&rows, 1000, "web after a refused reload");
    assert!(agent.is_running());
    // The refused drop-in's source was not started.
    let metrics = agent.metrics();
    assert!(!metrics.contains("source=\"more\""), "{metrics}");

    agent.signal(libc::SIGTERM);
    let status = agent.wait_exit(Duration::from_secs(40));
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
}

#[test]
fn sighup_adding_a_source_ships_it_and_keeps_the_others_lines_once() {
    const OLD: u64 = 4000;
    const NEW: u64 = 600;
    let Some(db) = Db::new("reload_add") else {
        return;
    };
    let ws = Workspace::new("reload-add");
    fs::create_dir_all(ws.log("old")).unwrap();
    fs::create_dir_all(ws.log("new")).unwrap();
    ws.write_config(Some(&db), "", &[Source::nginx("old", &ws.log("old/*.log"))]);
    let old_log = ws.log("old/access.log");
    let new_log = ws.log("new/access.log");
    // Already there before the source exists: shipped from its beginning once added.
    append_lines(&new_log, 0, NEW / 2);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();

    // The old source is written to steadily across the reload; if the reload is slow the
    // writer waits for it at GATE, so lines are always written after it too.
    const GATE: u64 = 3000;
    let reloaded = Arc::new(AtomicBool::new(false));
    let writer = {
        let old_log = old_log.clone();
        let reloaded = Arc::clone(&reloaded);
        std::thread::spawn(move || {
            for chunk in 0..OLD / 100 {
                if chunk * 100 == GATE {
                    while !reloaded.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                append_lines(&old_log, chunk * 100, chunk * 100 + 100);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    wait_until(WAIT, "old lines being shipped", || {
        (agent.metric("logship_lines_read_total{source=\"old\"}")? >= 500.0).then_some(())
    });
    fs::write(
        ws.dropin("20-new.toml"),
        Source::nginx("new", &ws.log("new/*.log")).toml(),
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_log("config reloaded", WAIT);
    reloaded.store(true, Ordering::SeqCst);
    let stderr = agent.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("config reloaded"))
        .unwrap();
    assert!(line.contains("added=[\"new\"]"), "{line}");
    assert!(line.contains("removed=[]"), "{line}");
    assert!(line.contains("restarted=[]"), "{line}");

    db.wait_rows("new", &ws.host, (NEW / 2) as usize);
    append_lines(&new_log, NEW / 2, NEW);
    writer.join().unwrap();

    let old = db.wait_rows("old", &ws.host, OLD as usize);
    let new = db.wait_rows("new", &ws.host, NEW as usize);
    // Every acknowledged write counted: a line read twice would be written twice.
    wait_until(WAIT, "rows_written to reach every line", || {
        let written = agent.metric("logship_rows_written_total{table=\"infrastructure_logs\"}")?;
        (written >= (OLD + NEW) as f64).then_some(())
    });
    assert_eq!(
        agent.metric("logship_lines_read_total{source=\"old\"}"),
        Some(OLD as f64),
        "the old source read a line twice (or missed one) across the reload"
    );
    assert_eq!(
        agent.metric("logship_lines_read_total{source=\"new\"}"),
        Some(NEW as f64)
    );
    assert_eq!(
        agent.metric("logship_rows_written_total{table=\"infrastructure_logs\"}"),
        Some((OLD + NEW) as f64),
        "rows written twice"
    );
    assert_exactly_once(&old, OLD, "old source");
    assert_exactly_once(&new, NEW, "new source");
    // Settled: nothing more arrives later.
    assert_eq!(db.rows().len() as u64, OLD + NEW);

    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(40)).code(), Some(0));
}

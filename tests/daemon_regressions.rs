//! Regressions: daemon bugs the end-to-end tests found, each pinned by the test that
//! failed until it was fixed.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;

use agent::{Source, Workspace};

fn good_config(ws: &Workspace) {
    ws.write_config(
        None,
        "",
        &[Source::nginx("web", &ws.path().join("logs/*.log"))],
    );
}

/// A good config whose data dir cannot be created: `run` logs its start, then exits 1
/// without needing Cassandra.
fn config_with_blocked_data_dir(ws: &Workspace) -> String {
    let blocker = ws.path().join("not-a-dir");
    fs::write(&blocker, "").unwrap();
    good_config(ws);
    let text = fs::read_to_string(ws.config()).unwrap().replace(
        &format!("data_dir = \"{}\"", ws.path().join("data").display()),
        &format!("data_dir = \"{}/sub\"", blocker.display()),
    );
    fs::write(ws.config(), text).unwrap();
    ws.config().display().to_string()
}

#[test]
fn bad_value_in_a_dropin_names_the_dropin_its_line_and_key() {
    // A value that parses but is refused by validation: the error must still point into
    // the drop-in that set it, not at the main file.
    let ws = Workspace::new("cfg-value");
    good_config(&ws);
    let dropin = ws.dropin("10-batch.toml");
    fs::write(&dropin, "[batch]\nmax_records = 0\n").unwrap();
    let config = ws.config().display().to_string();
    let out = ws.run_cli(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let want = format!("{}:2:", dropin.display());
    assert!(
        out.stderr.contains(&want) && out.stderr.contains("batch.max_records"),
        "{want:?} and batch.max_records expected in:\n{}",
        out.stderr
    );
}

#[test]
fn logs_on_a_non_terminal_stderr_carry_no_colour_codes() {
    // systemd units with StandardError=file:, `2>>agent.log`, or a pipe to another tool
    // must read plain text, not ANSI escape sequences.
    let ws = Workspace::new("cfg-ansi");
    let config = config_with_blocked_data_dir(&ws);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["run", "--config", &config])
        .env_remove("JOURNAL_STREAM")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let raw = String::from_utf8_lossy(&out.stderr);
    assert!(raw.contains("logship starting"), "{raw}");
    assert!(
        !raw.contains('\u{1b}'),
        "escape sequences in non-terminal stderr: {raw:?}"
    );
}

#[test]
fn an_unreachable_cluster_logs_one_error_not_one_per_attempt() {
    // "One line per state change": the agent logs "cannot reach Cassandra; retrying" once,
    // but the driver's own ERROR (and WARN) lines repeat at every connection attempt, so
    // `journalctl -p err` fills with them while the cluster is down.
    let ws = Workspace::new("bug-driver-noise");
    ws.write_config(
        None,
        "[cassandra]\ncontact_points = [\"127.0.0.1:1\"]\nkeyspace = \"nowhere\"\n\n",
        &[Source::nginx("web", &ws.path().join("logs/*.log"))],
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_log("cannot reach Cassandra; retrying", agent::WAIT);
    // An observation window covering the first four reconnection attempts (0.5+1+2+4 s).
    std::thread::sleep(std::time::Duration::from_secs(8));
    let stderr = agent.stderr();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(
        errors.len(),
        1,
        "ERROR lines while retrying:\n{}",
        errors.join("\n")
    );
    let warns = stderr.lines().filter(|l| l.contains(" WARN ")).count();
    assert_eq!(warns, 0, "WARN lines while retrying:\n{stderr}");
}

#[test]
fn the_write_latency_histogram_ends_with_an_openmetrics_plus_inf_bucket() {
    // OpenMetrics requires the last bucket as le="+Inf"; the agent renders le="inf"
    // because it passes f64::INFINITY where prometheus-client expects f64::MAX.
    let Some(db) = agent::Db::new("bug_inf") else {
        return;
    };
    let ws = Workspace::new("bug-inf");
    ws.write_config(
        Some(&db),
        "",
        &[Source::nginx("web", &ws.path().join("logs/*.log"))],
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let m = agent.metrics();
    assert!(
        m.contains("logship_write_unit_duration_seconds_bucket{le=\"+Inf\"}"),
        "{}",
        m.lines()
            .filter(|l| l.contains("_bucket"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

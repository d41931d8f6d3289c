//! The real binary refuses a bad config with an error naming the file, the line and the key
//! (exit 3, before touching Cassandra), and `check-config` shows what a good one watches.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;

use agent::{Source, Workspace};

const EXIT_CONFIG: i32 = 3;

/// Both `run` and `check-config` refuse `ws`'s config with exit 3 and an error on stderr
/// that contains every one of `needles`; returns `run`'s stderr.
fn assert_refused(ws: &Workspace, needles: &[&str]) -> String {
    let config = ws.config().display().to_string();
    let mut run_stderr = String::new();
    for cmd in ["run", "check-config"] {
        let out = ws.run_cli(&[cmd, "--config", &config]);
        assert_eq!(
            out.status.code(),
            Some(EXIT_CONFIG),
            "`logship {cmd}` exit code; stderr:\n{}",
            out.stderr
        );
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("invalid configuration"))
            .unwrap_or_else(|| panic!("`logship {cmd}`: no config error in:\n{}", out.stderr));
        for needle in needles {
            assert!(
                line.contains(needle),
                "`logship {cmd}`: {needle:?} missing from the error line:\n{line}"
            );
        }
        if cmd == "run" {
            run_stderr = out.stderr;
        }
    }
    run_stderr
}

fn good_config(ws: &Workspace) {
    ws.write_config(
        None,
        "",
        &[Source::nginx("web", &ws.path().join("logs/*.log"))],
    );
}

#[test]
fn unknown_key_in_a_dropin_names_the_dropin_its_line_and_the_key() {
    let ws = Workspace::new("cfg-unknown");
    good_config(&ws);
    let dropin = ws.dropin("10-x.toml");
    fs::write(
        &dropin,
        "# tuning\n[batch]\nmax_records = 500\nlingr = \"2s\"\n",
    )
    .unwrap();
    let stderr = assert_refused(
        &ws,
        &[
            &format!("{}:4:", dropin.display()),
            "batch.lingr",
            "unknown field `lingr`",
        ],
    );
    // Refused before anything starts: no log line of a running agent.
    assert!(!stderr.contains("logship starting"), "{stderr}");
}

#[test]
fn wrong_type_in_the_main_file_names_its_line_and_key() {
    let ws = Workspace::new("cfg-type");
    ws.write_config(
        None,
        "[buffer]\ncapacity = \"lots\"\n",
        &[Source::nginx("web", &ws.path().join("logs/*.log"))],
    );
    let text = fs::read_to_string(ws.config()).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("capacity"))
        .unwrap()
        + 1;
    assert_refused(
        &ws,
        &[
            &format!("{}:{line}:", ws.config().display()),
            "buffer.capacity",
            "invalid type",
        ],
    );
}

#[test]
fn bad_log_format_names_the_source_its_file_and_line() {
    let ws = Workspace::new("cfg-logformat");
    good_config(&ws);
    let dropin = ws.dropin("20-api.toml");
    fs::write(
        &dropin,
        format!(
            "# the API's access log\n\n[[source]]\nname = \"api\"\npaths = [\"{}\"]\nformat = \"nginx\"\nlog_format = '$remote_addr [${{time_local'\n",
            ws.log("api.log").display()
        ),
    )
    .unwrap();
    assert_refused(
        &ws,
        &[
            &format!("{}:3:", dropin.display()),
            "source[api].log_format",
            "${time_local",
        ],
    );
}

#[test]
fn check_config_on_a_good_config_prints_files_dirs_and_sources() {
    let ws = Workspace::new("cfg-good");
    let logs = ws.path().join("logs");
    fs::write(ws.log("access.log"), "").unwrap();
    fs::write(ws.log("old.log.gz"), "").unwrap();
    ws.write_config(None, "", &[Source::nginx("web", &logs.join("*.log*"))]);
    fs::write(
        ws.dropin("20-sys.toml"),
        format!(
            "[[source]]\nname = \"sys\"\npaths = [\"{}/missing/*.log\"]\nformat = \"syslog\"\n",
            ws.path().display()
        ),
    )
    .unwrap();
    let config = ws.config().display().to_string();
    let out = ws.run_cli(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    let o = &out.stdout;
    assert!(o.contains(&config), "{o}");
    assert!(
        o.contains(&ws.dropin("20-sys.toml").display().to_string()),
        "{o}"
    );
    assert!(o.contains("host: cfg-good"), "{o}");
    assert!(o.contains("source web (format nginx"), "{o}");
    assert!(o.contains(&format!("watch {}", logs.display())), "{o}");
    assert!(
        o.contains(&format!("file {}", ws.log("access.log").display())),
        "{o}"
    );
    // `*.gz` is always excluded.
    assert!(!o.contains("old.log.gz"), "{o}");
    assert!(o.contains("source sys (format syslog"), "{o}");
    assert!(
        o.contains(&format!("missing {}/missing", ws.path().display())),
        "{o}"
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
fn without_journal_stream_logs_are_plain_text_on_stderr() {
    // Text on stderr when JOURNAL_STREAM is unset, or names a stream that is not our
    // stderr (here stderr is a pipe). Journald itself cannot be tested: no journald runs here.
    let ws = Workspace::new("cfg-text");
    let config = config_with_blocked_data_dir(&ws);
    for journal_stream in [None, Some("8:12345")] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_logship"));
        cmd.args(["run", "--config", &config])
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LOGSHIP_LOG");
        match journal_stream {
            Some(v) => cmd.env("JOURNAL_STREAM", v),
            None => cmd.env_remove("JOURNAL_STREAM"),
        };
        let out = cmd.output().unwrap();
        let text = agent::strip_ansi(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("INFO logship starting"), "{text}");
        assert!(text.contains("cannot create the data directory"), "{text}");
    }
}

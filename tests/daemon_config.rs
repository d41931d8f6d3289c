//! The real binary refuses a bad config with an error naming the file, the line and the key
//! (exit 3, before touching Cassandra), and `check-config` shows what a good one watches.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use agent::{Source, Workspace};

const EXIT_CONFIG: i32 = 3;

/// Both `run` and `check-config` refuse `ws`'s config with exit 3 and an error on stderr
/// that contains every one of `needles`; returns `run`'s stderr.
fn assert_refused(ws: &Workspace, needles: &[&str]) -> String {
    assert_refused_as(ws, false, needles)
}

/// The uid of the unprivileged user the agent runs as in these tests: root reads any file
/// whatever its mode, so as root the commands run as `nobody` (like the packaged agent runs
/// as its own user); as an ordinary user they run as that user.
fn service_uid() -> Option<u32> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } == 0).then_some(65534)
}

/// `logship <args>`, as the service user when `as_service_user`.
fn cli(args: &[&str], as_service_user: bool) -> agent::CliOutput {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logship"));
    cmd.args(args).stdin(Stdio::null());
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "JOURNAL_STREAM",
        "LOGSHIP_LOG",
    ] {
        cmd.env_remove(var);
    }
    if let (true, Some(uid)) = (as_service_user, service_uid()) {
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().expect("run the logship binary");
    agent::CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: agent::strip_ansi(&String::from_utf8_lossy(&out.stderr)),
    }
}

/// [`assert_refused`], optionally as the service user.
fn assert_refused_as(ws: &Workspace, as_service_user: bool, needles: &[&str]) -> String {
    let config = ws.config().display().to_string();
    let mut run_stderr = String::new();
    for cmd in ["run", "check-config"] {
        let out = cli(&[cmd, "--config", &config], as_service_user);
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
fn bad_log_format_names_the_source_its_file_and_the_line_of_the_key() {
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
            &format!("{}:7:", dropin.display()),
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

/// The 1-based line of the first line of `path` starting with `prefix`.
fn line_of(path: &Path, prefix: &str) -> usize {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {}", path.display()))
        + 1
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A config logging in with `password_file = path`.
fn config_with_password_file(ws: &Workspace, path: &Path) {
    ws.write_config(
        None,
        &format!(
            "[cassandra]\nusername = \"logship\"\npassword_file = \"{}\"\n",
            path.display()
        ),
        &[Source::nginx("web", &ws.path().join("logs/*.log"))],
    );
}

#[test]
fn a_password_file_that_is_a_directory_is_refused_with_file_line_and_key() {
    let ws = Workspace::new("cfg-pwdir");
    let dir = ws.path().join("secrets");
    fs::create_dir(&dir).unwrap();
    config_with_password_file(&ws, &dir);
    let line = line_of(&ws.config(), "password_file");
    assert_refused(
        &ws,
        &[
            &format!("{}:{line}:", ws.config().display()),
            "cassandra.password_file",
            "is a directory",
        ],
    );
}

#[test]
fn a_password_file_the_service_user_cannot_read_is_refused_with_file_line_and_key() {
    let ws = Workspace::new("cfg-pwmode");
    // The service user reads the config but not the password.
    chmod(ws.path(), 0o755);
    chmod(&ws.path().join("conf.d"), 0o755);
    let secret = ws.path().join("cassandra.password");
    fs::write(&secret, "hunter2\n").unwrap();
    chmod(&secret, 0o000);
    config_with_password_file(&ws, &secret);
    chmod(&ws.config(), 0o644);
    let line = line_of(&ws.config(), "password_file");
    assert_refused_as(
        &ws,
        true,
        &[
            &format!("{}:{line}:", ws.config().display()),
            "cassandra.password_file",
            "cannot be read",
            "ermission denied",
        ],
    );
    // Readable again: the same config passes (as the same user).
    chmod(&secret, 0o644);
    let out = cli(
        &[
            "check-config",
            "--config",
            &ws.config().display().to_string(),
        ],
        true,
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    if service_uid().is_some() {
        eprintln!("ran logship as nobody (uid 65534): root would bypass the file mode");
    }
}

#[test]
fn an_empty_password_file_is_refused_with_file_line_and_key() {
    let ws = Workspace::new("cfg-pwempty");
    let secret = ws.path().join("cassandra.password");
    fs::write(&secret, "\n").unwrap();
    config_with_password_file(&ws, &secret);
    let line = line_of(&ws.config(), "password_file");
    assert_refused(
        &ws,
        &[
            &format!("{}:{line}:", ws.config().display()),
            "cassandra.password_file",
            "is empty",
        ],
    );
}

/// Writes a drop-in with one nginx `[[source]]` named `web` and `extra` keys; returns it.
fn source_dropin(ws: &Workspace, paths: &str, extra: &str) -> std::path::PathBuf {
    ws.write_config(None, "", &[]);
    let dropin = ws.dropin("30-web.toml");
    fs::write(
        &dropin,
        format!("# the web server\n[[source]]\nname = \"web\"\npaths = [\"{paths}\"]\nformat = \"nginx\"\n{extra}"),
    )
    .unwrap();
    dropin
}

#[test]
fn a_glob_with_a_syntax_error_is_refused_with_file_line_and_key() {
    let ws = Workspace::new("cfg-glob");
    let bad = format!("{}/logs/[web.log", ws.path().display());
    let dropin = source_dropin(&ws, &bad, "");
    assert_refused(
        &ws,
        &[
            &format!("{}:4:", dropin.display()),
            "source[web].paths",
            "bad glob",
            "[web.log",
        ],
    );
    let dropin = source_dropin(
        &ws,
        &format!("{}/logs/*.log", ws.path().display()),
        "exclude = [\"*.{gz\"]\n",
    );
    assert_refused(
        &ws,
        &[
            &format!("{}:6:", dropin.display()),
            "source[web].exclude",
            "bad glob",
        ],
    );
}

#[test]
fn a_ttl_beyond_cassandras_limit_is_refused_as_the_layer_refuses_it() {
    let ws = Workspace::new("cfg-ttl");
    let glob = format!("{}/logs/*.log", ws.path().display());
    // 20 years is Cassandra's (and the Layer's) limit: accepted.
    source_dropin(&ws, &glob, "ttl = \"630720000s\"\n");
    let config = ws.config().display().to_string();
    let out = ws.run_cli(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    assert!(out.stdout.contains("ttl 630720000 s"), "{}", out.stdout);
    // One second more: refused, with the Layer's words.
    let dropin = source_dropin(&ws, &glob, "ttl = \"630720001s\"\n");
    assert_refused(
        &ws,
        &[
            &format!("{}:6:", dropin.display()),
            "source[web].ttl",
            "expected whole seconds from 1 s to 20 years (Cassandra's limit)",
        ],
    );
    source_dropin(&ws, &glob, "ttl = \"1500ms\"\n");
    assert_refused(&ws, &["source[web].ttl", "whole seconds"]);
}

#[test]
fn a_bucket_wider_than_a_day_is_refused_not_clamped() {
    let ws = Workspace::new("cfg-bucket");
    let glob = format!("{}/logs/*.log", ws.path().display());
    source_dropin(&ws, &glob, "bucket = \"1d\"\n");
    let config = ws.config().display().to_string();
    let out = ws.run_cli(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    assert!(out.stdout.contains("bucket 86400 s"), "{}", out.stdout);
    let dropin = source_dropin(&ws, &glob, "bucket = \"2d\"\n");
    assert_refused(
        &ws,
        &[
            &format!("{}:6:", dropin.display()),
            "source[web].bucket",
            "1 minute to 1 day",
        ],
    );
}

#[test]
fn old_integer_tail_keys_are_read_with_a_warning_naming_file_line_and_key() {
    let ws = Workspace::new("cfg-deprecated");
    good_config(&ws);
    let dropin = ws.dropin("40-tail.toml");
    fs::write(
        &dropin,
        "# slower rescans\n[tail]\nrescan_interval_ms = 30000\n",
    )
    .unwrap();
    let config = ws.config().display().to_string();
    let out = ws.run_cli(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "warning: {}:3: tail.rescan_interval_ms: deprecated integer key: write rescan_interval = \"30000ms\" instead",
            dropin.display()
        )),
        "{}",
        out.stderr
    );
    // The new form: no warning for this drop-in; both forms at once: refused.
    fs::write(&dropin, "[tail]\nrescan_interval = \"30s\"\n").unwrap();
    let out = ws.run_cli(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr);
    assert!(!out.stderr.contains("40-tail.toml"), "{}", out.stderr);
    fs::write(
        &dropin,
        "[tail]\nrescan_interval = \"30s\"\nrescan_interval_ms = 30000\n",
    )
    .unwrap();
    assert_refused(
        &ws,
        &[
            &dropin.display().to_string(),
            "rescan_interval is set twice",
        ],
    );
}

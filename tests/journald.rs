//! The agent's own logs through a real `systemd-journald`: run in a private mount namespace
//! (`unshare -m`, a tmpfs on /run, and one on /var/log/journal when it exists) so the test
//! owns the journal socket and never touches the machine's journal, then read back with
//! `journalctl -o json`. Each event arrives as one entry with the right PRIORITY and its
//! fields as `LOGSHIP_*` journal fields; nothing goes to stderr.
//!
//! Needs root (mounts), `unshare`, `systemd-journald` and `journalctl`: without them the
//! test is skipped visibly, and fails under CI=true.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;
use std::process::Command;

use agent::{Source, Workspace, append_lines, free_port};
use support::prereq;

const SCRIPT: &str = r#"set -eu
D=$1; BIN=$2; CONF=$3; JOURNALD=$4
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
"$JOURNALD" >"$D/journald.out" 2>&1 &
JPID=$!
for i in $(seq 1 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
[ -S /run/systemd/journal/socket ] || { echo "journald did not come up:"; cat "$D/journald.out"; exit 2; }
: > "$D/agent.stderr"
# What systemd sets for StandardError=journal: the device and inode of the stream.
export JOURNAL_STREAM=$(stat -c '%d:%i' "$D/agent.stderr")
"$BIN" run --config "$CONF" 2>>"$D/agent.stderr" &
APID=$!
# Up to 30 s for the error about the unreachable node, then SIGTERM.
for i in $(seq 1 300); do
  journalctl -o cat --no-pager _PID=$APID 2>/dev/null | grep -q 'cannot reach Cassandra' && break
  sleep 0.1
done
kill -TERM $APID
set +e; wait $APID; echo "agent exit $?" > "$D/agent.exit"; set -e
journalctl --sync 2>/dev/null || true
journalctl -o json --no-pager _PID=$APID > "$D/journal.json"
kill $JPID; wait $JPID 2>/dev/null || true
"#;

fn prerequisites() -> Result<(String, String), String> {
    if !prereq::is_root() {
        return Err("a private journald needs root (mount namespace, tmpfs on /run)".into());
    }
    let unshare = prereq::find_tool("unshare")?;
    let journald = prereq::find_tool("systemd-journald")?;
    prereq::find_tool("journalctl")?;
    let probe = Command::new(&unshare)
        .args(["-m", "--propagation", "private", "true"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "unshare -m is not allowed here: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    Ok((
        unshare.display().to_string(),
        journald.display().to_string(),
    ))
}

#[test]
fn own_logs_reach_a_real_journald_with_priorities_and_logship_fields() {
    let Some((unshare, journald)) = prereq::require(prerequisites()) else {
        return;
    };
    let ws = Workspace::new("journald");
    // A node that is not there (an error), ten lines it cannot ship before a 1 s shutdown
    // deadline (a warning), and the usual start-up notes.
    let cassandra = format!(
        "[cassandra]\ncontact_points = [\"127.0.0.1:{}\"]\nkeyspace = \"nowhere\"\n",
        free_port()
    );
    ws.write_config(None, &cassandra, &[Source::nginx("web", &ws.log("*.log"))]);
    let config = fs::read_to_string(ws.config()).expect("config");
    let config = config.replace("[agent]\n", "[agent]\nshutdown_timeout = \"1s\"\n");
    fs::write(ws.config(), config).expect("config");
    append_lines(&ws.log("access.log"), 0, 10);
    let script = ws.path().join("journald.sh");
    fs::write(&script, SCRIPT).expect("script");
    let out = Command::new(&unshare)
        .args(["-m", "--propagation", "private", "bash"])
        .arg(&script)
        .arg(ws.path())
        .arg(env!("CARGO_BIN_EXE_logship"))
        .arg(ws.config())
        .arg(&journald)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LOGSHIP_LOG")
        .output()
        .expect("run unshare");
    let read = |name: &str| fs::read_to_string(ws.path().join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "the namespace script failed: {}\n{}\njournald: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        read("journald.out")
    );
    let entries: Vec<serde_json::Value> = read("journal.json")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journalctl -o json line"))
        .collect();
    let dump = || {
        entries
            .iter()
            .map(|e| format!("{} {}", e["PRIORITY"], e["MESSAGE"]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let find = |message: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"].as_str().is_some_and(|m| m.contains(message)))
            .unwrap_or_else(|| panic!("no journal entry {message:?} among:\n{}", dump()))
    };
    let field = |e: &serde_json::Value, k: &str| e[k].as_str().map(str::to_owned);

    let starting = find("logship starting");
    assert!(
        matches!(field(starting, "PRIORITY").as_deref(), Some("5" | "6")),
        "INFO is notice or informational: {starting}"
    );
    assert_eq!(
        field(starting, "SYSLOG_IDENTIFIER").as_deref(),
        Some("logship")
    );
    assert_eq!(
        field(starting, "LOGSHIP_VERSION").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        field(starting, "LOGSHIP_CONFIG"),
        Some(ws.config().display().to_string()),
        "{starting}"
    );
    assert_eq!(field(starting, "LOGSHIP_LOGS").as_deref(), Some("Journald"));

    let unreachable = find("cannot reach Cassandra");
    assert_eq!(
        field(unreachable, "PRIORITY").as_deref(),
        Some("3"),
        "ERROR: {unreachable}"
    );
    assert_eq!(
        field(unreachable, "LOGSHIP_ERROR_KIND").as_deref(),
        Some("cassandra")
    );
    assert!(
        field(unreachable, "LOGSHIP_ERROR").is_some_and(|e| e.contains("127.0.0.1:")),
        "the error names the address: {unreachable}"
    );

    let warn = entries
        .iter()
        .find(|e| field(e, "PRIORITY").as_deref() == Some("4"))
        .unwrap_or_else(|| panic!("no WARN (priority 4) entry among:\n{}", dump()));
    assert!(
        entries
            .iter()
            .any(|e| field(e, "LOGSHIP_SOURCE").as_deref() == Some("web")),
        "a per-source field arrives as LOGSHIP_SOURCE:\n{}",
        dump()
    );
    eprintln!("warning entry: {warn}");
    // No field escapes the prefix (a bare ERROR= or SOURCE= would clash with journal fields).
    for e in &entries {
        for key in e.as_object().expect("entry").keys() {
            let known = key.starts_with("LOGSHIP_")
                || key.starts_with('_')
                || matches!(
                    key.as_str(),
                    "MESSAGE"
                        | "PRIORITY"
                        | "SYSLOG_IDENTIFIER"
                        | "CODE_FILE"
                        | "CODE_LINE"
                        | "TARGET"
                );
            assert!(known, "a field outside LOGSHIP_*: {key} in {e}");
        }
    }
    // With JOURNAL_STREAM naming stderr, every line went to the journal, none to stderr.
    assert_eq!(
        read("agent.stderr"),
        "",
        "text on stderr besides the journal"
    );
    assert!(
        read("agent.exit").starts_with("agent exit "),
        "{}",
        read("agent.exit")
    );
}

//! The packaged unit (`systemd/logship.service`, with all its sandboxing) under a real
//! systemd: `tests/systemd_container.sh` boots this machine's own systemd in a container
//! (`systemd-nspawn` on an overlay of `/` held in a tmpfs, private network, so nothing of the
//! machine changes), installs the unit, the binary and a config, and checks that the service
//! comes up (Type=notify READY), reloads on `systemctl reload` in the same process, and stops
//! with Result=success.
//!
//! Needs root, `systemd-nspawn` (Debian package `systemd-container`), `nsenter` and overlayfs:
//! without them the test is skipped visibly, and fails under CI=true.

mod support;

use std::process::Command;

use support::prereq;

fn prerequisites() -> Result<(), String> {
    if !prereq::is_root() {
        return Err("booting systemd in a container needs root".into());
    }
    prereq::find_tool("systemd-nspawn")
        .map_err(|e| format!("{e} (Debian package systemd-container)"))?;
    prereq::find_tool("nsenter")?;
    prereq::find_tool("systemctl")?;
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems.contains("overlay") {
        return Err("the kernel has no overlayfs".into());
    }
    Ok(())
}

#[test]
fn packaged_unit_under_a_real_systemd_starts_reloads_and_stops() {
    if prereq::require(prerequisites()).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("timeout")
        .arg("300")
        .arg("bash")
        .arg(format!("{root}/tests/systemd_container.sh"))
        .arg(work.path())
        .arg(env!("CARGO_BIN_EXE_logship"))
        .arg(format!("{root}/systemd/logship.service"))
        .output()
        .expect("run tests/systemd_container.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let journal = std::fs::read_to_string(work.path().join("unit.journal")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}\nunit journal:\n{journal}",
        out.status
    );
    for step in ["prepare", "boot", "start", "reload", "stop"] {
        assert!(
            stdout.contains(&format!("STEP {step} ok")),
            "step {step} not reached:\n{stdout}\n{stderr}"
        );
    }
    assert!(journal.contains("config reloaded"), "{journal}");
    assert!(
        journal.contains("final checkpoints written; stopped"),
        "{journal}"
    );
}

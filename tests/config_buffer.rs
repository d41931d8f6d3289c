//! `[buffer] max_bytes`: a bad value is refused with the file, the line and the key; a
//! good one reaches the validated config.
#![cfg(feature = "agent")]

use std::path::Path;

use logship::config::{Config, ConfigFile};

const SOURCE: &str =
    "[[source]]\nname = \"web\"\npaths = [\"/var/log/x.log\"]\nformat = \"syslog\"\n";

fn load(buffer: &str) -> Result<Config, String> {
    let text = format!("[agent]\nhost = \"h\"\n\n[buffer]\n{buffer}\n{SOURCE}");
    let file = ConfigFile::from_text(Path::new("/etc/logship/logship.toml"), &text, |_| None)
        .map_err(|e| e.to_string())?;
    Config::from_files(&[file]).map_err(|e| e.to_string())
}

#[test]
fn a_too_small_max_bytes_names_the_file_the_line_and_the_key() {
    let e = load("capacity = 10000\nmax_bytes = 1024\n").unwrap_err();
    // `max_bytes` is on line 6: [agent], host, blank, [buffer], capacity, max_bytes.
    assert!(e.contains("/etc/logship/logship.toml:6"), "{e}");
    assert!(e.contains("buffer.max_bytes"), "{e}");
    assert!(e.contains("65536"), "{e}");
}

#[test]
fn a_max_bytes_of_the_wrong_type_names_the_key() {
    let e = load("max_bytes = \"8MiB\"\n").unwrap_err();
    assert!(e.contains("/etc/logship/logship.toml"), "{e}");
    assert!(e.contains("max_bytes"), "{e}");
}

#[test]
fn max_bytes_defaults_to_8_mib_and_is_read() {
    assert_eq!(load("").unwrap().buffer.max_bytes, 8 << 20);
    assert_eq!(
        load("max_bytes = 1048576\n").unwrap().buffer.max_bytes,
        1 << 20
    );
}

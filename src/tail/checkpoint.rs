//! The checkpoint file: each file's acknowledged offset, in the agent's data directory.
//!
//! Written whole, atomically (temp file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old or the new file, never a torn one. The format is a versioned serde
//! enum so a later version can read what an earlier one wrote.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::pipeline::FileId;

/// Name of the checkpoint file inside the data directory.
pub const FILE_NAME: &str = "checkpoints.json";

/// One file's resume point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file the offset belongs to.
    pub file: FileId,
    /// The path the file had when last read (informational: identity is `file`).
    pub path: String,
    /// Every record before this byte offset was acknowledged by the sink.
    pub offset: u64,
    /// The file's carried time at `offset`: the timestamp of an entry there that has none
    /// of its own (RFC 3339). Absent in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339")]
    pub time: Option<Timestamp>,
    /// The file's inode was truncated in place (`copytruncate`): its bytes live on only in
    /// a copy, which continues it (see `AckTracker::claim`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moved: bool,
    /// Unix seconds when the file was last read or acknowledged.
    pub updated: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum CheckpointFile {
    #[serde(rename = "1")]
    V1 { checkpoints: Vec<Checkpoint> },
}

/// What was found in the data directory at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// No checkpoint file: the agent's first start, where `read_from` applies.
    FirstStart,
    /// The checkpoints read back.
    Restored(Vec<Checkpoint>),
    /// The file could not be read. It was moved aside and every file is read from its
    /// beginning: repeating lines is safe (row ids are deterministic), skipping is not.
    Corrupt {
        /// Where the unreadable file was moved.
        moved_to: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
}

/// Why the checkpoint file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}; check that it is writable by the agent")]
    CreateDir {
        /// The path concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The checkpoint file could not be read.
    #[error("cannot read the checkpoint file {path}")]
    Read {
        /// The path concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The checkpoint file could not be written durably.
    #[error("cannot write the checkpoint file {path}; is the disk full or read-only?")]
    Write {
        /// The path concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}

/// Reads and writes the checkpoint file of one data directory.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: PathBuf,
    path: PathBuf,
}

impl Checkpointer {
    /// Opens (creating if needed) the data directory and loads its checkpoints. A corrupt
    /// file is not an error: see [`Loaded::Corrupt`].
    pub fn open(data_dir: &Path) -> Result<(Checkpointer, Loaded), CheckpointError> {
        fs::create_dir_all(data_dir).map_err(|source| CheckpointError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let cp = Checkpointer {
            dir: data_dir.to_owned(),
            path: data_dir.join(FILE_NAME),
        };
        let loaded = cp.load()?;
        Ok((cp, loaded))
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Loaded, CheckpointError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::FirstStart),
            Err(source) => {
                return Err(CheckpointError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        match serde_json::from_slice::<CheckpointFile>(&bytes) {
            Ok(CheckpointFile::V1 { checkpoints }) => Ok(Loaded::Restored(checkpoints)),
            Err(e) => {
                let stamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let moved_to = self.dir.join(format!("{FILE_NAME}.corrupt-{stamp}"));
                if let Err(source) = fs::rename(&self.path, &moved_to) {
                    return Err(CheckpointError::Write {
                        path: moved_to,
                        source,
                    });
                }
                Ok(Loaded::Corrupt {
                    moved_to,
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Replaces the checkpoint file with `checkpoints`, atomically and durably.
    pub fn save(&self, checkpoints: &[Checkpoint]) -> Result<(), CheckpointError> {
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| CheckpointError::Write { path, source }
        };
        let body = serde_json::to_vec(&CheckpointFile::V1 {
            checkpoints: checkpoints.to_vec(),
        })
        .map_err(|e| io::Error::other(e.to_string()))
        .map_err(err(&tmp))?;
        let mut f = File::create(&tmp).map_err(err(&tmp))?;
        f.write_all(&body).map_err(err(&tmp))?;
        f.sync_all().map_err(err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(err(&self.path))?;
        // The rename is durable only once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err(&self.dir))?;
        Ok(())
    }
}

/// `Option<Timestamp>` as an RFC 3339 string with all its digits, so it reads back exactly.
mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(t),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(offset: u64) -> Checkpoint {
        Checkpoint {
            file: FileId {
                dev: 1,
                inode: 2,
                fingerprint: 3,
            },
            path: "/var/log/x.log".into(),
            offset,
            time: Some("2026-11-30T17:00:00.123456789Z".parse().unwrap()),
            moved: false,
            updated: 7,
        }
    }

    #[test]
    fn missing_file_is_a_first_start_and_saves_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (c, loaded) = Checkpointer::open(&dir.path().join("data")).unwrap();
        assert_eq!(loaded, Loaded::FirstStart);
        c.save(&[cp(42)]).unwrap();
        let (_, loaded) = Checkpointer::open(&dir.path().join("data")).unwrap();
        assert_eq!(loaded, Loaded::Restored(vec![cp(42)]));
        let text = fs::read_to_string(c.path()).unwrap();
        assert!(text.starts_with(r#"{"version":"1","#), "{text}");
    }

    #[test]
    fn files_without_carried_times_still_load() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE_NAME),
            br#"{"version":"1","checkpoints":[{"file":{"dev":1,"inode":2,"fingerprint":3},"path":"/x","offset":9,"updated":7}]}"#,
        )
        .unwrap();
        let (_, loaded) = Checkpointer::open(dir.path()).unwrap();
        let Loaded::Restored(c) = loaded else {
            panic!("{loaded:?}");
        };
        assert_eq!((c[0].offset, c[0].time), (9, None));
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{\"version\":\"1\",\"checkp").unwrap();
        let (c, loaded) = Checkpointer::open(dir.path()).unwrap();
        let Loaded::Corrupt { moved_to, reason } = loaded else {
            panic!("expected Corrupt, got {loaded:?}");
        };
        assert!(moved_to.exists());
        assert!(!reason.is_empty());
        assert!(!c.path().exists());
    }

    #[test]
    fn unknown_version_is_corrupt_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE_NAME),
            br#"{"version":"99","checkpoints":[]}"#,
        )
        .unwrap();
        let (_, loaded) = Checkpointer::open(dir.path()).unwrap();
        assert!(matches!(loaded, Loaded::Corrupt { .. }), "{loaded:?}");
    }
}

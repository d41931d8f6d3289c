//! Reading the config: the main file plus `conf.d/*.toml` drop-ins, `${ENV_VAR}`
//! interpolation, and errors that name the file, the line and the key.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A config problem, always naming where it is so an operator can fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A config file or the drop-in directory cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bad value, key or syntax.
    #[error("{}:{line}:{column}: {key}{message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (1 for checks made after parsing).
        column: usize,
        /// Dotted path of the offending key (`cassandra.port`, `source[0].format`), with
        /// a trailing `: ` when known.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A `${NAME}` whose variable is not set.
    #[error("{}:{line}: environment variable {name} is not set (write $${{{name}}} for a literal)", path.display())]
    UndefinedEnv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The variable.
        name: String,
    },
}

impl ConfigError {
    /// An error about a value at `line` of `path` (for checks made after parsing).
    pub fn at(path: &Path, line: usize, key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            column: 1,
            key: if key.is_empty() {
                String::new()
            } else {
                format!("{key}: ")
            },
            message: message.into(),
        }
    }
}

/// A setting that is accepted but should be changed (a deprecated key), with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {key}: {message}", path.display())]
pub struct ConfigWarning {
    /// The file that sets it.
    pub path: PathBuf,
    /// 1-based line of the key.
    pub line: usize,
    /// Dotted key (`tail.rescan_interval_ms`).
    pub key: String,
    /// What to write instead.
    pub message: String,
}

/// One file of the config, after interpolation.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text, `${VAR}`s replaced.
    pub text: String,
}

impl ConfigFile {
    /// Reads and interpolates `path` from the process environment.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_text(path, &raw, |name| std::env::var(name).ok())
    }

    /// A file from its text, interpolated with `env` (tests pass their own).
    pub fn from_text(
        path: &Path,
        raw: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = interpolate(raw, env).map_err(|(offset, name)| ConfigError::UndefinedEnv {
            path: path.to_owned(),
            line: line_of(raw, offset),
            name,
        })?;
        Ok(ConfigFile {
            path: path.to_owned(),
            text,
        })
    }

    /// Deserializes this file alone, so type errors and unknown keys point into it.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let de = toml::Deserializer::parse(&self.text).map_err(|e| self.toml_error("", &e))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            self.toml_error(&key, e.inner())
        })
    }

    /// The file as a TOML table, for merging with the other files.
    pub fn table(&self) -> Result<toml::Table, ConfigError> {
        self.text
            .parse::<toml::Table>()
            .map_err(|e| self.toml_error("", &e))
    }

    /// The 1-based line of each `[[section]]` header, in order.
    pub fn array_table_lines(&self, section: &str) -> Vec<usize> {
        let header = format!("[[{section}]]");
        self.text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with(&header))
            .map(|(i, _)| i + 1)
            .collect()
    }

    fn toml_error(&self, key: &str, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, column) = line_col(&self.text, offset);
        let key = if key.is_empty() || key == "." {
            String::new()
        } else {
            format!("{key}: ")
        };
        ConfigError::Invalid {
            path: self.path.clone(),
            line,
            column,
            key,
            message: e.message().trim_end().to_owned(),
        }
    }
}

/// The drop-ins of `dir`: `*.toml`, in name order. A missing directory has none.
pub fn dropins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Merges `overlay` into `base`: tables merge key by key (the overlay wins), arrays of
/// tables named in `append` are concatenated (drop-ins add sources), anything else is
/// replaced.
pub fn merge(base: &mut toml::Table, overlay: toml::Table, append: &[&str]) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, &[]),
            (Some(toml::Value::Array(b)), toml::Value::Array(o))
                if append.contains(&key.as_str()) =>
            {
                b.extend(o)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Replaces `${NAME}` with the variable's value; `$${` stands for a literal `${`.
/// Comment lines are left alone, so documenting a variable never requires it to be set.
/// On an undefined variable, returns its byte offset and name.
fn interpolate(raw: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(raw.len());
    let mut offset = 0;
    for line in raw.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            let done = interpolate_line(line, &env).map_err(|(at, name)| (offset + at, name))?;
            out.push_str(&done);
        }
        offset += line.len();
    }
    Ok(out)
}

fn interpolate_line(
    raw: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut consumed = 0;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(literal) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = literal;
            consumed += pos + 3;
        } else if let Some(body) = after.strip_prefix("${") {
            match body.find('}') {
                Some(end) if is_env_name(&body[..end]) => {
                    let name = &body[..end];
                    let value = env(name).ok_or_else(|| (consumed + pos, name.to_owned()))?;
                    out.push_str(&value);
                    rest = &body[end + 1..];
                    consumed += pos + 2 + end + 1;
                }
                _ => {
                    out.push('$');
                    rest = &after[1..];
                    consumed += pos + 1;
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
            consumed += pos + 1;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

fn line_of(text: &str, offset: usize) -> usize {
    line_col(text, offset).0
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        server: Server,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Server {
        #[serde(default)]
        port: u16,
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::from_text(Path::new("/etc/x.toml"), text, |n| {
            (n == "PORT").then(|| "9042".to_owned())
        })
        .unwrap()
    }

    #[test]
    fn interpolates_env_and_keeps_escapes() {
        let f = file("a = \"${PORT}\"\nb = \"$${PORT}\"\nc = \"$x ${ not}\"\n");
        assert_eq!(
            f.text,
            "a = \"9042\"\nb = \"${PORT}\"\nc = \"$x ${ not}\"\n"
        );
    }

    #[test]
    fn reads_a_valid_file() {
        assert_eq!(
            file("[server]\nport = ${PORT}\n")
                .deserialize::<Doc>()
                .unwrap()
                .server
                .port,
            9042
        );
    }

    #[test]
    fn comment_lines_are_not_interpolated() {
        let f = file("# set ${UNSET_VAR} to...\na = ${PORT}\n");
        assert_eq!(f.text, "# set ${UNSET_VAR} to...\na = 9042\n");
    }

    #[test]
    fn undefined_env_names_file_line_and_variable() {
        let err =
            ConfigFile::from_text(Path::new("/etc/x.toml"), "a = 1\nb = \"${NOPE}\"\n", |_| {
                None
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/x.toml:2: environment variable NOPE is not set (write $${NOPE} for a literal)"
        );
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let err = file("[server]\nport = \"high\"\n")
            .deserialize::<Doc>()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/etc/x.toml:2:8: server.port: invalid type"),
            "{text}"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = file("[server]\nport = 1\nprot = 2\n")
            .deserialize::<Doc>()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/x.toml:3:1: server"), "{text}");
        assert!(text.contains("unknown field `prot`"), "{text}");
    }

    #[test]
    fn syntax_error_names_line() {
        let err = file("[server\nport = 1\n")
            .deserialize::<Doc>()
            .unwrap_err();
        assert!(err.to_string().starts_with("/etc/x.toml:1:"), "{err}");
    }

    #[test]
    fn merge_appends_sources_and_overrides_scalars() {
        let mut base: toml::Table = "[a]\nx = 1\ny = 2\n[[source]]\nname = \"one\"\n"
            .parse()
            .unwrap();
        let overlay: toml::Table = "[a]\ny = 3\n[[source]]\nname = \"two\"\n".parse().unwrap();
        merge(&mut base, overlay, &["source"]);
        assert_eq!(base["a"]["x"].as_integer(), Some(1));
        assert_eq!(base["a"]["y"].as_integer(), Some(3));
        assert_eq!(base["source"].as_array().map(|a| a.len()), Some(2));
    }

    #[test]
    fn array_table_lines_finds_headers() {
        let f = file("[agent]\n\n[[source]]\nname=\"a\"\n  [[source]]\n");
        assert_eq!(f.array_table_lines("source"), vec![3, 5]);
    }
}

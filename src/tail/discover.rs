//! Which files a source reads: include globs minus exclude globs, and the directories to
//! watch for them.

use std::fs;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// How deep a `**` pattern is followed below its fixed prefix.
const MAX_DEPTH: usize = 16;

/// Why a source's path patterns are not usable.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// A pattern is relative; the agent's working directory is not meaningful.
    #[error("path pattern {0:?} must be absolute (start with /)")]
    NotAbsolute(String),
    /// A pattern is not a valid glob.
    #[error("bad glob {pattern:?}")]
    Glob {
        /// The pattern as written.
        pattern: String,
        /// What the glob parser said.
        #[source]
        source: globset::Error,
    },
    /// The source has no include pattern.
    #[error("a source needs at least one path pattern")]
    Empty,
}

/// A directory under which matching files may appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The deepest directory without glob characters.
    pub dir: PathBuf,
    /// The pattern crosses directories (`**` or a glob in a directory name).
    pub recursive: bool,
}

/// A source's compiled path patterns.
#[derive(Debug, Clone)]
pub struct Patterns {
    include: GlobSet,
    exclude: GlobSet,
    /// Excludes without a `/` match the file name alone (`*.gz`).
    exclude_names: GlobSet,
    roots: Vec<Root>,
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Matching paths (not yet checked to be regular files).
    pub files: Vec<PathBuf>,
    /// Existing directories that may hold matches: the ones to watch.
    pub dirs: Vec<PathBuf>,
    /// Roots that do not exist (yet): polled until they do.
    pub missing: Vec<PathBuf>,
}

fn glob(pattern: &str) -> Result<Glob, PatternError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| PatternError::Glob {
            pattern: pattern.to_owned(),
            source,
        })
}

impl Patterns {
    /// Compiles include and exclude globs; include patterns must be absolute.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, PatternError> {
        if include.is_empty() {
            return Err(PatternError::Empty);
        }
        let mut inc = GlobSetBuilder::new();
        let mut roots: Vec<Root> = Vec::new();
        for p in include {
            if !p.starts_with('/') {
                return Err(PatternError::NotAbsolute(p.clone()));
            }
            inc.add(glob(p)?);
            let root = root_of(Path::new(p));
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        let mut exc = GlobSetBuilder::new();
        let mut names = GlobSetBuilder::new();
        for p in exclude {
            if p.contains('/') {
                exc.add(glob(p)?);
            } else {
                names.add(glob(p)?);
            }
        }
        let build = |b: GlobSetBuilder, what: &[String]| {
            b.build().map_err(|source| PatternError::Glob {
                pattern: what.join(", "),
                source,
            })
        };
        Ok(Patterns {
            include: build(inc, include)?,
            exclude: build(exc, exclude)?,
            exclude_names: build(names, exclude)?,
            roots,
        })
    }

    /// The directories to watch and scan.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// Whether `path` is one of the source's files.
    pub fn matches(&self, path: &Path) -> bool {
        self.include.is_match(path)
            && !self.exclude.is_match(path)
            && !path
                .file_name()
                .is_some_and(|n| self.exclude_names.is_match(n))
    }

    /// Lists every matching path under the roots.
    pub fn scan(&self) -> Scan {
        let mut scan = Scan::default();
        for root in &self.roots {
            if !root.dir.is_dir() {
                scan.missing.push(root.dir.clone());
                continue;
            }
            self.walk(&root.dir, root.recursive, 0, &mut scan);
        }
        scan.files.sort();
        scan.files.dedup();
        scan.dirs.sort();
        scan.dirs.dedup();
        scan
    }

    /// Lists the matching paths directly in `dir` (after a notify event there).
    pub fn scan_dir(&self, dir: &Path) -> Vec<PathBuf> {
        let mut scan = Scan::default();
        self.walk(dir, false, 0, &mut scan);
        scan.files
    }

    fn walk(&self, dir: &Path, recursive: bool, depth: usize, scan: &mut Scan) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        scan.dirs.push(dir.to_owned());
        for entry in entries.flatten() {
            let path = entry.path();
            // Symlinked directories are not followed: they could loop.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                if recursive && depth < MAX_DEPTH {
                    self.walk(&path, true, depth + 1, scan);
                }
            } else if self.matches(&path) {
                scan.files.push(path);
            }
        }
    }
}

/// The fixed directory prefix of a pattern: everything before the first component with a
/// glob character. A literal path watches its parent directory.
fn root_of(pattern: &Path) -> Root {
    let is_glob = |s: &str| s.contains(['*', '?', '[', '{']);
    let mut dir = PathBuf::from("/");
    let comps: Vec<&str> = pattern
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let first_glob = comps.iter().position(|c| is_glob(c));
    let fixed = first_glob.unwrap_or(comps.len().saturating_sub(1));
    for c in comps.iter().take(fixed) {
        dir.push(c);
    }
    let recursive = match first_glob {
        Some(i) => i + 1 < comps.len(),
        None => false,
    };
    Root { dir, recursive }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(inc: &[&str], exc: &[&str]) -> Patterns {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Patterns::new(&s(inc), &s(exc)).unwrap()
    }

    #[test]
    fn roots_are_the_fixed_prefix() {
        let p = pats(
            &["/var/log/nginx/*.log", "/var/log/syslog", "/srv/**/app.log"],
            &[],
        );
        assert_eq!(
            p.roots(),
            &[
                Root {
                    dir: "/var/log/nginx".into(),
                    recursive: false
                },
                Root {
                    dir: "/var/log".into(),
                    recursive: false
                },
                Root {
                    dir: "/srv".into(),
                    recursive: true
                },
            ]
        );
    }

    #[test]
    fn star_does_not_cross_directories_and_excludes_apply() {
        let p = pats(
            &["/var/log/nginx/*.log*"],
            &["*.gz", "/var/log/nginx/debug*"],
        );
        assert!(p.matches(Path::new("/var/log/nginx/access.log")));
        assert!(p.matches(Path::new("/var/log/nginx/access.log.1")));
        assert!(!p.matches(Path::new("/var/log/nginx/access.log.2.gz")));
        assert!(!p.matches(Path::new("/var/log/nginx/debug.log")));
        assert!(!p.matches(Path::new("/var/log/nginx/old/access.log")));
    }

    #[test]
    fn relative_patterns_are_refused() {
        let err = Patterns::new(&["logs/*.log".to_string()], &[]).unwrap_err();
        assert!(matches!(err, PatternError::NotAbsolute(_)));
    }

    #[test]
    fn scan_finds_matches_and_reports_missing_roots() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.log"), "x\n").unwrap();
        fs::write(d.join("b.log.1.gz"), "x\n").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/c.log"), "x\n").unwrap();
        let p = pats(
            &[
                &format!("{}/*.log*", d.display()),
                &format!("{}/nope/*.log", d.display()),
            ],
            &["*.gz"],
        );
        let s = p.scan();
        assert_eq!(s.files, vec![d.join("a.log")]);
        assert_eq!(s.missing, vec![d.join("nope")]);
        let p = pats(&[&format!("{}/**/*.log", d.display())], &[]);
        assert_eq!(p.scan().files, vec![d.join("a.log"), d.join("sub/c.log")]);
    }
}

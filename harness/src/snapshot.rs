//! Snapshots in insta's `.snap` format, so `cargo insta review` works on them:
//!
//! ```text
//! ---
//! source: scenarios/refund/basics/full-refund-keypad.yaml
//! description: "refund/basics/full-refund-keypad: Full refund at the keypad"
//! ---
//! == step 1: keys MENU 3
//! …
//! ```
//!
//! Files live beside the scenario: `<family>/snapshots/<stem>[@<param>][@<rig>].snap`. Emulated
//! and emulator-process rigs share a snapshot; a real terminal's carry `@<rig>`. Comparison
//! follows insta: the body is compared after trimming trailing whitespace and CRLF → LF.

use std::path::{Path, PathBuf};

/// Where the snapshot of a scenario (file `scenario`) lives.
pub fn snapshot_path(scenario: &Path, param: Option<&str>, rig_suffix: Option<&str>) -> PathBuf {
    let dir = scenario
        .parent()
        .unwrap_or(Path::new("."))
        .join("snapshots");
    let mut name = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(p) = param {
        name.push('@');
        name.push_str(p);
    }
    if let Some(r) = rig_suffix {
        name.push('@');
        name.push_str(r);
    }
    dir.join(format!("{name}.snap"))
}

/// The `.snap.new` beside a `.snap`.
pub fn pending_path(snap: &Path) -> PathBuf {
    let mut s = snap.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

/// insta's normalisation of a body before comparing.
pub fn normalise_body(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_string()
}

/// Reads the body of a `.snap` file (everything after the second `---` line).
pub fn read_body(path: &Path) -> std::io::Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(split_body(&text).to_string()))
}

fn split_body(text: &str) -> &str {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return text;
    };
    match rest.find("\n---\n") {
        Some(i) => &rest[i + 5..],
        None => match rest.find("\n---\r\n") {
            Some(i) => &rest[i + 6..],
            None => rest,
        },
    }
}

/// Header fields of a snapshot we write.
pub struct Header<'a> {
    /// Path of the scenario file, relative to the workspace.
    pub source: &'a str,
    pub description: &'a str,
}

fn yaml_quote(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            '\n' => vec!['\\', 'n'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// The file text for a snapshot.
pub fn render_file(h: &Header<'_>, body: &str) -> String {
    format!(
        "---\nsource: {}\ndescription: {}\n---\n{}\n",
        yaml_quote(h.source),
        yaml_quote(h.description),
        normalise_body(body)
    )
}

/// What comparing a run with its snapshot found.
#[derive(Debug, PartialEq, Eq)]
pub enum Comparison {
    Matches,
    /// No snapshot yet.
    New,
    Differs {
        old: String,
    },
}

pub fn compare(path: &Path, body: &str) -> std::io::Result<Comparison> {
    Ok(match read_body(path)? {
        None => Comparison::New,
        Some(old) if normalise_body(&old) == normalise_body(body) => Comparison::Matches,
        Some(old) => Comparison::Differs { old },
    })
}

/// Writes `body` as the accepted snapshot (`accept`) or as a pending `.snap.new`.
pub fn write(path: &Path, h: &Header<'_>, body: &str, accept: bool) -> std::io::Result<PathBuf> {
    let target = if accept {
        path.to_path_buf()
    } else {
        pending_path(path)
    };
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&target, render_file(h, body))?;
    if accept {
        let _ = std::fs::remove_file(pending_path(path));
    }
    Ok(target)
}

/// A unified diff of two bodies, coloured for a terminal when `color`.
pub fn diff(old: &str, new: &str, color: bool) -> String {
    use similar::{ChangeTag, TextDiff};
    let old = normalise_body(old);
    let new = normalise_body(new);
    let d = TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    for group in d.grouped_ops(3) {
        for op in group {
            for change in d.iter_changes(&op) {
                let (sign, pre, post) = match change.tag() {
                    ChangeTag::Delete => ("-", "\x1b[31m", "\x1b[0m"),
                    ChangeTag::Insert => ("+", "\x1b[32m", "\x1b[0m"),
                    ChangeTag::Equal => (" ", "", ""),
                };
                let line = change.to_string_lossy();
                let line = line.trim_end_matches('\n');
                if color && !pre.is_empty() {
                    out.push_str(&format!("{pre}{sign}{line}{post}\n"));
                } else {
                    out.push_str(&format!("{sign}{line}\n"));
                }
            }
        }
        out.push_str("…\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_suite_layout() {
        let p = snapshot_path(
            Path::new("scenarios/refund/basics/full.yaml"),
            Some("JPY"),
            None,
        );
        assert_eq!(
            p,
            Path::new("scenarios/refund/basics/snapshots/full@JPY.snap")
        );
        let p = snapshot_path(Path::new("s/a.yaml"), None, Some("lab1"));
        assert_eq!(p, Path::new("s/snapshots/a@lab1.snap"));
        assert_eq!(pending_path(&p), Path::new("s/snapshots/a@lab1.snap.new"));
    }

    #[test]
    fn write_compare_accept_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("snapshots/x.snap");
        let h = Header {
            source: "scenarios/x.yaml",
            description: "x: \"quoted\"",
        };
        assert_eq!(compare(&p, "a\nb").unwrap(), Comparison::New);
        let pending = write(&p, &h, "a\nb", false).unwrap();
        assert!(pending.ends_with("x.snap.new"));
        write(&p, &h, "a\nb\n\n", true).unwrap();
        assert!(!pending.exists());
        assert_eq!(compare(&p, "a\r\nb").unwrap(), Comparison::Matches);
        assert!(matches!(
            compare(&p, "a\nc").unwrap(),
            Comparison::Differs { .. }
        ));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with(
                "---\nsource: \"scenarios/x.yaml\"\ndescription: \"x: \\\"quoted\\\"\"\n---\na\nb\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn diff_shows_removed_and_added_lines() {
        let d = diff("a\nb\nc", "a\nB\nc", false);
        assert!(d.contains("-b\n+B\n"), "{d}");
    }
}

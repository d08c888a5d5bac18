//! Loading a scenario file: parse (bounded, located) and validate everything that can be
//! checked without running it — rule IDs, capabilities, field numbers, fixture paths, key names,
//! variables. Every error carries file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protocol::fixture::yaml::{self, YamlError};
use serde_saphyr::Spanned;

use super::model::*;
use super::{MatcherValue, ordered::OrderedMap};
use crate::rules;

/// A located problem in a scenario (or rig) file.
pub type LoadError = YamlError;

/// One run of a scenario: the whole file, or one entry of its matrix.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The matrix entry's name (`JPY`), or `None` without a matrix.
    pub name: Option<String>,
    pub vars: BTreeMap<String, String>,
}

/// A parsed and validated scenario.
#[derive(Clone, Debug)]
pub struct LoadedScenario {
    pub path: PathBuf,
    /// The suite root: the nearest folder above the file that holds `fixtures/`.
    pub root: PathBuf,
    pub source: String,
    pub scenario: Scenario,
    pub variants: Vec<Variant>,
}

impl LoadedScenario {
    /// A path from the scenario, resolved against the suite root.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    /// `refund/basics` for `scenarios/refund/basics/x.yaml`: where its snapshots live.
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Finds the suite root above `path`.
pub fn find_root(path: &Path) -> Option<PathBuf> {
    let start = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()?.to_path_buf()
    };
    let start = std::fs::canonicalize(&start).unwrap_or(start);
    start
        .ancestors()
        .find(|d| d.join("fixtures").is_dir())
        .map(Path::to_path_buf)
}

struct Checker<'a> {
    file: &'a str,
    errors: Vec<YamlError>,
}

impl Checker<'_> {
    fn at<T>(&mut self, s: &Spanned<T>, msg: impl Into<String>) {
        self.errors.push(YamlError::at(
            self.file,
            s.referenced.line(),
            s.referenced.column(),
            msg,
        ));
    }
    fn at_line(&mut self, line: u64, col: u64, msg: impl Into<String>) {
        self.errors.push(YamlError::at(self.file, line, col, msg));
    }
}

pub fn load_file(path: &Path) -> Result<LoadedScenario, LoadError> {
    let file = path.display().to_string();
    let source =
        std::fs::read_to_string(path).map_err(|e| YamlError::at(&file, 0, 0, e.to_string()))?;
    load_str(path, source)
}

/// Parses and validates `source` as if read from `path` (tests use this).
pub fn load_str(path: &Path, source: String) -> Result<LoadedScenario, LoadError> {
    let file = path.display().to_string();
    let scenario: Scenario = yaml::from_str(&source, &file)?;
    let root = find_root(path).ok_or_else(|| {
        YamlError::at(
            &file,
            1,
            1,
            "no `fixtures/` folder above this scenario: it is not inside a suite",
        )
    })?;
    let mut c = Checker {
        file: &file,
        errors: Vec::new(),
    };
    check(&mut c, &scenario, &root, &source);
    if let Some(first) = c.errors.into_iter().next() {
        return Err(with_excerpt(first, &source));
    }
    let variants = variants(&scenario);
    Ok(LoadedScenario {
        path: path.to_path_buf(),
        root,
        source,
        scenario,
        variants,
    })
}

/// Adds a caret excerpt to an error found after parsing.
pub fn with_excerpt(mut e: YamlError, source: &str) -> YamlError {
    if e.line == 0 {
        return e;
    }
    let lines: Vec<&str> = source.lines().collect();
    let idx = (e.line as usize).saturating_sub(1);
    let mut out = format!(
        "error: {}\n --> {}:{}:{}\n",
        e.message, e.file, e.line, e.column
    );
    let width = (e.line + 1).to_string().len();
    for (i, l) in lines.iter().enumerate().skip(idx.saturating_sub(1)).take(3) {
        out.push_str(&format!("{:>width$} | {}\n", i + 1, l));
        if i == idx {
            out.push_str(&format!(
                "{:>width$} | {}^ {}\n",
                "",
                " ".repeat((e.column as usize).saturating_sub(1)),
                e.message
            ));
        }
    }
    e.excerpt = out;
    e
}

fn variants(s: &Scenario) -> Vec<Variant> {
    let base: BTreeMap<String, String> = s
        .vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if s.matrix.is_empty() {
        return vec![Variant {
            name: None,
            vars: base,
        }];
    }
    s.matrix
        .iter()
        .map(|(name, vars)| {
            let mut v = base.clone();
            for (k, val) in vars.iter() {
                v.insert(k.to_string(), val.clone());
            }
            Variant {
                name: Some(name.to_string()),
                vars: v,
            }
        })
        .collect()
}

fn check(c: &mut Checker<'_>, s: &Scenario, root: &Path, source: &str) {
    if !s.id.value.starts_with("refund/") && !s.id.value.contains('/') {
        c.at(
            &s.id,
            format!(
                "id {:?} should name its family: `refund/<family>/<name>`",
                s.id.value
            ),
        );
    }
    if s.proves.trim().is_empty() || s.proves.lines().count() > 1 {
        c.at_line(
            1,
            1,
            "`proves` must state in one line what the scenario proves",
        );
    }
    for r in &s.covers {
        if !rules::is_rule(&r.value) {
            let known: Vec<&str> = rules::RULES.iter().map(|(r, _)| *r).collect();
            c.at(
                r,
                format!("unknown rule ID {:?}; known: {}", r.value, known.join(", ")),
            );
        }
    }
    check_capabilities(c, &s.requires);
    // What the steps use must be declared, so a reader (and a lab) sees it in `requires:`.
    let declared: Vec<&str> = s.requires.iter().map(|r| r.value.as_str()).collect();
    let missing: Vec<&str> = rules::implied_capabilities(s)
        .into_iter()
        .filter(|c| !declared.contains(c))
        .collect();
    if !missing.is_empty() {
        let (l, col) = protocol::fixture::terminal::locate_key(source, "requires");
        c.at_line(
            l,
            col,
            format!(
                "the steps use capabilities `requires:` does not list: {}",
                missing.join(", ")
            ),
        );
    }
    let all_vars = vars_defined(s);
    let check_path = |c: &mut Checker<'_>, p: &Spanned<String>, dir: bool| {
        if p.value.contains("${") {
            return; // resolved per variant; checked at run time
        }
        let full = root.join(&p.value);
        let ok = if dir { full.is_dir() } else { full.is_file() };
        if !ok {
            c.at(
                p,
                format!(
                    "{} {:?} does not exist under the suite root",
                    if dir { "folder" } else { "file" },
                    p.value
                ),
            );
        }
    };
    check_path(c, &s.terminal, false);
    if let Some(p) = &s.fixtures.cards {
        check_path(c, p, true);
    }
    if let Some(p) = &s.fixtures.journal {
        check_path(c, p, false);
    }
    if let Some(p) = &s.fixtures.keys {
        check_path(c, p, false);
    }
    if let Some(p) = &s.acquirer.fees {
        check_path(c, p, false);
    }
    if let Some(clock) = &s.clock
        && protocol::time::Instant::parse_rfc3339(&clock.value).is_err()
    {
        c.at(
            clock,
            format!(
                "clock {:?} is not RFC 3339 (2026-11-26T10:00:00+08:00)",
                clock.value
            ),
        );
    }
    if s.steps.is_empty() {
        c.at_line(1, 1, "a scenario needs at least one step");
    }
    for step in &s.steps {
        check_step(c, step);
    }
    check_variables(c, source, &all_vars, s);
}

fn vars_defined(s: &Scenario) -> Vec<String> {
    let mut v: Vec<String> = s.vars.iter().map(|(k, _)| k.to_string()).collect();
    for (_, m) in s.matrix.iter() {
        v.extend(m.iter().map(|(k, _)| k.to_string()));
    }
    v
}

/// Every `${name}` must be a variable, a matrix key, or captured by a step above it.
fn check_variables(c: &mut Checker<'_>, source: &str, defined: &[String], s: &Scenario) {
    let captures: Vec<(u64, String)> = s
        .steps
        .iter()
        .filter_map(|st| match &st.value {
            Step::Host(h) => Some(
                h.capture
                    .0
                    .iter()
                    .map(|(k, _)| (k.referenced.line(), k.value.clone()))
                    .collect::<Vec<_>>(),
            ),
            Step::Expect(e) | Step::Wait(e) => Some(
                e.capture
                    .0
                    .iter()
                    .map(|(k, _)| (k.referenced.line(), k.value.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    for (i, line) in source.lines().enumerate() {
        let lineno = i as u64 + 1;
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut rest = line;
        let mut offset = 0;
        while let Some(pos) = rest.find("${") {
            let after = &rest[pos + 2..];
            let Some(end) = after.find('}') else {
                c.at_line(
                    lineno,
                    (offset + pos + 1) as u64,
                    "`${` without a closing `}`",
                );
                break;
            };
            let name = &after[..end];
            let captured_before = captures.iter().any(|(l, n)| n == name && *l < lineno);
            let builtin = crate::runner::steps::BUILTIN_VARS.contains(&name);
            if !defined.iter().any(|d| d == name) && !captured_before && !builtin {
                c.at_line(lineno, (offset + pos + 1) as u64, format!("undefined variable `{name}` (define it in `vars:` or capture it in an earlier step)"));
            }
            offset += pos + 2 + end + 1;
            rest = &after[end + 1..];
        }
    }
}

fn check_step(c: &mut Checker<'_>, step: &Spanned<Step>) {
    match &step.value {
        Step::Keys(k) => {
            for name in k.names() {
                let ok = name.bytes().all(|b| {
                    b.is_ascii_digit()
                        || b == b'$'
                        || b == b'{'
                        || b == b'}'
                        || b.is_ascii_alphanumeric()
                        || b == b'_'
                }) && (name.bytes().all(|b| b.is_ascii_digit())
                    || rules::KEY_NAMES.contains(&name.as_str())
                    || name.starts_with("${"));
                if !ok || name.is_empty() {
                    c.at(
                        step,
                        format!(
                            "unknown key {name:?}; keys are digit strings or one of {}",
                            rules::KEY_NAMES.join(", ")
                        ),
                    );
                }
            }
        }
        Step::EcrReply(r) => {
            if !rules::ECR_REPLY_TARGETS.contains(&r.to.as_str()) {
                c.at(
                    step,
                    format!(
                        "ecr_reply.to {:?}: one of {}",
                        r.to,
                        rules::ECR_REPLY_TARGETS.join(", ")
                    ),
                );
            }
            if !(r.answer == "ack"
                || r.answer == "silent"
                || parse_hex(&r.answer).is_some_and(|b| b.len() == 2 && b[0] == 0x84))
            {
                c.at(step, format!("ecr_reply.answer {:?}: `ack`, `silent` or a negative acknowledgement such as \"84 9C\"", r.answer));
            }
        }
        Step::EcrLine(l) => {
            if let Some(h) = &l.inject
                && parse_hex(h).is_none()
            {
                c.at(step, format!("ecr_line.inject {h:?} is not hex"));
            }
        }
        Step::Ecr(EcrCommand::Raw(h)) if parse_hex(h).is_none_or(|b| b.len() < 3) => {
            c.at(
                step,
                format!("ecr.raw {h:?} is not an APDU in hex (at least CLASS INSTR LEN)"),
            );
        }
        Step::Ecr(EcrCommand::Registration(r)) => {
            if let Some(cfg) = &r.config
                && parse_hex(cfg).is_none_or(|b| b.len() != 1)
            {
                c.at(
                    step,
                    format!("registration.config {cfg:?} must be one byte in hex, e.g. \"BA\""),
                );
            }
        }
        Step::Host(h) => {
            if h.select.get("mti").is_none() && h.expect.get("mti").is_none() {
                c.at(
                    step,
                    "a host step names the request it is about: `expect: {mti: \"0220\"}`",
                );
            }
            for (k, _) in h.select.0.iter() {
                if !is_field_key(&k.value) {
                    c.at(k, format!("bad field {:?}: `mti`, a field number 2..128, or a subfield such as 60.1", k.value));
                }
            }
            for (k, _) in h.expect.0.iter() {
                let field = k.value.strip_prefix("reply.").unwrap_or(&k.value);
                if !is_field_key(field) {
                    c.at(k, format!("bad field {:?}: `mti`, a field number 2..128, or a subfield such as 60.1", k.value));
                }
            }
            for (k, _) in &h.reply.0 {
                if !is_field_key(&k.value) || k.value == "mti" {
                    c.at(
                        k,
                        format!("bad reply field {:?}: a field number 2..128", k.value),
                    );
                }
            }
            if let Some(f) = &h.fault
                && !rules::HOST_FAULTS.contains(&f.as_str())
            {
                c.at(
                    step,
                    format!(
                        "unknown host fault {f:?}; one of {}",
                        rules::HOST_FAULTS.join(", ")
                    ),
                );
            }
            for (k, src) in &h.capture.0 {
                let ok = src.split_once('.').is_some_and(|(side, f)| {
                    (side == "request" || side == "reply") && is_field_key(f)
                });
                if !ok {
                    c.at(
                        k,
                        format!("capture source {src:?}: `request.<field>` or `reply.<field>`"),
                    );
                }
            }
            check_matchers(c, &h.expect);
        }
        Step::Expect(e) | Step::Wait(e) if !e.capture.0.is_empty() => {
            for (k, src) in &e.capture.0 {
                let ok = src == "display"
                    || src == "printer"
                    || src.strip_prefix("ecr.").is_some_and(|f| !f.is_empty())
                    || src == "host.count"
                    || src
                        .strip_prefix("host.last.")
                        .is_some_and(|f| f == "mti" || is_field_key(f));
                if !ok {
                    c.at(
                        k,
                        format!(
                            "capture source {src:?}: `ecr.<what>` (`ecr.87`), `host.last.<field>`, `display` or `printer`"
                        ),
                    );
                }
            }
            if matches!(step.value, Step::Expect(_)) && e.time_ms.is_some() {
                c.at(step, "`time_ms` belongs in a `wait` step");
            }
            check_expectations(c, step, e);
        }
        Step::Expect(e) => {
            if e.time_ms.is_some() {
                c.at(step, "`time_ms` belongs in a `wait` step");
            }
            check_expectations(c, step, e);
        }
        Step::Wait(e) => check_expectations(c, step, e),
        _ => {}
    }
}

fn check_capabilities(c: &mut Checker<'_>, caps: &[Spanned<String>]) {
    for r in caps {
        if !rules::is_capability(&r.value) {
            let known: Vec<&str> = rules::CAPABILITIES.iter().map(|(r, _)| *r).collect();
            c.at(
                r,
                format!(
                    "unknown capability {:?}; known: {}",
                    r.value,
                    known.join(", ")
                ),
            );
        }
    }
}

fn check_expectations(c: &mut Checker<'_>, step: &Spanned<Step>, e: &Expectations) {
    check_capabilities(c, &e.requires);
    if !e.requires.is_empty() && !e.capture.0.is_empty() {
        c.at(
            step,
            "a step that checks only on some rigs cannot `capture:`: later steps would lack the variable elsewhere",
        );
    }
    for (k, _) in &e.ecr.0 {
        let known = [
            "result",
            "completed",
            "aborted",
            "refused",
            "text",
            "intermediate",
            "messages",
            "receipt_count",
        ];
        let bmp = k.value.len() == 2 && k.value.bytes().all(|b| b.is_ascii_hexdigit());
        if !known.contains(&k.value.as_str()) && !bmp && !k.value.starts_with("tlv.") {
            c.at(
                k,
                format!(
                    "ecr expectation {:?}: one of {}, a BMP in hex (\"04\"), or tlv.<tag>",
                    k.value,
                    known.join(", ")
                ),
            );
        }
    }
    for (k, _) in &e.host.0 {
        let ok = k.value == "count" || k.value.strip_prefix("last.").is_some_and(is_field_key);
        if !ok {
            c.at(
                k,
                format!("host expectation {:?}: `count` or `last.<field>`", k.value),
            );
        }
    }
    if let Some(leds) = &e.leds
        && (leds.len() != 4
            || leds
                .iter()
                .any(|l| !["on", "off", "blink"].contains(&l.as_str())))
    {
        c.at(step, "leds: four of on, off, blink");
    }
    check_matchers(c, &e.ecr);
    check_matchers(c, &e.host);
    for (what, m) in [("display", &e.display), ("printer", &e.printer)] {
        if let Some(m) = m
            && !format!("{m:?}").contains("${")
            && let Err(x) = crate::matcher::Matcher::compile(m)
        {
            c.at(step, format!("{what}: {x}"));
        }
    }
}

fn check_matchers(c: &mut Checker<'_>, m: &OrderedMap<MatcherValue>) {
    for (k, v) in &m.0 {
        if let Err(e) = crate::matcher::Matcher::compile(v) {
            // Values with variables are compiled once substituted, at run time.
            if format!("{v:?}").contains("${") {
                continue;
            }
            c.at(k, e);
        }
    }
}

/// `mti`, `2`..`128`, or a subfield `60.1`.
pub fn is_field_key(k: &str) -> bool {
    if k == "mti" {
        return true;
    }
    let (main, sub) = k.split_once('.').unwrap_or((k, ""));
    let main_ok =
        main.parse::<u8>().is_ok_and(|n| (2..=128).contains(&n)) && !main.starts_with('0');
    let sub_ok = sub.is_empty() || sub.parse::<u8>().is_ok_and(|n| (1..=20).contains(&n));
    main_ok && sub_ok
}

/// Hex with optional spaces (`"84 9C"`, `"849c"`).
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    protocol::fixture::keys::decode_hex(&digits)
}

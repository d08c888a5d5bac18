//! The transcript of a run: everything that crossed every channel, grouped by scenario step,
//! normalised so the same behaviour gives the same text on every rig.
//!
//! Normalisation (DESIGN.md §3): STAN, RRN, auth code, ZVT trace and receipt numbers are
//! renumbered by first appearance (`[STAN#1]`) everywhere they occur; dates render relative to
//! the scenario clock (`[D0]`, `[D-31]`); times of day render as `[TIME]` (they differ between
//! virtual and wall-clock rigs); MACs and working keys render as `[MAC]`/`[KEYS]`; amounts are
//! never normalised. PANs arrive already masked: the renderers only ever see `Pan`'s masked
//! form.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

/// Where an entry was seen.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// ECR → terminal (what the harness sent as the cash register).
    EcrOut,
    /// Terminal → ECR.
    EcrIn,
    /// Terminal → acquirer.
    HostIn,
    /// Acquirer → terminal.
    HostOut,
    Display,
    Printer,
    Leds,
    Beeper,
    /// ZVT link events (ACK, NAK, repeats), only when the scenario asks.
    Link,
    /// Runner notes: power cut, time passed, operator prompts.
    Note,
}

impl Channel {
    pub fn label(self) -> &'static str {
        match self {
            Channel::EcrOut => "ecr >>",
            Channel::EcrIn => "ecr <<",
            Channel::HostIn => "host <<",
            Channel::HostOut => "host >>",
            Channel::Display => "display",
            Channel::Printer => "printer",
            Channel::Leds => "leds",
            Channel::Beeper => "beeper",
            Channel::Link => "link",
            Channel::Note => "note",
        }
    }
}

/// What an entry holds. Identifiers are renumbered when the transcript is rendered, in the
/// fixed order of the rendering (per step, per channel), so numbering never depends on the
/// order in which channels happened to deliver on a rig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// Shown as it is.
    Text(String),
    /// A ZVT APDU; `enquiry` marks a 06 0F answering 05 01; `suffix` follows the rendering.
    Zvt {
        apdu: Vec<u8>,
        enquiry: bool,
        suffix: String,
    },
    /// An ISO 8583 message as the acquirer logged it (fields already masked).
    Iso {
        mti: String,
        fields: Vec<(String, String)>,
        note: Option<String>,
    },
    /// Receipt text (a printed slip, or print lines to the ECR), normalised line by line.
    Receipt { title: String, text: String },
}

impl Item {
    fn render(&self, n: &mut Normaliser) -> String {
        match self {
            Item::Text(t) => t.clone(),
            Item::Zvt {
                apdu,
                enquiry,
                suffix,
            } => format!("{}{suffix}", crate::render::zvt(apdu, *enquiry, n)),
            Item::Iso { mti, fields, note } => {
                let mut s = crate::render::iso(Some(mti), fields, n);
                if let Some(x) = note {
                    s.push_str(&format!("  ({})", n.note_text(x)));
                }
                s
            }
            Item::Receipt { title, text } => {
                let body = n.receipt_text(text);
                if title.is_empty() {
                    body.trim_end().to_string()
                } else {
                    format!("{title}\n{}", body.trim_end())
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub channel: Channel,
    pub item: Item,
}

#[derive(Clone, Debug, Default)]
pub struct StepRecord {
    pub title: String,
    pub entries: Vec<Entry>,
}

/// Renumbers identifiers by first appearance, per kind.
#[derive(Clone, Debug, Default)]
pub struct Normaliser {
    maps: HashMap<&'static str, HashMap<String, usize>>,
    /// Local date of the scenario clock: dates render as days from it.
    pub today: Option<NaiveDate>,
    /// Show values as they are (`posrig decode`): nothing renumbered, no relative dates.
    pub passthrough: bool,
}

impl Normaliser {
    pub fn new(today: NaiveDate) -> Self {
        Normaliser {
            maps: HashMap::new(),
            today: Some(today),
            passthrough: false,
        }
    }

    /// For decoding a message as it is.
    pub fn passthrough() -> Self {
        Normaliser {
            passthrough: true,
            ..Default::default()
        }
    }

    /// `[KIND#n]` for `value`, numbering values of a kind in order of first appearance.
    /// Empty or all-zero values are kept as they are (they mean "none").
    pub fn id(&mut self, kind: &'static str, value: &str) -> String {
        if self.passthrough {
            return value.to_string();
        }
        let v = value.trim();
        if v.is_empty() || v.bytes().all(|b| b == b'0' || b == b' ') {
            return value.to_string();
        }
        let m = self.maps.entry(kind).or_default();
        let n = m.len() + 1;
        let n = *m.entry(v.to_string()).or_insert(n);
        format!("[{kind}#{n}]")
    }

    /// Looks up an identifier already seen, without numbering a new one.
    pub fn known(&self, kind: &'static str, value: &str) -> Option<String> {
        self.maps
            .get(kind)?
            .get(value.trim())
            .map(|n| format!("[{kind}#{n}]"))
    }

    /// `[D0]`, `[D-31]` for a date; the date itself when no scenario clock is known.
    pub fn date(&self, d: NaiveDate) -> String {
        match self.today {
            Some(t) => {
                let n = (d - t).num_days();
                if n == 0 {
                    "[D0]".into()
                } else {
                    format!("[D{n:+}]")
                }
            }
            None => d.to_string(),
        }
    }

    /// An MMDD date: the most recent such date not after today, like the terminal reads it;
    /// a date in the future of today is taken as this year (a wrong date stays visible).
    /// Today is the scenario's first day; a date up to two days after it is taken as that
    /// date, so a run whose virtual clock crosses midnight renders `[D+1]`, not `[D-364]`.
    pub fn mmdd(&self, s: &str) -> String {
        let (Some(today), true) = (
            self.today,
            s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()),
        ) else {
            return s.to_string();
        };
        let (m, d) = (s[..2].parse().unwrap_or(0), s[2..].parse().unwrap_or(0));
        let soon = [today.year(), today.year() + 1]
            .into_iter()
            .filter_map(|y| NaiveDate::from_ymd_opt(y, m, d))
            .find(|x| (1..=2).contains(&(*x - today).num_days()));
        match soon
            .or_else(|| protocol::time::resolve_mmdd(m, d, today))
            .or_else(|| NaiveDate::from_ymd_opt(today.year(), m, d))
        {
            Some(date) => self.date(date),
            None => s.to_string(),
        }
    }

    /// A YYMMDD date (ZVT BMP AA).
    pub fn yymmdd(&self, s: &str) -> String {
        if s.len() != 6 {
            return s.to_string();
        }
        let parse = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
        match (parse(0..2), parse(2..4), parse(4..6)) {
            (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(2000 + y as i32, m, d)
                .map(|x| self.date(x))
                .unwrap_or_else(|| s.to_string()),
            _ => s.to_string(),
        }
    }

    /// Receipt text: identifiers after their labels, dates and times anywhere.
    /// The acquirer's notes name STANs in prose ("reversed STAN 000202 of batch 000001"):
    /// renumbered like field 11, so the note reads the same on every rig.
    pub fn note_text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(p) = rest.find("STAN ") {
            let (head, tail) = rest.split_at(p + 5);
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 6 {
                out.push_str(&head[..p]);
                out.push_str(&self.id("STAN", &tail[..6]));
                rest = &tail[6..];
            } else {
                out.push_str(head);
                rest = tail;
            }
        }
        out.push_str(rest);
        out
    }

    pub fn receipt_text(&mut self, text: &str) -> String {
        if self.passthrough {
            return text.to_string();
        }
        const KINDS: &[(&str, &[&str], usize)] = &[
            ("STAN", &["VOUCHER", "凭证号", "TRACE"], 6),
            ("RRN", &["REF", "参考号", "RRN"], 12),
            ("AUTH", &["AUTH", "授权码"], 6),
            ("RECEIPT", &["RECEIPT NO", "收据号"], 4),
        ];
        let mut out = String::with_capacity(text.len());
        // A label whose value did not fit on its line labels the next line.
        let mut carried: Vec<usize> = Vec::new();
        for line in text.lines() {
            let mut l = line.to_string();
            let upper = l.to_uppercase();
            let labelled_here: Vec<usize> = (0..KINDS.len())
                .filter(|&i| KINDS[i].1.iter().any(|lab| upper.contains(lab)))
                .collect();
            let mut here = labelled_here.clone();
            here.append(&mut carried);
            let mut replaced = Vec::new();
            for &i in &here {
                let (kind, _, len) = KINDS[i];
                let before = l.clone();
                l = replace_tokens(&l, len, |tok| Some(self.id(kind, tok)));
                if l != before {
                    replaced.push(i);
                }
            }
            carried = labelled_here
                .into_iter()
                .filter(|i| !replaced.contains(i))
                .collect();
            if upper.contains("ORIG DATE") {
                l = replace_month_day(&l, self);
            }
            l = replace_dates_times(&l, self);
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// Replaces alphanumeric tokens of exactly `len` characters containing a digit.
fn replace_tokens(line: &str, len: usize, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut tok = String::new();
    let flush = |tok: &mut String, out: &mut String, f: &mut dyn FnMut(&str) -> Option<String>| {
        if tok.chars().count() == len && tok.chars().any(|c| c.is_ascii_digit()) {
            match f(tok) {
                Some(r) => out.push_str(&r),
                None => out.push_str(tok),
            }
        } else {
            out.push_str(tok);
        }
        tok.clear();
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() {
            tok.push(c);
        } else {
            flush(&mut tok, &mut out, &mut f);
            out.push(c);
        }
    }
    flush(&mut tok, &mut out, &mut f);
    out
}

/// An original's `MM/DD` (the only date a refund slip has of it) → `[D-3]`: the calendar date
/// differs between a virtual clock and a real terminal's, the distance from today does not.
fn replace_month_day(line: &str, n: &Normaliser) -> String {
    let b = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let at = |k: usize| b.get(k).copied();
        let digit = |k: usize| at(k).is_some_and(|c| c.is_ascii_digit());
        if digit(i)
            && digit(i + 1)
            && at(i + 2) == Some(b'/')
            && digit(i + 3)
            && digit(i + 4)
            && (i == 0 || !digit(i - 1) && at(i - 1) != Some(b'/'))
            && !digit(i + 5)
            && at(i + 5) != Some(b'/')
        {
            let mmdd = format!("{}{}", &line[i..i + 2], &line[i + 3..i + 5]);
            out.push_str(&n.mmdd(&mmdd));
            i += 5;
            continue;
        }
        let ch = line[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// `2026-11-26` → `[D0]`, `2026/11/26` too; `10:00:00` → `[TIME]`.
fn replace_dates_times(line: &str, n: &Normaliser) -> String {
    let b = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < line.len() {
        if let Some(d) = b.get(i..i + 10)
            && d[4] == d[7]
            && (d[4] == b'-' || d[4] == b'/')
            && d.iter()
                .enumerate()
                .all(|(k, c)| k == 4 || k == 7 || c.is_ascii_digit())
            && (i == 0 || !b[i - 1].is_ascii_digit())
        {
            let s = &line[i..i + 10];
            if let Ok(date) = NaiveDate::parse_from_str(&s.replace('/', "-"), "%Y-%m-%d") {
                out.push_str(&n.date(date));
                i += 10;
                continue;
            }
        }
        if let Some(t) = b.get(i..i + 8)
            && t[2] == b':'
            && t[5] == b':'
            && t.iter()
                .enumerate()
                .all(|(k, c)| k == 2 || k == 5 || c.is_ascii_digit())
            && (i == 0 || !b[i - 1].is_ascii_digit())
        {
            out.push_str("[TIME]");
            i += 8;
            continue;
        }
        let ch = line[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A display frame as the transcript shows it: one `|line|` per display row.
pub fn display_text(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("|{l}|"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when `after` is `before` with one row changed only by typing: past their common start,
/// both versions hold nothing but entry characters (digits, `*` for hidden digits, separators).
fn is_input_echo(before: &str, after: &str) -> bool {
    let (b, a): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    if b.len() != a.len() {
        return false;
    }
    let mut changed = b.iter().zip(&a).filter(|(x, y)| x != y);
    let (Some((x, y)), None) = (changed.next(), changed.next()) else {
        return false;
    };
    let common = x
        .char_indices()
        .zip(y.chars())
        .find(|((_, c1), c2)| c1 != c2)
        .map_or(x.len().min(y.len()), |((i, _), _)| i);
    let entry = |s: &str| {
        s.trim_end_matches('|')
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '.' | ',' | ' ' | '/' | '-'))
    };
    entry(&x[common..]) && entry(&y[common..])
}

/// The whole transcript of one run.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    pub steps: Vec<StepRecord>,
    /// Entries before the first step (power-on, setup).
    pub setup: StepRecord,
    /// The local date of the scenario clock: dates render relative to it.
    pub today: Option<NaiveDate>,
}

impl Transcript {
    pub fn new(today: NaiveDate) -> Self {
        Transcript {
            today: Some(today),
            ..Default::default()
        }
    }

    /// Entries recorded so far (a cheap "did anything happen" probe).
    pub fn len_entries(&self) -> usize {
        self.setup.entries.len() + self.steps.iter().map(|s| s.entries.len()).sum::<usize>()
    }

    pub fn begin_step(&mut self, title: String) {
        self.steps.push(StepRecord {
            title,
            entries: Vec::new(),
        });
    }

    pub fn push(&mut self, channel: Channel, item: Item) {
        let step = self.steps.last_mut().unwrap_or(&mut self.setup);
        if channel == Channel::Display {
            // A display that did not change is not news.
            if step
                .entries
                .iter()
                .rev()
                .find(|e| e.channel == Channel::Display)
                .is_some_and(|e| e.item == item)
            {
                return;
            }
            // A frame that only echoes a key press (the same screen with one input line grown
            // or shrunk, nothing else in between) replaces the one before: the transcript keeps
            // transitions, not every digit typed.
            if let Some(last) = step.entries.last_mut()
                && last.channel == Channel::Display
                && let (Item::Text(before), Item::Text(after)) = (&last.item, &item)
                && is_input_echo(before, after)
            {
                last.item = item;
                return;
            }
        }
        step.entries.push(Entry { channel, item });
    }

    /// Text for the snapshot: per step, per channel (in a fixed order), entries in order;
    /// identifiers renumbered in that order.
    pub fn render(&self) -> String {
        let mut n = match self.today {
            Some(t) => Normaliser::new(t),
            None => Normaliser::default(),
        };
        let mut out = String::new();
        let order = [
            Channel::Note,
            Channel::EcrOut,
            Channel::EcrIn,
            Channel::HostIn,
            Channel::HostOut,
            Channel::Display,
            Channel::Leds,
            Channel::Beeper,
            Channel::Printer,
            Channel::Link,
        ];
        let mut render_step = |title: &str, entries: &[Entry], n: &mut Normaliser| {
            let _ = writeln!(out, "== {title}");
            for ch in order {
                for e in entries.iter().filter(|e| e.channel == ch) {
                    let text = e.item.render(n);
                    let mut lines = text.lines();
                    let first = lines.next().unwrap_or("");
                    let _ = writeln!(out, "{} {}", ch.label(), first);
                    for l in lines {
                        let _ = writeln!(out, "  {l}");
                    }
                }
            }
        };
        if !self.setup.entries.is_empty() {
            render_step("setup", &self.setup.entries, &mut n);
        }
        for (i, s) in self.steps.iter().enumerate() {
            render_step(&format!("step {}: {}", i + 1, s.title), &s.entries, &mut n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stans_in_acquirer_notes_are_renumbered_like_field_11() {
        let mut n = Normaliser::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert_eq!(n.id("STAN", "000202"), "[STAN#1]");
        assert_eq!(
            n.note_text("reversed STAN 000202 of batch 000001"),
            "reversed [STAN#1] of batch 000001"
        );
        assert_eq!(
            n.note_text("upload record STAN 000201: the host has no such transaction"),
            "upload record [STAN#2]: the host has no such transaction"
        );
        assert_eq!(n.note_text("STAN 12 is short"), "STAN 12 is short");
    }

    #[test]
    fn identifiers_are_renumbered_by_first_appearance() {
        let mut n = Normaliser::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert_eq!(n.id("STAN", "000123"), "[STAN#1]");
        assert_eq!(n.id("STAN", "000007"), "[STAN#2]");
        assert_eq!(n.id("STAN", "000123"), "[STAN#1]");
        assert_eq!(n.id("RRN", "000123"), "[RRN#1]");
        assert_eq!(n.id("STAN", "000000"), "000000");
    }

    #[test]
    fn dates_are_relative_to_the_scenario_clock() {
        let n = Normaliser::new(NaiveDate::from_ymd_opt(2027, 1, 5).unwrap());
        assert_eq!(n.mmdd("0105"), "[D0]");
        assert_eq!(n.mmdd("1226"), "[D-10]");
        assert_eq!(n.yymmdd("270104"), "[D-1]");
        // Past midnight on a virtual clock: the next day, not last year.
        assert_eq!(n.mmdd("0106"), "[D+1]");
        assert_eq!(n.mmdd("0108"), "[D-362]");
    }

    #[test]
    fn an_originals_month_and_day_render_relative_to_today() {
        let mut n = Normaliser::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default());
        let text = "ORIG DATE:         11/23\n原交易日期(ORIG DATE)      11/26\nDATE: 11/23\n";
        assert_eq!(
            n.receipt_text(text),
            "ORIG DATE:         [D-3]\n原交易日期(ORIG DATE)      [D0]\nDATE: 11/23\n"
        );
    }

    #[test]
    fn receipt_lines_normalise_after_labels_only() {
        let mut n = Normaliser::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        let text = "批次号 BATCH: 000001\n凭证号 VOUCHER: 000001\n日期 2026-11-26 10:00:03\n参考号 REF: 100000000001\n金额 AMOUNT: 33.33\n原参考号(ORIG REF NO)\n      000000000101\n";
        let out = n.receipt_text(text);
        assert_eq!(
            out,
            "批次号 BATCH: 000001\n凭证号 VOUCHER: [STAN#1]\n日期 [D0] [TIME]\n参考号 REF: [RRN#1]\n金额 AMOUNT: 33.33\n原参考号(ORIG REF NO)\n      [RRN#2]\n"
        );
    }

    #[test]
    fn render_groups_by_step_and_channel() {
        let mut t = Transcript::default();
        let txt = |s: &str| Item::Text(s.into());
        t.begin_step("keys MENU".into());
        t.push(Channel::Display, txt("退货"));
        t.push(Channel::HostIn, txt("0220 4=000000003333"));
        t.push(Channel::Display, txt("退货"));
        t.push(Channel::Display, txt("退货成功"));
        let r = t.render();
        assert_eq!(
            r,
            "== step 1: keys MENU\nhost << 0220 4=000000003333\ndisplay 退货\ndisplay 退货成功\n"
        );
        // Typing: frames with nothing in between collapse into the last.
        t.begin_step("keys 1 2".into());
        t.push(Channel::Display, txt("1"));
        t.push(Channel::Display, txt("12"));
        assert!(t.render().ends_with("== step 2: keys 1 2\ndisplay 12\n"));
        // A new screen is a transition, kept even with nothing in between.
        t.begin_step("keys MENU 5".into());
        t.push(Channel::Display, txt("|1.消费|\n|>5.签到|"));
        t.push(Channel::Display, txt("|签到|\n|签到中...|"));
        assert!(
            t.render()
                .ends_with("display |1.消费|\n  |>5.签到|\ndisplay |签到|\n  |签到中...|\n")
        );
    }

    #[test]
    fn echo_is_one_input_row_changing() {
        assert!(is_input_echo("|退货|\n|0.00|", "|退货|\n|0.01|"));
        assert!(is_input_echo("|密码|\n||", "|密码|\n|***|"));
        assert!(is_input_echo("|AMOUNT|\n|EUR 1.2|", "|AMOUNT|\n|EUR 1.23|"));
        assert!(!is_input_echo("|退货|\n|0.00|", "|撤销|\n|0.01|"));
        assert!(!is_input_echo("|退货|\n|0.00|", "|退货|\n|请稍候|"));
        assert!(!is_input_echo("|A|\n|1|", "|A|\n|1|\n||"));
    }
}

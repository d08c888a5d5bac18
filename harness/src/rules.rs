//! The vocabulary scenarios may use: rule IDs (DESIGN.md §2) and rig capabilities.

/// Rule IDs of DESIGN.md §2, with a one-line summary for the coverage matrix.
/// `R-HOST` is ours: the "host NN / host XX" rows of the refusal table have no ID there.
pub const RULES: &[(&str, &str)] = &[
    ("R-NOTFOUND", "original not found"),
    ("R-VOIDED", "original voided or reversed"),
    ("R-NOTSALE", "original is not an approved sale"),
    ("R-CARD", "card differs from the original's"),
    ("R-WINDOW", "original older than the refund window"),
    ("R-ZERO", "amount zero or malformed"),
    ("R-EXCEEDS", "amount over the remaining refundable"),
    ("R-CURRENCY", "currency differs from the original's"),
    ("R-SUP", "supervisor password wrong three times"),
    ("R-SIGNON", "not signed on"),
    ("R-REVPENDING", "a reversal or advice is pending"),
    ("R-DUP", "no duplicate refund"),
    ("R-HOST", "host declines, numeric and non-numeric"),
    ("R-REV", "unknown outcomes and reversals"),
    ("R-ADVICE", "CUP refund advices queued and resent"),
    ("R-MAC", "X9.19 MAC on requests and replies"),
    ("R-SETTLE", "settlement totals and batch upload"),
    ("R-AMOUNT", "amounts and currency exponents"),
    ("R-FEE", "surcharges and merchant fees"),
    ("R-TIME", "time zone, MMDD dates, refund window days"),
    (
        "R-CARD-READ",
        "card reader: chip, fallback, contactless LEDs",
    ),
    ("R-RECEIPT", "receipts: mandatory lines, GB18030, copies"),
];

pub fn is_rule(id: &str) -> bool {
    RULES.iter().any(|(r, _)| *r == id)
}

/// Capabilities a rig can provide and a scenario can require.
pub const CAPABILITIES: &[(&str, &str)] = &[
    ("ecr", "drive the terminal's ECR port (ZVT)"),
    (
        "ecr-serial",
        "the ECR line is a serial link: ACK/NAK, CRC faults, injected noise",
    ),
    ("ecr-tcp", "the ECR line is ZVT over TCP: connection drops"),
    ("keypad", "press the terminal's keys"),
    ("reader", "present and remove cards (swipe, insert, tap)"),
    (
        "reader-faults",
        "inject reader faults: chip mute, bad swipe",
    ),
    ("display", "read the terminal's display"),
    ("printer", "read what the terminal printed"),
    ("printer-faults", "paper out, cover open"),
    ("leds", "read the contactless status LEDs"),
    ("beeper", "hear the beeper"),
    ("power", "cut and restore the terminal's power"),
    (
        "preload-journal",
        "load original transactions into the terminal before the run",
    ),
    ("set-clock", "set the terminal's clock"),
    ("host-down", "make the acquirer unreachable"),
    (
        "virtual-time",
        "time passes instantly (host timeouts in microseconds)",
    ),
    (
        "power-failpoints",
        "cut power at a failpoint inside a transaction (in-process rig)",
    ),
    (
        "paper-roll",
        "run the paper out after N more receipts (in-process rig)",
    ),
    (
        "posrig-terminal",
        "the terminal is posrig's emulator: checks of its own slip layout apply",
    ),
];

pub fn is_capability(c: &str) -> bool {
    CAPABILITIES.iter().any(|(x, _)| *x == c)
}

/// Key names a `keys:` step accepts besides digit strings.
pub const KEY_NAMES: &[&str] = &[
    "ENTER",
    "CANCEL",
    "CLEAR",
    "BACKSPACE",
    "MENU",
    "F1",
    "F2",
    "F3",
    "F4",
    "UP",
    "DOWN",
    "00",
];

/// Message kinds an `ecr_reply` step can target.
pub const ECR_REPLY_TARGETS: &[&str] = &[
    "status_information",
    "intermediate_status",
    "print_line",
    "print_block",
    "completion",
    "abort",
];

/// Delivery faults of the acquirer.
pub const HOST_FAULTS: &[&str] = &[
    "no_reply",
    "close",
    "reply_twice",
    "wrong_stan",
    "wrong_mti",
    "wrong_mac",
    "garbled",
    "truncated",
    "wrong_length",
    "no_tpdu_swap",
];

/// Capabilities a scenario's steps use, whatever its `requires:` says: a scenario is not
/// applicable on a rig that lacks any of them, and `posrig check` insists they are declared.
pub fn implied_capabilities(
    s: &crate::scenario::Scenario,
) -> std::collections::BTreeSet<&'static str> {
    use crate::scenario::model::Step;
    let mut c = std::collections::BTreeSet::new();
    // `signed_on: false` too: a terminal that has never signed on is as much a prepared journal
    // as one that has; a real terminal is in whatever state its last run left it.
    if s.fixtures.journal.is_some() || s.signed_on.is_some() {
        c.insert("preload-journal");
    }
    if s.clock.is_some() {
        c.insert("set-clock");
    }
    for step in &s.steps {
        // A step that checks only on some rigs asks nothing of the others.
        if matches!(&step.value, Step::Expect(e) | Step::Wait(e) if !e.requires.is_empty()) {
            continue;
        }
        c.extend(step_capabilities(&step.value));
    }
    c
}

/// Capabilities one step uses.
pub fn step_capabilities(
    step: &crate::scenario::model::Step,
) -> std::collections::BTreeSet<&'static str> {
    use crate::scenario::model::{PowerAction, Step};
    let mut c = std::collections::BTreeSet::new();
    match step {
        Step::Keys(_) => {
            c.insert("keypad");
        }
        Step::Card(_) => {
            c.insert("reader");
        }
        Step::Fault(f) => {
            if f.paper_out.is_some() || f.cover_open.is_some() || f.paper_out_after.is_some() {
                c.insert("printer-faults");
            }
            if f.paper_out_after.is_some_and(|n| n > 0) {
                c.insert("paper-roll");
            }
            if f.chip_mute.is_some() || f.bad_swipe.is_some() {
                c.insert("reader-faults");
            }
            if f.host_down.is_some() {
                c.insert("host-down");
            }
        }
        Step::Power(p) => {
            c.insert("power");
            if matches!(p, PowerAction::CutAt(_)) {
                c.insert("power-failpoints");
            }
        }
        Step::Ecr(_) => {
            c.insert("ecr");
        }
        Step::EcrReply(_) => {
            c.insert("ecr");
        }
        Step::EcrLine(l) => {
            c.insert("ecr");
            if l.inject.is_some()
                || l.drop_acks.is_some()
                || l.corrupt_frames.is_some()
                || l.delay_ack_ms.is_some()
            {
                c.insert("ecr-serial");
            }
            if l.disconnect {
                c.insert("ecr-tcp");
            }
        }
        Step::Expect(e) | Step::Wait(e) => {
            if e.display.is_some() {
                c.insert("display");
            }
            if e.printer.is_some() {
                c.insert("printer");
            }
            if e.leds.is_some() {
                c.insert("leds");
            }
            if e.beeper.is_some() {
                c.insert("beeper");
            }
            if !e.ecr.is_empty() {
                c.insert("ecr");
            }
            for (_, src) in e.capture.iter() {
                if src.starts_with("ecr.") {
                    c.insert("ecr");
                } else if src == "display" {
                    c.insert("display");
                } else if src == "printer" {
                    c.insert("printer");
                }
            }
        }
        Step::Host(_) => {}
    }
    c
}

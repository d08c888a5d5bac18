//! Executing steps: each scenario step becomes world operations, waits and checks.

use std::collections::BTreeMap;
use std::time::Duration;

use acquirer::Host;
use acquirer::script::{Directive, DirectiveId, Fault, Times as HostTimes};
use protocol::fixture::cards::CardFixture;
use protocol::fixture::terminal::TerminalProfile;
use protocol::riglink::{FaultKind, KeyName, LedState, Tone};
use protocol::zvt::bmp::{Bcd, CardNumber};
use protocol::zvt::command::{
    AbortFromEcr, Authorization, Command, CommandKind, OriginalRef as ZOriginal, PasswordCommand,
    Refund as ZRefund, Registration as ZRegistration, Reversal as ZReversal, StatusEnquiry,
    TlvOnly, tlv_tag,
};
use protocol::zvt::ecr::{Reply, Times};

use super::{CardAct, Failure, FailureKind, LineFaults, World, WorldFault};
use crate::matcher::Matcher;
use crate::scenario::MatcherValue;
use crate::scenario::load::{LoadedScenario, Variant, parse_hex};
use crate::scenario::model::*;
use crate::transcript::Channel;

/// Variables every scenario has: `today_mmdd`, the terminal's date at the start (MMDD), for
/// keying an original's date on a terminal whose clock cannot be set; `start_mmss`, the minute
/// and second of the start (MMSS), which differs between any two scenarios less than an hour
/// apart on a real terminal (and is `0000` at the emulator's default clock).
pub const BUILTIN_VARS: &[&str] = &["today_mmdd", "start_mmss"];

/// An amount of a step, its variables substituted first.
fn amount(
    a: &crate::scenario::AmountValue,
    cur: protocol::money::Currency,
    ctx: &Ctx<'_>,
) -> Result<protocol::money::Money, String> {
    a.with_text(|s| subst(s, &ctx.vars))?
        .resolve(cur)
        .map_err(|e| e.to_string())
}

/// Replaces `${name}` with its value.
pub fn subst(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(p) = rest.find("${") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let Some(e) = after.find('}') else {
            return Err(format!("`${{` without `}}` in {s:?}"));
        };
        let name = &after[..e];
        let v = vars.get(name).ok_or_else(|| {
            format!("variable `{name}` is not set (captured later, or not at all)")
        })?;
        out.push_str(v);
        rest = &after[e + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn subst_matcher(
    m: &MatcherValue,
    vars: &BTreeMap<String, String>,
) -> Result<MatcherValue, String> {
    Ok(match m {
        MatcherValue::Exact(s) => MatcherValue::Exact(subst(s, vars)?),
        MatcherValue::Regex(s) => MatcherValue::Regex(subst(s, vars)?),
        MatcherValue::Contains(s) => MatcherValue::Contains(subst(s, vars)?),
        MatcherValue::Echo(s) => MatcherValue::Echo(subst(s, vars)?),
        MatcherValue::Compare { op, value } => MatcherValue::Compare {
            op: *op,
            value: subst(value, vars)?,
        },
        MatcherValue::Not(b) => MatcherValue::Not(Box::new(subst_matcher(b, vars)?)),
        MatcherValue::AnyOf(v) => MatcherValue::AnyOf(
            v.iter()
                .map(|x| subst_matcher(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        MatcherValue::AllOf(v) => MatcherValue::AllOf(
            v.iter()
                .map(|x| subst_matcher(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn compile(m: &MatcherValue, vars: &BTreeMap<String, String>) -> Result<Matcher, String> {
    Matcher::compile(&subst_matcher(m, vars)?)
}

struct Ctx<'a> {
    vars: BTreeMap<String, String>,
    profile: &'a TerminalProfile,
    step: usize,
    line: u64,
}

impl Ctx<'_> {
    fn fail(
        &self,
        what: impl Into<String>,
        message: impl Into<String>,
        kind: FailureKind,
    ) -> Failure {
        Failure {
            step: self.step,
            line: self.line,
            what: what.into(),
            message: message.into(),
            kind,
        }
    }
}

/// Runs the steps; stops at the first failing one (later steps depend on it).
/// Runs a scenario's steps; `provides` says which capabilities the rig has, for the checks
/// that apply only on some rigs.
pub(crate) fn execute<W: World>(
    w: &mut W,
    ls: &LoadedScenario,
    v: &Variant,
    provides: &dyn Fn(&str) -> bool,
) -> Vec<Failure> {
    let s = &ls.scenario;
    let profile = w.profile().clone();
    let mut ctx = Ctx {
        vars: v.vars.clone(),
        profile: &profile,
        step: 0,
        line: 0,
    };
    // The terminal's date, for keying an original's date: a real terminal's today is today.
    // And the minute and second the scenario started, for what must differ between runs on a
    // terminal that remembers (an unreferenced refund's amount inside the duplicate window).
    let started = w.recorder().started;
    for (name, format) in [("today_mmdd", "%m%d"), ("start_mmss", "%M%S")] {
        ctx.vars
            .entry(name.into())
            .or_insert_with(|| started.format(format).to_string());
    }
    // Host directives are installed up front, in order: the request a step is about is often
    // triggered by an earlier step.
    let mut directives: Vec<Option<DirectiveId>> = Vec::with_capacity(s.steps.len());
    for (i, step) in s.steps.iter().enumerate() {
        ctx.step = i + 1;
        ctx.line = step.referenced.line();
        match &step.value {
            Step::Host(h) => match directive(h, &ctx) {
                Ok(d) => directives.push(Some(w.with_host(|host| host.script(d)))),
                Err(e) => return vec![ctx.fail("host step", e, FailureKind::Error)],
            },
            _ => directives.push(None),
        }
    }
    // Power on only now: what the terminal sends at power-on (an automatic sign-on, the
    // recovery of a pending reversal) meets the directives above.
    ctx.step = 0;
    ctx.line = 0;
    if let Err(e) = w.power(true) {
        return vec![ctx.fail("power-on", e, FailureKind::Error)];
    }
    w.settle();
    for (i, step) in s.steps.iter().enumerate() {
        ctx.step = i + 1;
        ctx.line = step.referenced.line();
        // Titles name captured values by their variable: the values differ between rigs.
        let title = title(&step.value, &v.vars);
        w.recorder().transcript.begin_step(title);
        if let Step::Expect(e) | Step::Wait(e) = &step.value
            && !e.requires.is_empty()
        {
            let lacking: Vec<&str> = e
                .requires
                .iter()
                .map(|r| r.value.as_str())
                .chain(crate::rules::step_capabilities(&step.value))
                .filter(|c| !provides(c))
                .collect();
            if !lacking.is_empty() {
                let note = format!("not checked on this rig (it lacks {})", lacking.join(", "));
                w.recorder().push(Channel::Note, note);
                continue;
            }
        }
        if let Err(f) = run_step(w, &step.value, directives[i], &mut ctx) {
            return vec![f];
        }
    }
    // Let what is due now happen, so the last step's effects are in the transcript.
    w.settle();
    Vec::new()
}

/// A host step's MTI as its title shows it: `0200`, or `0200|0400` for any of them.
fn mti_title(m: &MatcherValue) -> String {
    match m {
        MatcherValue::Exact(s) => s.clone(),
        MatcherValue::Number(n) => n.to_string(),
        MatcherValue::AnyOf(v) => v.iter().map(mti_title).collect::<Vec<_>>().join("|"),
        other => format!("{other:?}"),
    }
}

fn title(step: &Step, vars: &BTreeMap<String, String>) -> String {
    let sub = |s: &str| subst(s, vars).unwrap_or_else(|_| s.to_string());
    match step {
        Step::Keys(k) => format!(
            "keys {}",
            k.names()
                .iter()
                .map(|n| sub(n))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Step::Card(CardAction::Swipe(n)) => format!("card swipe {}", sub(n)),
        Step::Card(CardAction::Insert(n)) => format!("card insert {}", sub(n)),
        Step::Card(CardAction::Tap(n)) => format!("card tap {}", sub(n)),
        Step::Card(CardAction::Remove) => "card remove".into(),
        Step::Fault(f) => {
            let mut parts = vec![];
            for (name, v) in [
                ("paper_out", f.paper_out),
                ("cover_open", f.cover_open),
                ("chip_mute", f.chip_mute),
                ("bad_swipe", f.bad_swipe),
                ("host_down", f.host_down),
            ] {
                if let Some(on) = v {
                    parts.push(format!("{name} {}", if on { "on" } else { "off" }));
                }
            }
            if let Some(n) = f.paper_out_after {
                parts.push(format!("paper out after {n} receipt(s)"));
            }
            format!("fault {}", parts.join(", "))
        }
        Step::Power(p) => format!(
            "power {}",
            match p {
                PowerAction::Off => "off".to_string(),
                PowerAction::On => "on".into(),
                PowerAction::Cycle => "cycle".into(),
                PowerAction::CutAt(f) => format!("cut at {}", f.name()),
            }
        ),
        Step::Ecr(c) => format!(
            "ecr {}",
            match c {
                EcrCommand::Registration(_) => "registration",
                EcrCommand::Authorization(_) => "authorization",
                EcrCommand::Refund(_) => "refund",
                EcrCommand::Reversal(_) => "reversal",
                EcrCommand::EndOfDay(_) => "end of day",
                EcrCommand::StatusEnquiry(_) => "status enquiry",
                EcrCommand::RepeatReceipt(_) => "repeat receipt",
                EcrCommand::Initialisation(_) => "initialisation",
                EcrCommand::Diagnosis(_) => "diagnosis",
                EcrCommand::LogOff(_) => "log-off",
                EcrCommand::Abort(_) => "abort (06 B0)",
                EcrCommand::Raw(_) => "raw APDU",
            }
        ),
        Step::EcrReply(r) => format!("ecr answers {} with {}", r.to, r.answer),
        Step::EcrLine(l) => {
            let mut parts = vec![];
            if let Some(i) = &l.inject {
                parts.push(format!("inject {i}"));
            }
            if let Some(n) = l.drop_acks {
                parts.push(format!("drop {n} ACK"));
            }
            if let Some(n) = l.corrupt_frames {
                parts.push(format!("corrupt {n} frame"));
            }
            if let Some(ms) = l.delay_ack_ms {
                parts.push(format!("delay ACK {ms} ms"));
            }
            if l.disconnect {
                parts.push("disconnect".into());
            }
            format!("ecr line: {}", parts.join(", "))
        }
        Step::Host(h) => {
            let mti = h
                .select
                .get("mti")
                .or(h.expect.get("mti"))
                .map(mti_title)
                .unwrap_or_default();
            let mti = sub(&mti);
            let mut t = format!("host {mti}");
            if let Some(c) = h.reply.get("39") {
                t.push_str(&format!(" → 39={c}"));
            }
            if let Some(f) = &h.fault {
                t.push_str(&format!(" fault {f}"));
            }
            if let Some(d) = h.delay_ms {
                t.push_str(&format!(" after {d} ms"));
            }
            t
        }
        Step::Wait(e) => match e.time_ms {
            Some(ms) => format!("wait {ms} ms"),
            None => format!("wait for {}", parts_of(e)),
        },
        Step::Expect(e) => format!("expect {}", parts_of(e)),
    }
}

fn parts_of(e: &Expectations) -> String {
    let mut p = vec![];
    if e.display.is_some() {
        p.push("display");
    }
    if e.printer.is_some() {
        p.push("printer");
    }
    if !e.ecr.is_empty() {
        p.push("ecr");
    }
    if !e.host.is_empty() {
        p.push("host");
    }
    if e.leds.is_some() {
        p.push("leds");
    }
    if e.beeper.is_some() {
        p.push("beeper");
    }
    p.join(", ")
}

fn key_names(spec: &str) -> Result<Vec<KeyName>, String> {
    if spec.bytes().all(|b| b.is_ascii_digit()) && !spec.is_empty() {
        return Ok(spec.bytes().map(|b| KeyName::Digit(b - b'0')).collect());
    }
    Ok(vec![match spec {
        "ENTER" => KeyName::Enter,
        "CANCEL" => KeyName::Cancel,
        "CLEAR" => KeyName::Clear,
        "BACKSPACE" => KeyName::Backspace,
        "MENU" => KeyName::Menu,
        "F1" => KeyName::F1,
        "F2" => KeyName::F2,
        "F3" => KeyName::F3,
        "F4" => KeyName::F4,
        "UP" => KeyName::Up,
        "DOWN" => KeyName::Down,
        "00" => KeyName::DoubleZero,
        other => return Err(format!("unknown key {other:?}")),
    }])
}

fn run_step<W: World>(
    w: &mut W,
    step: &Step,
    directive: Option<DirectiveId>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let err = |ctx: &Ctx<'_>, what: &str, e: String| ctx.fail(what, e, FailureKind::Error);
    match step {
        Step::Keys(k) => {
            let pace = Duration::from_millis(k.pace_ms());
            let mut first = true;
            for name in k.names() {
                let name = subst(name, &ctx.vars).map_err(|e| err(ctx, "keys", e))?;
                for key in key_names(&name).map_err(|e| err(ctx, "keys", e))? {
                    if !first && !pace.is_zero() {
                        w.advance(pace);
                    }
                    first = false;
                    w.key(key).map_err(|e| err(ctx, "keys", e))?;
                }
            }
            w.settle();
        }
        Step::Card(c) => {
            let act = match c {
                CardAction::Swipe(n) => {
                    CardAct::Swipe(subst(n, &ctx.vars).map_err(|e| err(ctx, "card", e))?)
                }
                CardAction::Insert(n) => {
                    CardAct::Insert(subst(n, &ctx.vars).map_err(|e| err(ctx, "card", e))?)
                }
                CardAction::Tap(n) => {
                    CardAct::Tap(subst(n, &ctx.vars).map_err(|e| err(ctx, "card", e))?)
                }
                CardAction::Remove => CardAct::Remove,
            };
            w.card(&act).map_err(|e| err(ctx, "card", e))?;
            w.settle();
        }
        Step::Fault(f) => {
            for (kind, v) in [
                (WorldFault::Device(FaultKind::PaperOut), f.paper_out),
                (WorldFault::Device(FaultKind::CoverOpen), f.cover_open),
                (WorldFault::Device(FaultKind::ChipMute), f.chip_mute),
                (WorldFault::Device(FaultKind::BadSwipe), f.bad_swipe),
                (WorldFault::HostDown, f.host_down),
            ] {
                if let Some(on) = v {
                    w.fault(kind, on).map_err(|e| err(ctx, "fault", e))?;
                }
            }
            if let Some(n) = f.paper_out_after {
                w.paper_out_after(n).map_err(|e| err(ctx, "fault", e))?;
            }
            w.settle();
        }
        Step::Power(p) => {
            match p {
                PowerAction::Off => w.power(false),
                PowerAction::On => w.power(true),
                PowerAction::Cycle => w.power(false).and_then(|_| w.power(true)),
                PowerAction::CutAt(f) => w.arm_power_cut(*f),
            }
            .map_err(|e| err(ctx, "power", e))?;
            w.settle();
        }
        Step::Ecr(c) => {
            let apdu = build_ecr(c, ctx, &|n| w.card_fixture(n)).map_err(|e| err(ctx, "ecr", e))?;
            let is_abort = matches!(c, EcrCommand::Abort(_));
            if !is_abort {
                w.observed_mut().ecr.begin_command();
            }
            w.ecr_send(apdu).map_err(|e| err(ctx, "ecr", e))?;
            if !is_abort {
                // Until the terminal takes or refuses the command (T3 on its side too).
                let ok = w.wait_until(Duration::from_secs(10), &mut |o, _| {
                    o.ecr.accepted.is_some() || o.ecr.no_answer || o.ecr.ended()
                });
                if !ok {
                    return Err(ctx.fail(
                        "ecr command",
                        "the terminal neither accepted nor refused it",
                        FailureKind::Timeout,
                    ));
                }
            }
            // What the command sets going on its own (a result, receipt lines) belongs to it.
            w.settle();
        }
        Step::EcrReply(r) => {
            let kind = match r.to.as_str() {
                "status_information" => CommandKind::StatusInformation,
                "intermediate_status" => CommandKind::IntermediateStatus,
                "print_line" => CommandKind::PrintLine,
                "print_block" => CommandKind::PrintTextBlock,
                "completion" => CommandKind::Completion,
                _ => CommandKind::Abort,
            };
            let reply = match r.answer.as_str() {
                "ack" => Reply::Ack,
                "silent" => Reply::Silent,
                hex => Reply::Nack(
                    parse_hex(hex)
                        .and_then(|b| b.get(1).copied())
                        .unwrap_or(0x83),
                ),
            };
            let times = if r.times == 0 {
                Times::Always
            } else {
                Times::Once
            };
            for _ in 0..r.times.max(1) {
                w.ecr_reply(kind, reply.clone(), times);
                if times == Times::Always {
                    break;
                }
            }
        }
        Step::EcrLine(l) => {
            w.ecr_line_faults(LineFaults {
                drop_acks: l.drop_acks.unwrap_or(0),
                corrupt_frames: l.corrupt_frames.unwrap_or(0),
                delay_ack: l.delay_ack_ms.map(Duration::from_millis),
            });
            if let Some(h) = &l.inject {
                let bytes = parse_hex(h)
                    .ok_or_else(|| err(ctx, "ecr_line", format!("{h:?} is not hex")))?;
                w.ecr_inject(&bytes).map_err(|e| err(ctx, "ecr_line", e))?;
            }
            if l.disconnect {
                w.ecr_disconnect().map_err(|e| err(ctx, "ecr_line", e))?;
            }
            w.settle();
        }
        Step::Host(h) => {
            let Some(id) = directive else { return Ok(()) };
            let timeout = Duration::from_millis(h.timeout_ms.unwrap_or(10_000));
            let consumed = w.wait_until(timeout, &mut |_, host| {
                host.directive(id).is_some_and(|d| d.consumed())
            });
            let mti = h
                .select
                .get("mti")
                .or(h.expect.get("mti"))
                .map(|m| format!("{m:?}"))
                .unwrap_or_default();
            if !consumed {
                // Keep "nothing came" apart from "something came that matched nothing".
                let strays: Vec<String> = w.with_host(|host| {
                    host.log()
                        .iter()
                        .filter(|x| {
                            x.direction == acquirer::log::Direction::In && x.directive.is_none()
                        })
                        .filter_map(|x| x.mti.clone().or_else(|| x.note.clone()))
                        .collect()
                });
                let (kind, msg) = if strays.is_empty() {
                    (
                        FailureKind::Timeout,
                        format!("no request arrived within {} ms", timeout.as_millis()),
                    )
                } else {
                    (
                        FailureKind::Unmatched,
                        format!(
                            "no request matched within {} ms; the host got {} other request(s): {}",
                            timeout.as_millis(),
                            strays.len(),
                            strays.join(", ")
                        ),
                    )
                };
                return Err(ctx.fail(format!("host {mti}"), msg, kind));
            }
            // Check the request against every expectation.
            let (request, reply) = w.with_host(|host| {
                let app = host
                    .directive(id)
                    .and_then(|d| d.applications.last().cloned());
                let req = app.as_ref().and_then(|a| host.exchange(a.request).cloned());
                let rep = app
                    .as_ref()
                    .and_then(|a| a.replies.first())
                    .and_then(|s| host.exchange(*s).cloned());
                (req, rep)
            });
            let Some(request) = request else {
                return Err(ctx.fail(
                    format!("host {mti}"),
                    "the matched request is not in the host's log",
                    FailureKind::Error,
                ));
            };
            let echo = |r: &str| -> Option<String> {
                let (side, f) = r.split_once('.')?;
                let ex = if side == "request" {
                    Some(&request)
                } else {
                    reply.as_ref()
                }?;
                if f == "mti" {
                    ex.mti.clone()
                } else {
                    ex.field(f).map(str::to_string)
                }
            };
            for (key, m) in h.expect.iter() {
                let matcher = compile(m, &ctx.vars).map_err(|e| err(ctx, key, e))?;
                // `reply.57.3`: what the host answered (fees it computed), not what it got.
                let actual = match key.strip_prefix("reply.") {
                    Some(f) => echo(&format!("reply.{f}")),
                    None if key == "mti" => request.mti.clone(),
                    None => request.field(key).map(str::to_string),
                };
                if let Err(e) = matcher.check(actual.as_deref(), &echo) {
                    return Err(ctx.fail(
                        format!(
                            "host {} field {key}",
                            request.mti.clone().unwrap_or_default()
                        ),
                        e,
                        FailureKind::Mismatch,
                    ));
                }
            }
            for (var, src) in h.capture.iter() {
                let v = echo(src).ok_or_else(|| {
                    ctx.fail(
                        format!("capture {var}"),
                        format!("{src} is not there (no reply yet, or no such field)"),
                        FailureKind::Mismatch,
                    )
                })?;
                ctx.vars.insert(var.to_string(), v);
            }
        }
        Step::Wait(e) => {
            if let Some(ms) = e.time_ms {
                w.advance(Duration::from_millis(ms));
                w.recorder().push(Channel::Note, format!("{ms} ms passed"));
            }
            if has_checks(e) {
                check(
                    w,
                    e,
                    ctx,
                    Duration::from_millis(e.timeout_ms.unwrap_or(30_000)),
                    FailureKind::Timeout,
                )?;
            }
        }
        Step::Expect(e) => {
            check(
                w,
                e,
                ctx,
                Duration::from_millis(e.timeout_ms.unwrap_or(5_000)),
                FailureKind::Mismatch,
            )?;
        }
    }
    Ok(())
}

fn has_checks(e: &Expectations) -> bool {
    e.display.is_some()
        || !e.capture.is_empty()
        || e.printer.is_some()
        || !e.ecr.is_empty()
        || !e.host.is_empty()
        || e.leds.is_some()
        || e.beeper.is_some()
}

/// Waits until every expectation holds; on timeout reports the first that does not.
fn check<W: World>(
    w: &mut W,
    e: &Expectations,
    ctx: &mut Ctx<'_>,
    timeout: Duration,
    kind: FailureKind,
) -> Result<(), Failure> {
    // Compile once, with the variables as they are now.
    let mut compiled: Vec<(String, Matcher)> = Vec::new();
    let c = |m: &MatcherValue, what: &str| {
        compile(m, &ctx.vars).map_err(|x| ctx.fail(what, x, FailureKind::Error))
    };
    if let Some(m) = &e.display {
        compiled.push(("display".into(), c(m, "display")?));
    }
    if let Some(m) = &e.printer {
        compiled.push(("printer".into(), c(m, "printer")?));
    }
    for (k, m) in e.ecr.iter() {
        compiled.push((format!("ecr.{k}"), c(m, k)?));
    }
    for (k, m) in e.host.iter() {
        compiled.push((format!("host.{k}"), c(m, k)?));
    }
    let leds = e.leds.clone();
    let beeper = e.beeper.clone();
    let mut last_failure: Option<(String, String)> = None;
    let mut captured: Vec<(String, Option<String>)> = Vec::new();
    let ok = w.wait_until(timeout, &mut |o, host| {
        last_failure = first_failure(&compiled, leds.as_deref(), beeper.as_deref(), o, host);
        if last_failure.is_none() {
            // Captured at the instant everything held, so a value belongs to that state.
            captured = e
                .capture
                .iter()
                .map(|(var, src)| (var.to_string(), actual_of(src, o, host)))
                .collect();
        }
        last_failure.is_none()
    });
    if ok {
        for (var, v) in captured {
            let src = e.capture.get(&var).cloned().unwrap_or_default();
            let v = v.ok_or_else(|| {
                ctx.fail(
                    format!("capture {var}"),
                    format!("{src} is not there"),
                    FailureKind::Mismatch,
                )
            })?;
            ctx.vars.insert(var, v);
        }
        return Ok(());
    }
    let (what, msg) = last_failure.unwrap_or_else(|| ("expectation".into(), "did not hold".into()));
    let msg = if kind == FailureKind::Timeout {
        format!("{msg} (waited {} ms)", timeout.as_millis())
    } else {
        msg
    };
    Err(ctx.fail(what, msg, kind))
}

fn first_failure(
    compiled: &[(String, Matcher)],
    leds: Option<&[String]>,
    beeper: Option<&str>,
    o: &super::Observed,
    host: &Host,
) -> Option<(String, String)> {
    let no_echo = |_: &str| None;
    for (what, m) in compiled {
        let actual = actual_of(what, o, host);
        if let Err(e) = m.check(actual.as_deref(), &no_echo) {
            return Some((what.clone(), e));
        }
    }
    if let Some(want) = leds {
        let got: Vec<&str> = o
            .leds
            .iter()
            .map(|l| match l {
                LedState::On => "on",
                LedState::Off => "off",
                LedState::Blink => "blink",
            })
            .collect();
        if got != want {
            return Some(("leds".into(), format!("expected {want:?}, got {got:?}")));
        }
    }
    if let Some(want) = beeper {
        let got = o.beeps.last().map(|t| match t {
            Tone::Success => "success",
            Tone::Alert => "alert",
            Tone::Click => "click",
        });
        if got != Some(want) {
            return Some(("beeper".into(), format!("expected {want:?}, got {got:?}")));
        }
    }
    None
}

fn actual_of(what: &str, o: &super::Observed, host: &Host) -> Option<String> {
    if what == "display" {
        return Some(o.display_text());
    }
    if what == "printer" {
        return Some(o.printer_text.clone());
    }
    if let Some(k) = what.strip_prefix("ecr.") {
        let e = &o.ecr;
        return match k {
            "result" => e.result().map(|r| format!("{r:02X}")),
            "completed" => e.completed.then(|| "true".into()),
            "aborted" => e.aborted.map(|r| format!("{r:02X}")),
            // The code of a negative acknowledgement (84 xx) to the command itself.
            "refused" => e.refused.map(|r| format!("{r:02X}")),
            "text" => Some(e.text.clone()),
            "intermediate" => e.intermediate.map(|r| format!("{r:02X}")),
            "messages" => Some(e.messages.to_string()),
            "receipt_count" => Some(e.receipts.to_string()),
            k if k.starts_with("tlv.") => match &k[4..] {
                "1F16" => e.extended_code.clone(),
                "1F17" => e.extended_text.clone(),
                _ => None,
            },
            bmp => status_bmp(e.last_status.as_deref(), bmp),
        };
    }
    if let Some(k) = what.strip_prefix("host.") {
        let requests: Vec<&acquirer::log::Exchange> = host
            .log()
            .iter()
            .filter(|x| x.direction == acquirer::log::Direction::In && x.is_message())
            .collect();
        if k == "count" {
            return Some(requests.len().to_string());
        }
        let f = k.strip_prefix("last.")?;
        let last = requests.last()?;
        return if f == "mti" {
            last.mti.clone()
        } else {
            last.field(f).map(str::to_string)
        };
    }
    None
}

fn status_bmp(s: Option<&protocol::zvt::command::StatusInformation>, bmp: &str) -> Option<String> {
    let s = s?;
    let digits = |b: Option<String>| b;
    match bmp {
        "27" => s.result.map(|r| format!("{r:02X}")),
        "04" => s.amount_minor.map(|a| format!("{a:012}")),
        "49" => s.currency.map(|c| format!("{c:04}")),
        "0B" => digits(s.trace.as_ref().map(|b| b.digits())),
        "87" => digits(s.receipt.as_ref().map(|b| b.digits())),
        "0D" => digits(s.date.as_ref().map(|b| b.digits())),
        "29" => digits(s.tid.as_ref().map(|b| b.digits())),
        "22" => s.pan.as_ref().map(|p| p.masked()),
        "3B" => s.aid.map(|a| {
            String::from_utf8_lossy(&a)
                .trim_end_matches('\0')
                .to_string()
        }),
        "19" => s.payment_type.map(|p| format!("{p:02X}")),
        _ => None,
    }
}

fn password(p: &Option<String>, ctx: &Ctx<'_>) -> Result<Bcd<3>, String> {
    let pw = match p {
        Some(p) => subst(p, &ctx.vars)?,
        None => ctx.profile.zvt.password.clone(),
    };
    Bcd::from_digits(&pw).ok_or_else(|| format!("password {pw:?} must be 6 digits"))
}

fn currency(c: &Option<String>, ctx: &Ctx<'_>) -> Result<protocol::money::Currency, String> {
    match c {
        Some(c) => subst(c, &ctx.vars)?
            .parse()
            .map_err(|e: protocol::money::MoneyError| e.to_string()),
        None => Ok(ctx.profile.currency),
    }
}

fn tlv_reference(r: &Option<String>, ctx: &Ctx<'_>) -> Result<Option<Vec<u8>>, String> {
    let Some(r) = r else { return Ok(None) };
    let mut v = Vec::new();
    protocol::tlv::write(
        &mut v,
        protocol::tlv::Tag(tlv_tag::TRANSACTION_ID),
        subst(r, &ctx.vars)?.as_bytes(),
    );
    Ok(Some(v))
}

fn build_ecr(
    c: &EcrCommand,
    ctx: &Ctx<'_>,
    cards: &dyn Fn(&str) -> Option<CardFixture>,
) -> Result<Vec<u8>, String> {
    let cmd = match c {
        EcrCommand::Raw(h) => {
            return parse_hex(&subst(h, &ctx.vars)?).ok_or_else(|| format!("{h:?} is not hex"));
        }
        EcrCommand::Registration(r) => {
            let config = match &r.config {
                Some(c) => parse_hex(c)
                    .and_then(|b| b.first().copied())
                    .ok_or("config must be one hex byte")?,
                None => 0xBA,
            };
            let mut tlv = Vec::new();
            if r.print_blocks {
                let mut inner = Vec::new();
                protocol::tlv::write(
                    &mut inner,
                    protocol::tlv::Tag(tlv_tag::ZVT_COMMAND),
                    &[0x06, 0xD3],
                );
                protocol::tlv::write(
                    &mut tlv,
                    protocol::tlv::Tag(tlv_tag::PERMITTED_COMMANDS),
                    &inner,
                );
            }
            Command::Registration(ZRegistration {
                password: password(&r.password, ctx)?,
                config,
                currency: Some(currency(&r.currency, ctx)?.numeric()),
                tlv: Some(tlv),
                ..Default::default()
            })
        }
        EcrCommand::Authorization(p) => {
            let cur = currency(&p.currency, ctx)?;
            let amount = amount(&p.amount, cur, ctx)?;
            Command::Authorization(Authorization {
                amount_minor: Some(amount.minor()),
                currency: Some(cur.numeric()),
                payment_type: Some(0x40),
                tlv: tlv_reference(&p.reference, ctx)?,
                ..Default::default()
            })
        }
        EcrCommand::Refund(r) => {
            let cur = currency(&r.currency, ctx)?;
            let amount = amount(&r.amount, cur, ctx)?;
            let mut z = ZRefund {
                password: password(&r.password, ctx)?,
                amount_minor: Some(amount.minor()),
                currency: Some(cur.numeric()),
                payment_type: Some(0x40),
                tlv: tlv_reference(&r.reference, ctx)?,
                ..Default::default()
            };
            if let Some(card) = &r.card {
                let name = subst(&card.name, &ctx.vars)?;
                let f = cards(&name).ok_or_else(|| format!("unknown card {name:?}"))?;
                z.card.pan = Some(CardNumber::from_pan(f.pan()));
                z.card.expiry = Bcd::from_digits(&f.expiry.to_yymm());
            }
            if let Some(o) = &r.original {
                let get = |x: &Option<String>| x.as_ref().map(|v| subst(v, &ctx.vars)).transpose();
                let zo = if let Some(rrn) = get(&o.rrn)? {
                    let d =
                        get(&o.date)?.ok_or("an original named by RRN needs its date (MMDD)")?;
                    let (m, dd) = (
                        d.get(..2).and_then(|x| x.parse().ok()),
                        d.get(2..4).and_then(|x| x.parse().ok()),
                    );
                    ZOriginal::RrnDate {
                        rrn,
                        month: m.ok_or("bad MMDD")?,
                        day: dd.ok_or("bad MMDD")?,
                    }
                } else if let Some(stan) = get(&o.stan)? {
                    let batch = get(&o.batch)?.unwrap_or_else(|| "0".into());
                    ZOriginal::TraceBatch {
                        trace: stan.parse().map_err(|_| "bad stan")?,
                        batch: batch.parse().map_err(|_| "bad batch")?,
                    }
                } else if let Some(a) = get(&o.auth_code)? {
                    ZOriginal::AuthCode(a)
                } else {
                    return Err("original: give rrn + date, stan (+ batch) or auth_code".into());
                };
                z.set_original_ref(&zo).map_err(|e| e.to_string())?;
            }
            Command::Refund(z)
        }
        EcrCommand::Reversal(r) => {
            let receipt = subst(&r.receipt, &ctx.vars)?;
            let digits = receipt.trim_start_matches('0');
            let amount = match &r.amount {
                Some(a) => Some(amount(a, ctx.profile.currency, ctx)?.minor()),
                None => None,
            };
            Command::Reversal(ZReversal {
                password: password(&r.password, ctx)?,
                receipt: Bcd::from_u64(digits.parse().unwrap_or(0)),
                amount_minor: amount,
                ..Default::default()
            })
        }
        EcrCommand::EndOfDay(p) => {
            Command::EndOfDay(PasswordCommand::new(password(&p.password, ctx)?))
        }
        EcrCommand::RepeatReceipt(p) => {
            Command::RepeatReceipt(PasswordCommand::new(password(&p.password, ctx)?))
        }
        EcrCommand::Initialisation(p) => {
            Command::Initialisation(PasswordCommand::new(password(&p.password, ctx)?))
        }
        EcrCommand::StatusEnquiry(p) => Command::StatusEnquiry(StatusEnquiry {
            password: Some(password(&p.password, ctx)?),
            ..Default::default()
        }),
        EcrCommand::Diagnosis(_) => Command::Diagnosis(TlvOnly::default()),
        EcrCommand::LogOff(_) => Command::LogOff(TlvOnly::default()),
        EcrCommand::Abort(_) => Command::AbortFromEcr(AbortFromEcr::default()),
    };
    cmd.to_bytes().map_err(|e| e.to_string())
}

fn directive(h: &HostStep, ctx: &Ctx<'_>) -> Result<Directive, String> {
    let mut d = Directive::new().times(HostTimes::Once);
    // Selection: the MTI and the `match:` fields. Exact values select directly; other
    // matchers through the harness's matcher, so there is one matcher.
    let mut preds: Vec<(String, Matcher)> = Vec::new();
    let mut sel: Vec<(&str, &MatcherValue)> = h.select.iter().collect();
    if h.select.get("mti").is_none()
        && let Some(m) = h.expect.get("mti")
    {
        sel.push(("mti", m));
    }
    for (k, m) in sel {
        match subst_matcher(m, &ctx.vars)? {
            MatcherValue::Exact(v) if k == "mti" => d = d.mti(&v),
            MatcherValue::Exact(v) => d = d.field(k, v),
            other => preds.push((k.to_string(), Matcher::compile(&other)?)),
        }
    }
    if !preds.is_empty() {
        d = d.when(move |req| {
            preds.iter().all(|(k, m)| {
                let actual = if k == "mti" {
                    Some(req.mti().to_string())
                } else {
                    req.value(k)
                };
                m.check(actual.as_deref(), &|_| None).is_ok()
            })
        });
    }
    for (k, v) in h.reply.iter() {
        let v = subst(v, &ctx.vars)?;
        if k == "39" {
            d = if v == "00" { d.approve() } else { d.decline(v) };
        } else {
            d = d.set(k, v);
        }
    }
    if let Some(f) = &h.fault {
        d = d.fault(Fault::parse(f).ok_or_else(|| format!("unknown host fault {f:?}"))?);
    }
    if let Some(ms) = h.delay_ms {
        d = d.delay_ms(ms);
    }
    Ok(d)
}

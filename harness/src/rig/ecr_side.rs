//! The cash register's side of the ECR link, one for every rig: the shared ZVT ECR sequencer,
//! what the line does to the bytes it writes (lost or late ACKs, corrupted frames), and what it
//! sees, into the observations and the transcript. A world only moves bytes between this and
//! its terminal, so the ECR lines of a transcript cannot differ between rigs.

use std::time::Duration;

use protocol::time::Instant;
use protocol::zvt::command::{Command, CommandKind};
use protocol::zvt::ecr::{EcrConfig, EcrEvent, EcrSession, Reply, Times};
use protocol::zvt::transport::Transport;

use crate::render;
use crate::runner::{LineFaults, Observed, Recorder};
use crate::transcript::{Channel, Item};

/// What the line does with bytes the ECR wrote.
#[derive(Debug, PartialEq, Eq)]
pub enum OnTheLine {
    /// Lost (a dropped ACK).
    Lost,
    /// Delivered now (perhaps corrupted).
    Now(Vec<u8>),
    /// Delivered after this much terminal time (a late ACK).
    After(Duration, Vec<u8>),
}

pub struct EcrSide {
    pub session: EcrSession,
    /// The command in progress is a status enquiry (05 01): its 06 0F renders as such.
    answering_enquiry: bool,
    faults: LineFaults,
    /// The terminal owes the next message of a stream without waiting for anyone: a 04 0F or
    /// a print line that is not a receipt's last was acknowledged.
    owed: bool,
}

impl EcrSide {
    pub fn new(transport: Transport) -> EcrSide {
        EcrSide {
            session: EcrSession::new(transport, EcrConfig::default()),
            answering_enquiry: false,
            faults: LineFaults::default(),
            owed: false,
        }
    }

    /// Records a command the scenario sends and starts it (06 B0 is the abort).
    pub fn send(
        &mut self,
        apdu: Vec<u8>,
        now: Instant,
        t_ms: i64,
        rec: &mut Recorder,
    ) -> Result<(), String> {
        self.answering_enquiry = apdu.starts_with(&[0x05, 0x01]);
        rec.raw("ecr-out", t_ms, &crate::redact::zvt(&apdu));
        rec.item(
            Channel::EcrOut,
            Item::Zvt {
                apdu: apdu.clone(),
                enquiry: false,
                suffix: String::new(),
            },
        );
        let r = if apdu.starts_with(&[0x06, 0xB0]) {
            self.session.abort(now)
        } else {
            self.session.start_apdu(apdu, now)
        };
        r.map_err(|e| e.to_string())
    }

    pub fn set_reply(&mut self, kind: CommandKind, reply: Reply, times: Times) {
        self.session.set_reply(kind, reply, times);
    }

    /// Line faults to come add up; a new ACK delay replaces the old.
    pub fn add_faults(&mut self, f: LineFaults) {
        self.faults.drop_acks += f.drop_acks;
        self.faults.corrupt_frames += f.corrupt_frames;
        if f.delay_ack.is_some() {
            self.faults.delay_ack = f.delay_ack;
        }
    }

    /// Bytes the scenario puts on the line as they are.
    pub fn note_injected(bytes: &[u8], rec: &mut Recorder) {
        rec.push(
            Channel::Link,
            format!("{} bytes of noise on the ECR line", bytes.len()),
        );
    }

    /// What the line does to bytes the ECR wrote, with the armed faults.
    pub fn on_the_line(&mut self, mut b: Vec<u8>, rec: &mut Recorder) -> OnTheLine {
        let is_ack = b == [0x06];
        if is_ack && self.faults.drop_acks > 0 {
            self.faults.drop_acks -= 1;
            rec.push(Channel::Link, "ECR ACK dropped".into());
            return OnTheLine::Lost;
        }
        if b.starts_with(&[0x10, 0x02]) && self.faults.corrupt_frames > 0 && b.len() > 4 {
            self.faults.corrupt_frames -= 1;
            let mid = b.len() / 2;
            if let Some(x) = b.get_mut(mid) {
                *x ^= 0x01;
            }
            rec.push(Channel::Link, "ECR frame corrupted on the line".into());
        }
        if is_ack && let Some(d) = self.faults.delay_ack.take() {
            return OnTheLine::After(d, b);
        }
        OnTheLine::Now(b)
    }

    /// Everything the sequencer has to report, into the observations and the transcript.
    pub fn observe(&mut self, obs: &mut Observed, rec: &mut Recorder) -> bool {
        let mut any = false;
        while let Some(ev) = self.session.poll_event() {
            any = true;
            self.owed = match &ev {
                EcrEvent::StatusInfo { replied, .. } | EcrEvent::PrintBlock { replied, .. } => {
                    *replied == Reply::Ack
                }
                EcrEvent::PrintLine { line, replied } => {
                    *replied == Reply::Ack && line.attribute & 0x80 == 0
                }
                EcrEvent::Link(_) => self.owed,
                _ => false,
            };
            observe_ecr_event(ev, obs, rec, self.answering_enquiry, &mut self.session);
        }
        any
    }

    /// The terminal is in the middle of a stream it sends on its own (a result and its
    /// receipt lines): a wall-clock rig does not call a step quiet while it lasts, however
    /// the machine's scheduling spaces the messages out.
    pub fn owes_more(&self) -> bool {
        self.owed
    }

    /// The ECR link was reset (power cut, connection dropped): nothing is owed any more.
    pub fn reset(&mut self) {
        self.session.reset();
        self.owed = false;
    }
}

/// Link traces worth a transcript line: repeats, NAKs, duplicates, broken frames — not the
/// ACK and first send of every frame.
fn notable_link_event(s: &str) -> bool {
    !(s == "AckSent" || s == "AckReceived" || s == "FrameSent { attempt: 1 }")
}

fn describe_enquiry(c: &Command) -> String {
    match c {
        Command::EnquiryCompletion(e) => format!(
            "sw={:?} status={}",
            e.sw_version
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default(),
            e.terminal_status
                .map(|s| format!("{s:02X}"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// What the ECR saw, into the observations and the transcript.
fn observe_ecr_event(
    ev: EcrEvent,
    obs: &mut Observed,
    rec: &mut Recorder,
    answering_enquiry: bool,
    ecr: &mut EcrSession,
) {
    let render_cmd = |obs: &mut Observed, rec: &mut Recorder, c: &Command, replied: &Reply| {
        obs.ecr.messages += 1;
        let bytes = c.to_bytes().unwrap_or_default();
        let name = render::zvt_name(
            bytes.first().copied().unwrap_or(0),
            bytes.get(1).copied().unwrap_or(0),
        );
        let enquiry = answering_enquiry && matches!(c, Command::EnquiryCompletion(_));
        rec.item(
            Channel::EcrIn,
            Item::Zvt {
                apdu: bytes,
                enquiry,
                suffix: String::new(),
            },
        );
        match replied {
            Reply::Ack => {}
            Reply::Nack(code) => {
                rec.push(Channel::EcrOut, format!("84 {code:02X} nack (to {name})"))
            }
            Reply::Silent => rec.push(Channel::EcrOut, format!("(no answer to {name})")),
            Reply::Raw(r) => rec.item(
                Channel::EcrOut,
                Item::Zvt {
                    apdu: r.clone(),
                    enquiry: false,
                    suffix: format!(" (to {name})"),
                },
            ),
        }
    };
    match ev {
        EcrEvent::Accepted { implicit, .. } => {
            obs.ecr.accepted = Some(true);
            if !implicit {
                rec.push(Channel::EcrIn, "80 00 ack".into());
            }
        }
        EcrEvent::Refused { code, .. } => {
            obs.ecr.accepted = Some(false);
            obs.ecr.refused = Some(code);
            rec.push(Channel::EcrIn, format!("84 {code:02X} nack"));
        }
        EcrEvent::NoAnswer { .. } => {
            obs.ecr.no_answer = true;
            rec.push(Channel::Note, "ECR: no answer within T3".into());
        }
        EcrEvent::Intermediate { status, replied } => {
            obs.ecr.intermediate = Some(status.status);
            render_cmd(obs, rec, &Command::IntermediateStatus(status), &replied);
        }
        EcrEvent::StatusInfo { info, replied } => {
            let ext = |tag| {
                info.tlv
                    .as_deref()
                    .and_then(|t| {
                        protocol::tlv::find(t, protocol::tlv::Tag(tag))
                            .ok()
                            .flatten()
                    })
                    .map(|t| t.value.to_vec())
            };
            obs.ecr.extended_code = ext(0x1F16).map(|v| String::from_utf8_lossy(&v).into_owned());
            obs.ecr.extended_text = ext(0x1F17).map(|v| String::from_utf8_lossy(&v).into_owned());
            let c = Command::StatusInformation(info.clone());
            obs.ecr.last_status = Some(info);
            render_cmd(obs, rec, &c, &replied);
        }
        EcrEvent::PrintLine { line, replied } => {
            obs.ecr.text.push_str(&String::from_utf8_lossy(&line.text));
            obs.ecr.text.push('\n');
            if line.attribute & 0x80 != 0 {
                obs.ecr.receipts += 1;
            }
            render_cmd(obs, rec, &Command::PrintLine(line), &replied);
        }
        EcrEvent::PrintBlock { block, replied } => {
            for l in render::print_block_lines(&block.tlv) {
                obs.ecr.text.push_str(&l);
                obs.ecr.text.push('\n');
            }
            let text = render::print_block_lines(&block.tlv).join("\n");
            obs.ecr.messages += 1;
            obs.ecr.receipts += 1;
            rec.item(
                Channel::EcrIn,
                Item::Receipt {
                    title: "06 D3 print-text-block".into(),
                    text,
                },
            );
            if replied != Reply::Ack {
                rec.push(
                    Channel::EcrOut,
                    format!("{replied:?} (to print-text-block)"),
                );
            }
        }
        EcrEvent::SetDateTime { value, replied } => {
            render_cmd(obs, rec, &Command::SetDateTime(value), &replied)
        }
        EcrEvent::Completed {
            completion,
            replied,
        } => {
            obs.ecr.completed = true;
            render_cmd(obs, rec, &Command::Completion(completion), &replied);
        }
        EcrEvent::EnquiryCompleted {
            completion,
            replied,
        } => {
            obs.ecr.completed = true;
            obs.ecr.sw_version = completion
                .sw_version
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            let c = Command::EnquiryCompletion(completion);
            rec.push(
                Channel::EcrIn,
                format!("06 0F completion (status enquiry) {}", describe_enquiry(&c)),
            );
            obs.ecr.messages += 1;
            if replied != Reply::Ack {
                rec.push(Channel::EcrOut, format!("{replied:?}"));
            }
        }
        EcrEvent::Aborted { abort, replied } => {
            obs.ecr.aborted = Some(abort.result);
            if let Ok(Some(c)) = abort.extended_error_code() {
                obs.ecr.extended_code = Some(String::from_utf8_lossy(c).into_owned());
            }
            if let Ok(Some(t)) = abort.extended_error_text() {
                obs.ecr.extended_text = Some(String::from_utf8_lossy(t).into_owned());
            }
            render_cmd(obs, rec, &Command::Abort(abort), &replied);
        }
        EcrEvent::OtherMessage { command, replied } => render_cmd(obs, rec, &command, &replied),
        EcrEvent::Undecodable { apdu, .. } => {
            rec.push(Channel::EcrIn, format!("undecodable {}", apdu.len()))
        }
        EcrEvent::AbortAnswered { code } => {
            let t = match code {
                None => "80 00 ack (abort)".to_string(),
                Some(c) => format!("84 {c:02X} nack (abort)"),
            };
            rec.push(Channel::EcrIn, t);
        }
        EcrEvent::AbortNoAnswer => rec.push(Channel::Note, "ECR: no answer to 06 B0".into()),
        EcrEvent::T4Expired => rec.push(Channel::Note, "ECR: T4 expired".into()),
        EcrEvent::UnexpectedAnswer { .. } => rec.push(Channel::Link, "unexpected answer".into()),
        EcrEvent::LinkFailed { .. } => rec.push(
            Channel::Note,
            "ECR: link failed (no ACK after repeats)".into(),
        ),
        EcrEvent::Noise { bytes } => {
            rec.push(Channel::Link, format!("noise {} bytes", bytes.len()))
        }
        EcrEvent::Link(trace) => {
            let s = format!("{trace:?}");
            if notable_link_event(&s) {
                rec.push(Channel::Link, format!("ECR {s}"));
            }
        }
        EcrEvent::TransportBroken(e) => {
            rec.push(Channel::Note, format!("ECR stream broken: {e}"));
            ecr.reset();
        }
    }
}

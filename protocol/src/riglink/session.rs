//! Sans-IO sessions for both ends of the rig link.
//!
//! [`ServerSession`] is the rig's side (the emulator's signals port, or the logic a rig
//! controller implements in C): it answers HELLO, PING and MODE itself, enforces MACHINE/HUMAN
//! mode, replays the reply to a retransmitted request instead of pressing a key twice, numbers
//! events, and hands every other request to the application one at a time.
//!
//! [`ClientSession`] is the harness's side: numbers requests, keeps one outstanding
//! (stop-and-wait), retransmits on timeout or on `ERR -`, and reports lost events as a gap so the
//! caller can resynchronise with `GET STATE` / `GET DISPLAY` / `GET PRINTER <offset>`.

use std::collections::VecDeque;
use std::time::Duration;

use super::codec::{DecodeError, EncodeError, LineDecoder, VERSION, encode_line};
use super::model::*;
use crate::time::Instant;

/// How the application answers a request handed out by [`ServerSession::poll_request`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Done: `ACK <seq>`.
    Done,
    /// Done with data (the answer to a GET): `ACK <seq> <report>`.
    Data(Report),
    /// Refused: `ERR <seq> <code> "<text>"`.
    Failed(ErrCode, String),
}

/// A request the application must carry out, then answer with [`ServerSession::reply`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Incoming {
    /// `None` for an unframed (human-mode) request.
    pub seq: Option<u16>,
    pub request: Request,
}

enum Queued {
    Req {
        seq: Option<u16>,
        request: Request,
        key: String,
    },
    Bad(DecodeError),
}

struct Done {
    seq: u16,
    key: String,
    reply: String,
}

/// The rig's end of the link.
///
/// ```
/// use protocol::riglink::{ServerSession, Capability, Outcome, Request, KeyName};
/// let mut s = ServerSession::new("emu", &Capability::ALL);
/// assert_eq!(s.poll_transmit().unwrap(), "!0 BOOT 1 emu *B6\n");
/// s.handle_input(b"@1 KEY 5 *D3\n");
/// let req = s.poll_request().unwrap();
/// assert_eq!(req.request, Request::Key(KeyName::Digit(5)));
/// s.reply(Outcome::Done);
/// assert_eq!(s.poll_transmit().unwrap(), "ACK 1 *58\n");
/// ```
pub struct ServerSession {
    name: String,
    caps: Vec<Capability>,
    mode: Mode,
    decoder: LineDecoder,
    queue: VecDeque<Queued>,
    outstanding: Option<(Option<u16>, String)>,
    last: Option<Done>,
    out: VecDeque<String>,
    event_seq: u16,
}

impl ServerSession {
    /// A fresh session; queues the `!0 BOOT` event.
    pub fn new(name: &str, caps: &[Capability]) -> ServerSession {
        let mut s = ServerSession {
            name: name.to_string(),
            caps: caps.to_vec(),
            mode: Mode::Machine,
            decoder: LineDecoder::new(),
            queue: VecDeque::new(),
            outstanding: None,
            last: None,
            out: VecDeque::new(),
            event_seq: 0,
        };
        s.send(&Line::Event {
            seq: 0,
            report: Report::Boot {
                version: VERSION,
                name: s.name.clone(),
            },
        });
        s
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Bytes from the client, in whatever chunks the transport delivered.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        self.decoder.feed(bytes);
        while let Some(r) = self.decoder.poll() {
            self.queue.push_back(match r {
                Ok(Line::Request { seq, request }) => {
                    let key = encode_line(&Line::Request {
                        seq,
                        request: request.clone(),
                    })
                    .unwrap_or_default();
                    Queued::Req { seq, request, key }
                }
                Ok(_) => Queued::Bad(DecodeError {
                    offset: 0,
                    column: 1,
                    seq: None,
                    kind: super::codec::DecodeErrorKind::Syntax(
                        "a rig accepts requests only (@seq VERB …)",
                    ),
                }),
                Err(e) => Queued::Bad(e),
            });
        }
    }

    /// The next request for the application, or `None` while one is outstanding or nothing
    /// is waiting. HELLO, PING and MODE, duplicates, bad lines and requests for missing
    /// capabilities are answered here and never handed out.
    pub fn poll_request(&mut self) -> Option<Incoming> {
        if self.outstanding.is_some() {
            return None;
        }
        while let Some(q) = self.queue.pop_front() {
            let (seq, request, key) = match q {
                Queued::Bad(e) => {
                    let text = e.kind.to_string();
                    self.send(&Line::Err {
                        seq: e.seq,
                        code: e.kind.code(),
                        text: format!("column {}: {text}", e.column),
                    });
                    continue;
                }
                Queued::Req { seq, request, key } => (seq, request, key),
            };
            if seq.is_none() && self.mode == Mode::Machine && !matches!(request, Request::Mode(_)) {
                self.send(&Line::Err {
                    seq: None,
                    code: ErrCode::NotFramed,
                    text: "MACHINE mode: send @seq VERB ... *CC, or MODE HUMAN first".into(),
                });
                continue;
            }
            if let (Some(s), Some(last)) = (seq, &self.last)
                && last.seq == s
                && last.key == key
            {
                // A retransmission: the client missed our reply, not the action.
                let again = last.reply.clone();
                self.out.push_back(again);
                continue;
            }
            match &request {
                Request::Hello { version, .. } => {
                    self.last = None;
                    if *version != VERSION {
                        self.finish(
                            seq,
                            key,
                            Outcome::Failed(
                                ErrCode::Version,
                                format!("this rig speaks version {VERSION}"),
                            ),
                        );
                    } else {
                        let r = Report::Hello {
                            version: VERSION,
                            name: self.name.clone(),
                            caps: self.caps.clone(),
                        };
                        self.finish(seq, key, Outcome::Data(r));
                    }
                    continue;
                }
                Request::Ping => {
                    self.finish(seq, key, Outcome::Done);
                    continue;
                }
                Request::Mode(m) => {
                    self.mode = *m;
                    self.finish(seq, key, Outcome::Done);
                    continue;
                }
                _ => {}
            }
            if let Some(cap) = needed_capability(&request)
                && !self.caps.contains(&cap)
            {
                self.finish(
                    seq,
                    key,
                    Outcome::Failed(
                        ErrCode::Unsupported,
                        format!("this rig has no {} capability", cap.as_str()),
                    ),
                );
                continue;
            }
            self.outstanding = Some((seq, key));
            return Some(Incoming { seq, request });
        }
        None
    }

    /// Answers the request last handed out. Without one outstanding this does nothing.
    /// A `GET STATE` answer gets the session's event number filled in.
    pub fn reply(&mut self, outcome: Outcome) {
        let Some((seq, key)) = self.outstanding.take() else {
            return;
        };
        let outcome = match outcome {
            Outcome::Data(Report::State(mut st)) => {
                st.event_seq = self.event_seq;
                Outcome::Data(Report::State(st))
            }
            o => o,
        };
        self.finish(seq, key, outcome);
    }

    fn finish(&mut self, seq: Option<u16>, key: String, outcome: Outcome) {
        let line = match outcome {
            Outcome::Done => Line::Ack { seq, report: None },
            Outcome::Data(r) => Line::Ack {
                seq,
                report: Some(r),
            },
            Outcome::Failed(code, text) => Line::Err { seq, code, text },
        };
        let text = self.encode_or_internal(&line, seq);
        if let Some(s) = seq {
            self.last = Some(Done {
                seq: s,
                key,
                reply: text.clone(),
            });
        }
        self.out.push_back(text);
    }

    fn encode_or_internal(&self, line: &Line, seq: Option<u16>) -> String {
        encode_line(line).unwrap_or_else(|e| {
            encode_line(&Line::Err {
                seq,
                code: ErrCode::Internal,
                text: e.to_string(),
            })
            .unwrap_or_else(|_| "ERR - INTERNAL \"\" *00\n".into())
        })
    }

    fn send(&mut self, line: &Line) {
        let t = self.encode_or_internal(line, None);
        self.out.push_back(t);
    }

    /// Pushes an event with the next sequence number.
    pub fn push_event(&mut self, report: Report) -> Result<u16, EncodeError> {
        let seq = self.event_seq.wrapping_add(1);
        let text = encode_line(&Line::Event { seq, report })?;
        self.event_seq = seq;
        self.out.push_back(text);
        Ok(seq)
    }

    /// The next line to write, terminator included.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.out.pop_front()
    }
}

fn needed_capability(r: &Request) -> Option<Capability> {
    Some(match r {
        Request::Key(_) | Request::Keys { .. } => Capability::Keys,
        Request::Card(_) => Capability::Card,
        Request::Fault { .. } => Capability::Fault,
        Request::Power(_) | Request::Get(GetWhat::Power) => Capability::Power,
        Request::Get(GetWhat::Display) => Capability::Display,
        Request::Get(GetWhat::Printer { .. }) => Capability::Printer,
        Request::Get(GetWhat::Leds) => Capability::Leds,
        Request::Get(GetWhat::Beeper) => Capability::Beeper,
        Request::Get(GetWhat::State) | Request::Hello { .. } | Request::Ping | Request::Mode(_) => {
            return None;
        }
    })
}

/// What the client learns.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ClientEvent {
    /// The answer to a request.
    Reply {
        seq: u16,
        request: Request,
        result: Result<Option<Report>, (ErrCode, String)>,
    },
    /// An event from the rig.
    Event { seq: u16, report: Report },
    /// Events `expected ..= got-1` were lost (line noise): resynchronise with `GET STATE`,
    /// `GET DISPLAY`, `GET LEDS` and `GET PRINTER <offset>`.
    EventGap { expected: u16, got: u16 },
    /// No reply after every try.
    Timeout { seq: u16, request: Request },
    /// The rig could not read one of our lines (`ERR - …`); the outstanding request has been
    /// sent again.
    LinkError { code: ErrCode, text: String },
    /// A line from the rig that did not decode.
    Malformed(DecodeError),
}

struct Pending {
    seq: u16,
    request: Request,
    line: String,
    deadline: Instant,
    tries: u32,
    timeout: Duration,
}

/// The harness's end of the link.
///
/// ```
/// use std::time::Duration;
/// use protocol::riglink::{ClientSession, ClientEvent, Request, KeyName};
/// use protocol::time::Instant;
/// let now = Instant::from_millis(0);
/// let mut c = ClientSession::new(Duration::from_secs(1), 3);
/// let seq = c.send(Request::Key(KeyName::Digit(5)), now).unwrap();
/// assert_eq!(c.poll_transmit().unwrap(), "@1 KEY 5 *D3\n");
/// c.handle_input(b"ACK 1 *58\n", now);
/// assert!(matches!(c.poll_event(), Some(ClientEvent::Reply { seq: 1, result: Ok(None), .. })));
/// # let _ = seq;
/// ```
pub struct ClientSession {
    decoder: LineDecoder,
    next_seq: u16,
    queue: VecDeque<(u16, Request, String)>,
    pending: Option<Pending>,
    out: VecDeque<String>,
    events: VecDeque<ClientEvent>,
    last_event: Option<u16>,
    timeout: Duration,
    max_tries: u32,
}

/// Extra time allowed per key of a KEYS request, on top of its gap (press + release).
pub const KEY_PRESS_ALLOWANCE: Duration = Duration::from_millis(300);

impl ClientSession {
    /// `timeout`: how long to wait for a reply before sending again; `max_tries`: sends per
    /// request (at least 1).
    pub fn new(timeout: Duration, max_tries: u32) -> ClientSession {
        ClientSession {
            decoder: LineDecoder::new(),
            next_seq: 1,
            queue: VecDeque::new(),
            pending: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            last_event: None,
            timeout,
            max_tries: max_tries.max(1),
        }
    }

    /// Queues a request; returns its sequence number.
    pub fn send(&mut self, request: Request, now: Instant) -> Result<u16, EncodeError> {
        let seq = self.next_seq;
        let line = encode_line(&Line::Request {
            seq: Some(seq),
            request: request.clone(),
        })?;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.queue.push_back((seq, request, line));
        self.start_next(now);
        Ok(seq)
    }

    fn timeout_for(&self, r: &Request) -> Duration {
        match r {
            Request::Keys { gap_ms, keys } => {
                let per = Duration::from_millis(*gap_ms as u64) + KEY_PRESS_ALLOWANCE;
                self.timeout + per * keys.len() as u32
            }
            _ => self.timeout,
        }
    }

    fn start_next(&mut self, now: Instant) {
        if self.pending.is_some() {
            return;
        }
        if let Some((seq, request, line)) = self.queue.pop_front() {
            let timeout = self.timeout_for(&request);
            self.out.push_back(line.clone());
            self.pending = Some(Pending {
                seq,
                request,
                line,
                deadline: now + timeout,
                tries: 1,
                timeout,
            });
        }
    }

    /// Bytes from the rig.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.decoder.feed(bytes);
        while let Some(r) = self.decoder.poll() {
            match r {
                Err(e) => self.events.push_back(ClientEvent::Malformed(e)),
                Ok(Line::Event { seq, report }) => {
                    let boot = matches!(report, Report::Boot { .. });
                    if let Some(last) = self.last_event {
                        let expected = last.wrapping_add(1);
                        if !boot && seq != expected {
                            self.events
                                .push_back(ClientEvent::EventGap { expected, got: seq });
                        }
                    }
                    self.last_event = Some(seq);
                    self.events.push_back(ClientEvent::Event { seq, report });
                }
                Ok(Line::Ack { seq, report }) => self.answer(seq, Ok(report), now),
                Ok(Line::Err {
                    seq: Some(s),
                    code,
                    text,
                }) => self.answer(Some(s), Err((code, text)), now),
                Ok(Line::Err {
                    seq: None,
                    code,
                    text,
                }) => {
                    self.events.push_back(ClientEvent::LinkError { code, text });
                    self.retry(now);
                }
                Ok(Line::Request { .. }) => {
                    self.events.push_back(ClientEvent::Malformed(DecodeError {
                        offset: 0,
                        column: 1,
                        seq: None,
                        kind: super::codec::DecodeErrorKind::Syntax("a rig does not send requests"),
                    }))
                }
            }
        }
    }

    fn answer(
        &mut self,
        seq: Option<u16>,
        result: Result<Option<Report>, (ErrCode, String)>,
        now: Instant,
    ) {
        // Replies to other sequence numbers are late duplicates of earlier answers.
        let Some(p) = self.pending.take_if(|p| Some(p.seq) == seq) else {
            return;
        };
        self.events.push_back(ClientEvent::Reply {
            seq: p.seq,
            request: p.request,
            result,
        });
        self.start_next(now);
    }

    fn retry(&mut self, now: Instant) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if p.tries >= self.max_tries {
            if let Some(p) = self.pending.take() {
                self.events.push_back(ClientEvent::Timeout {
                    seq: p.seq,
                    request: p.request,
                });
            }
            self.start_next(now);
            return;
        }
        p.tries += 1;
        p.deadline = now + p.timeout;
        self.out.push_back(p.line.clone());
    }

    /// The next line to write, terminator included.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`ClientSession::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pending.as_ref().is_some_and(|p| now >= p.deadline) {
            self.retry(now);
        }
    }

    /// Nothing outstanding and nothing queued.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none() && self.queue.is_empty()
    }
}

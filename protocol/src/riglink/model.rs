//! The messages of the rig link: requests (client → rig), replies and events (rig → client).

use std::fmt;

/// A keypad key.
///
/// ```
/// use protocol::riglink::KeyName;
/// assert_eq!("enter".parse::<KeyName>(), Ok(KeyName::Enter));
/// assert_eq!(KeyName::DoubleZero.as_str(), "00");
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum KeyName {
    Digit(u8),
    DoubleZero,
    Enter,
    Cancel,
    Clear,
    Backspace,
    Menu,
    F1,
    F2,
    F3,
    F4,
    Up,
    Down,
}

impl KeyName {
    pub const ALL: [KeyName; 22] = [
        KeyName::Digit(0),
        KeyName::Digit(1),
        KeyName::Digit(2),
        KeyName::Digit(3),
        KeyName::Digit(4),
        KeyName::Digit(5),
        KeyName::Digit(6),
        KeyName::Digit(7),
        KeyName::Digit(8),
        KeyName::Digit(9),
        KeyName::DoubleZero,
        KeyName::Enter,
        KeyName::Cancel,
        KeyName::Clear,
        KeyName::Backspace,
        KeyName::Menu,
        KeyName::F1,
        KeyName::F2,
        KeyName::F3,
        KeyName::F4,
        KeyName::Up,
        KeyName::Down,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Digit(d) => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
                .get(d as usize)
                .copied()
                .unwrap_or("0"),
            KeyName::DoubleZero => "00",
            KeyName::Enter => "ENTER",
            KeyName::Cancel => "CANCEL",
            KeyName::Clear => "CLEAR",
            KeyName::Backspace => "BACKSPACE",
            KeyName::Menu => "MENU",
            KeyName::F1 => "F1",
            KeyName::F2 => "F2",
            KeyName::F3 => "F3",
            KeyName::F4 => "F4",
            KeyName::Up => "UP",
            KeyName::Down => "DOWN",
        }
    }
}

impl std::str::FromStr for KeyName {
    type Err = ();
    /// Case-insensitive.
    fn from_str(s: &str) -> Result<KeyName, ()> {
        let u = s.to_ascii_uppercase();
        Ok(match u.as_str() {
            "00" => KeyName::DoubleZero,
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
            d => match d.as_bytes() {
                [b] if b.is_ascii_digit() => KeyName::Digit(b - b'0'),
                _ => return Err(()),
            },
        })
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card fixture's name as it travels on the line: `[A-Za-z0-9_.-]{1,64}`, the same rule as
/// `fixtures/cards/<name>.yaml`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CardName(String);

impl CardName {
    pub const MAX_LEN: usize = 64;
    pub fn new(s: &str) -> Option<CardName> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        ok.then(|| CardName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happens to a card at the reader.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CardAction {
    /// Through the stripe reader, one pass.
    Swipe(CardName),
    /// Into the chip slot; stays until [`CardAction::Remove`].
    Insert(CardName),
    /// Presented to the contactless field once, held until the rig's read completes.
    Tap(CardName),
    /// Out of the chip slot.
    Remove,
}

/// A reader or printer fault the rig can switch on and off.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum FaultKind {
    PaperOut,
    CoverOpen,
    /// The chip of whichever card is inserted does not answer.
    ChipMute,
    /// Swipes read with a wrong LRC.
    BadSwipe,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::PaperOut,
        FaultKind::CoverOpen,
        FaultKind::ChipMute,
        FaultKind::BadSwipe,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::PaperOut => "PAPER_OUT",
            FaultKind::CoverOpen => "COVER_OPEN",
            FaultKind::ChipMute => "CHIP_MUTE",
            FaultKind::BadSwipe => "BAD_SWIPE",
        }
    }
    pub fn parse(s: &str) -> Option<FaultKind> {
        let u = s.to_ascii_uppercase();
        FaultKind::ALL.into_iter().find(|f| f.as_str() == u)
    }
}

/// Which part of the terminal's output a `GET` reads.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum GetWhat {
    Display,
    /// Printer bytes from this offset (bytes since power-on).
    Printer {
        from: u32,
    },
    Leds,
    Beeper,
    Power,
    State,
}

/// Session mode: `Human` also accepts unframed requests (no seq, no checksum).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Mode {
    Machine,
    Human,
}

/// A request from the client (harness, person at a terminal) to the rig.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    /// `HELLO <version> <client-name>`: handshake; also clears duplicate detection.
    Hello {
        version: u16,
        client: String,
    },
    Ping,
    Mode(Mode),
    Key(KeyName),
    /// `KEYS <gap_ms> <key>…`: press the keys in order, `gap_ms` between a release and the next
    /// press.
    Keys {
        gap_ms: u16,
        keys: Vec<KeyName>,
    },
    Card(CardAction),
    Fault {
        kind: FaultKind,
        on: bool,
    },
    Power(bool),
    Get(GetWhat),
}

/// One contactless status LED.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum LedState {
    Off,
    On,
    Blink,
}

impl LedState {
    pub fn as_str(self) -> &'static str {
        match self {
            LedState::Off => "OFF",
            LedState::On => "ON",
            LedState::Blink => "BLINK",
        }
    }
    pub fn parse(s: &str) -> Option<LedState> {
        match s.to_ascii_uppercase().as_str() {
            "OFF" => Some(LedState::Off),
            "ON" => Some(LedState::On),
            "BLINK" => Some(LedState::Blink),
            _ => None,
        }
    }
}

/// A beeper tone.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Tone {
    Success,
    Alert,
    Click,
}

impl Tone {
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Success => "SUCCESS",
            Tone::Alert => "ALERT",
            Tone::Click => "CLICK",
        }
    }
    pub fn parse(s: &str) -> Option<Tone> {
        match s.to_ascii_uppercase().as_str() {
            "SUCCESS" => Some(Tone::Success),
            "ALERT" => Some(Tone::Alert),
            "CLICK" => Some(Tone::Click),
            _ => None,
        }
    }
}

/// What a rig can do, announced in its HELLO reply.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Capability {
    Keys,
    Card,
    Fault,
    Power,
    Display,
    Printer,
    Leds,
    Beeper,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::Keys,
        Capability::Card,
        Capability::Fault,
        Capability::Power,
        Capability::Display,
        Capability::Printer,
        Capability::Leds,
        Capability::Beeper,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Keys => "KEYS",
            Capability::Card => "CARD",
            Capability::Fault => "FAULT",
            Capability::Power => "POWER",
            Capability::Display => "DISPLAY",
            Capability::Printer => "PRINTER",
            Capability::Leds => "LEDS",
            Capability::Beeper => "BEEPER",
        }
    }
    pub fn parse(s: &str) -> Option<Capability> {
        let u = s.to_ascii_uppercase();
        Capability::ALL.into_iter().find(|c| c.as_str() == u)
    }
}

/// A snapshot of the rig for resynchronisation (`GET STATE`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RigState {
    /// Sequence number of the last event sent.
    pub event_seq: u16,
    pub power: bool,
    /// The card in the chip slot.
    pub card: Option<CardName>,
    /// Faults switched on, sorted.
    pub faults: Vec<FaultKind>,
    /// Printer bytes since power-on.
    pub printed: u32,
    /// Beeps since power-on.
    pub beeps: u32,
}

/// Data the rig reports, either pushed as an event (`!17 DISPLAY …`) or as the payload of an
/// ACK to a `GET` (`ACK 5 DISPLAY …`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Report {
    /// Reply to HELLO: `HELLO <version> <rig-name> <cap,cap,…>`.
    Hello {
        version: u16,
        name: String,
        caps: Vec<Capability>,
    },
    /// The rig (re)started; sent as event 0.
    Boot {
        version: u16,
        name: String,
    },
    /// The whole display, one string per line, top to bottom.
    Display {
        lines: Vec<String>,
    },
    /// Printer output: `bytes` start at `offset` (bytes since power-on). Raw ESC/POS.
    Printer {
        offset: u32,
        bytes: Vec<u8>,
    },
    Leds([LedState; 4]),
    /// A beep happened; `count` counts beeps since power-on, this one included.
    Beep {
        tone: Tone,
        count: u32,
    },
    /// Reply to `GET BEEPER`: the last tone (if any) and the count.
    Beeper {
        last: Option<Tone>,
        count: u32,
    },
    Power(bool),
    State(RigState),
}

/// Error codes of `ERR` replies.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ErrCode {
    /// The line could not be parsed (framing, quoting, non-ASCII).
    BadLine,
    Checksum,
    TooLong,
    /// An unframed line while the session is in MACHINE mode.
    NotFramed,
    /// Unknown verb.
    Unknown,
    /// A verb's arguments are wrong.
    BadArg,
    /// No card fixture of that name.
    NoCard,
    /// Not possible now (power off, no card inserted, a card already inserted …).
    State,
    /// The rig cannot do this (missing capability).
    Unsupported,
    /// Printer bytes before that offset are no longer held.
    Gone,
    /// Protocol version not supported.
    Version,
    /// The rig is busy with an earlier request.
    Busy,
    /// The rig failed.
    Internal,
    /// A code this implementation does not know (from a newer peer).
    Other(String),
}

impl ErrCode {
    pub fn as_str(&self) -> &str {
        match self {
            ErrCode::BadLine => "BADLINE",
            ErrCode::Checksum => "CHECKSUM",
            ErrCode::TooLong => "TOOLONG",
            ErrCode::NotFramed => "NOTFRAMED",
            ErrCode::Unknown => "UNKNOWN",
            ErrCode::BadArg => "BADARG",
            ErrCode::NoCard => "NOCARD",
            ErrCode::State => "STATE",
            ErrCode::Unsupported => "UNSUPPORTED",
            ErrCode::Gone => "GONE",
            ErrCode::Version => "VERSION",
            ErrCode::Busy => "BUSY",
            ErrCode::Internal => "INTERNAL",
            ErrCode::Other(s) => s,
        }
    }
    /// Any word is accepted; unknown ones become [`ErrCode::Other`] (upper-cased).
    pub fn parse(s: &str) -> ErrCode {
        match s.to_ascii_uppercase().as_str() {
            "BADLINE" => ErrCode::BadLine,
            "CHECKSUM" => ErrCode::Checksum,
            "TOOLONG" => ErrCode::TooLong,
            "NOTFRAMED" => ErrCode::NotFramed,
            "UNKNOWN" => ErrCode::Unknown,
            "BADARG" => ErrCode::BadArg,
            "NOCARD" => ErrCode::NoCard,
            "STATE" => ErrCode::State,
            "UNSUPPORTED" => ErrCode::Unsupported,
            "GONE" => ErrCode::Gone,
            "VERSION" => ErrCode::Version,
            "BUSY" => ErrCode::Busy,
            "INTERNAL" => ErrCode::Internal,
            other => ErrCode::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the protocol.
///
/// `seq: None` is written `-`: an unframed (human) request, or a reply to one, or an error
/// about a line whose sequence number could not be trusted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Line {
    /// `@<seq> VERB args *CC`, or unframed `verb args` (seq `None`).
    Request { seq: Option<u16>, request: Request },
    /// `ACK <seq> [report] *CC`.
    Ack {
        seq: Option<u16>,
        report: Option<Report>,
    },
    /// `ERR <seq> <code> "<text>" *CC`.
    Err {
        seq: Option<u16>,
        code: ErrCode,
        text: String,
    },
    /// `!<seq> REPORT args *CC`, pushed by the rig, not acknowledged.
    Event { seq: u16, report: Report },
}

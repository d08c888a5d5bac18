//! The scenario file format, as serde reads it. `scenarios/README.md` is the user's guide;
//! this module is the schema. Every struct rejects unknown keys, so a typo is an error at its
//! line and column, never a silently ignored step.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::ordered::OrderedMap;

/// One scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// `refund/<family>/<name>`, unique in a suite.
    pub id: Spanned<String>,
    pub name: String,
    /// One line: what passing this scenario proves.
    pub proves: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Rule IDs of DESIGN.md §2 this scenario checks.
    #[serde(default)]
    pub covers: Vec<Spanned<String>>,
    /// Capabilities the rig must provide; otherwise the scenario is "not applicable".
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    /// Terminal profile, relative to the suite root (the folder holding `fixtures/`).
    pub terminal: Spanned<String>,
    #[serde(default)]
    pub fixtures: Fixtures,
    #[serde(default)]
    pub acquirer: AcquirerSetup,
    /// The terminal's clock at the start (RFC 3339). Default: 2026-11-26T10:00:00 in the
    /// profile's zone.
    #[serde(default)]
    pub clock: Option<Spanned<String>>,
    /// Start signed on (working keys loaded), as a terminal would be mid-day, or (`false`) never
    /// signed on. Either is a prepared state (`preload-journal`); without the key a fresh
    /// emulator starts not signed on and a real terminal as its last run left it.
    #[serde(default)]
    pub signed_on: Option<bool>,
    /// Variables usable as `${name}` in any string of the steps.
    #[serde(default)]
    pub vars: OrderedMap<String>,
    /// A parameter matrix: the scenario runs once per entry, with that entry's variables
    /// overriding `vars`. Snapshot names carry the entry's name (`stem@JPY.snap`).
    #[serde(default)]
    pub matrix: OrderedMap<OrderedMap<String>>,
    /// Show link-layer events (ZVT ACK/NAK, repeats) in the transcript.
    #[serde(default)]
    pub link_events: bool,
    pub steps: Vec<Spanned<Step>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// Folder of card fixtures; default `fixtures/cards`.
    #[serde(default)]
    pub cards: Option<Spanned<String>>,
    /// Original journal preloaded into terminal and acquirer.
    #[serde(default)]
    pub journal: Option<Spanned<String>>,
    /// Test keys; default `fixtures/keys/test-keys.yaml`.
    #[serde(default)]
    pub keys: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquirerSetup {
    /// Fee schedule; default: no fee.
    #[serde(default)]
    pub fees: Option<Spanned<String>>,
}

/// One step. Each is a single-key mapping: `- keys: [MENU, "3"]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Press keys: names (`ENTER`, `MENU`, `F1`) or digit strings typed key by key.
    Keys(Keys),
    /// Present or remove a card: `{swipe: name}`, `{insert: name}`, `{tap: name}`, `remove`.
    Card(CardAction),
    /// Inject or clear a device fault: `{paper_out: true}`.
    Fault(Faults),
    /// Cut, restore or cycle power.
    Power(PowerAction),
    /// Send a ZVT command as the ECR. Returns once the terminal accepted or refused it.
    Ecr(EcrCommand),
    /// How the ECR answers the terminal's next messages of a kind (faults).
    EcrReply(EcrReply),
    /// Faults on the ECR line itself.
    EcrLine(EcrLine),
    /// Script the acquirer's answer to the next matching request, wait for it, check it.
    Host(HostStep),
    /// Wait until something is true (or for time to pass), with a timeout.
    Wait(Expectations),
    /// Check what the terminal shows, printed, sent, received.
    Expect(Expectations),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Keys {
    Plain(Vec<String>),
    Paced {
        press: Vec<String>,
        /// Time between two key presses.
        pace_ms: u64,
    },
}

impl Keys {
    pub fn names(&self) -> &[String] {
        match self {
            Keys::Plain(v) => v,
            Keys::Paced { press, .. } => press,
        }
    }
    pub fn pace_ms(&self) -> u64 {
        match self {
            Keys::Plain(_) => 0,
            Keys::Paced { pace_ms, .. } => *pace_ms,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CardAction {
    Swipe(String),
    Insert(String),
    Tap(String),
    Remove,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub paper_out: Option<bool>,
    /// The paper runs out after this many more receipts (1: between the merchant and the
    /// customer copy). `paper_out: false` puts paper back.
    #[serde(default)]
    pub paper_out_after: Option<u32>,
    #[serde(default)]
    pub cover_open: Option<bool>,
    /// The chip of the next inserted card does not answer.
    #[serde(default)]
    pub chip_mute: Option<bool>,
    /// The next swipe reads garbage.
    #[serde(default)]
    pub bad_swipe: Option<bool>,
    /// The host is unreachable: connections are refused (nothing is sent).
    #[serde(default)]
    pub host_down: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    Off,
    On,
    Cycle,
    /// Arm a power cut at a failpoint of the next transaction: `{cut_at: after-request-sent}`.
    /// The terminal stays off until a `power: on` step.
    CutAt(Failpoint),
}

/// The three points of a transaction where a power cut tells most (DESIGN.md R-REV).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Failpoint {
    /// The reversal record (or advice) is committed; the request has not left.
    AfterReversalRecord,
    /// The request has left; no reply yet.
    AfterRequestSent,
    /// The reply arrived; what it decided is not committed yet.
    AfterReplyReceived,
}

impl Failpoint {
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::AfterReversalRecord => "after-reversal-record",
            Failpoint::AfterRequestSent => "after-request-sent",
            Failpoint::AfterReplyReceived => "after-reply-received",
        }
    }
}

/// A ZVT command from the ECR.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EcrCommand {
    Registration(Registration),
    Authorization(Payment),
    Refund(Refund),
    Reversal(Reversal),
    EndOfDay(PasswordOnly),
    StatusEnquiry(PasswordOnly),
    RepeatReceipt(PasswordOnly),
    Initialisation(PasswordOnly),
    Diagnosis(Empty),
    LogOff(Empty),
    /// 06 B0: abort the running command.
    Abort(Empty),
    /// Any APDU as hex, sent as is (malformed on purpose, say).
    Raw(String),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordOnly {
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    #[serde(default)]
    pub password: Option<String>,
    /// Config byte as two hex digits (`"BA"`); default BA: ECR prints, wants 04 FF.
    #[serde(default)]
    pub config: Option<String>,
    /// Currency the ECR works in (ISO 4217 alpha).
    #[serde(default)]
    pub currency: Option<String>,
    /// Ask the terminal to print via 06 D3 (TLV 26 lists it).
    #[serde(default)]
    pub print_blocks: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub amount: super::AmountValue,
    #[serde(default)]
    pub currency: Option<String>,
    /// The ECR's reference (TLV 1F1F).
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    pub amount: super::AmountValue,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The original, in posrig's private TLV; absent means none is named.
    #[serde(default)]
    pub original: Option<OriginalRef>,
    /// The ECR's reference for duplicate detection (TLV 1F1F).
    #[serde(default)]
    pub reference: Option<String>,
    /// Manual card entry (BMP 22 + 0E).
    #[serde(default)]
    pub card: Option<ManualCard>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginalRef {
    #[serde(default)]
    pub rrn: Option<String>,
    /// MMDD.
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub stan: Option<String>,
    #[serde(default)]
    pub batch: Option<String>,
    #[serde(default)]
    pub auth_code: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualCard {
    /// A card fixture name; its PAN and expiry are keyed in.
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reversal {
    /// Receipt number (BMP 87), 4 digits, or a captured variable.
    pub receipt: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub amount: Option<super::AmountValue>,
}

/// How the ECR answers the terminal's messages of one kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrReply {
    /// `status_information` (04 0F), `intermediate_status` (04 FF), `print_line` (06 D1),
    /// `print_block` (06 D3), `completion` (06 0F), `abort` (06 1E).
    pub to: String,
    /// `ack` (80 00 00), `"84 9C"` (any negative code as hex), or `silent`.
    pub answer: String,
    /// How many messages this applies to; default 1. `0` means every one.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// Faults on the ECR line (serial link or TCP connection).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrLine {
    /// Bytes (hex) written onto the line as they are: noise, a broken frame.
    #[serde(default)]
    pub inject: Option<String>,
    /// Do not send the link-level ACK for the next N frames (serial).
    #[serde(default)]
    pub drop_acks: Option<u32>,
    /// Flip a bit in the next N frames the ECR sends (bad CRC on serial).
    #[serde(default)]
    pub corrupt_frames: Option<u32>,
    /// Delay the next ACK by this long.
    #[serde(default)]
    pub delay_ack_ms: Option<u64>,
    /// Close the ECR connection (TCP) or drop the line; the next command reconnects.
    #[serde(default)]
    pub disconnect: bool,
}

/// A host directive plus its check.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostStep {
    /// The request this step is about is the next one whose fields match all of these (the MTI
    /// at least), checked in full against `expect`.
    #[serde(default, rename = "match")]
    pub select: OrderedMap<super::MatcherValue>,
    /// Assertions on the request: `mti`, field numbers (`4`, `60.1`), matchers; `reply.<field>`
    /// asserts on the host's reply instead (`reply.57.3`: the fee it returned).
    #[serde(default)]
    pub expect: OrderedMap<super::MatcherValue>,
    /// Field values to set in the reply (`39: "05"` declines).
    #[serde(default)]
    pub reply: OrderedMap<String>,
    /// A delivery fault: `no_reply`, `close`, `reply_twice`, `wrong_stan`, `wrong_mti`,
    /// `wrong_mac`, `garbled`, `truncated`, `wrong_length`, `no_tpdu_swap`.
    #[serde(default)]
    pub fault: Option<String>,
    /// Reply this long after the request.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Variables from the request (`request.11`) or the reply (`reply.37`).
    #[serde(default)]
    pub capture: OrderedMap<String>,
    /// How long to wait for the request; default 10 s (virtual on emulated rigs).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// What to check (or, in a `wait`, wait for). Each part is optional; all given must hold.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Check only on rigs with these capabilities (and those the checks themselves use);
    /// elsewhere the step is skipped with a note. `[posrig-terminal]` marks what only posrig's
    /// own terminal prints (fee and NET lines, rule IDs), so the scenario stays runnable on a
    /// real terminal.
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    /// `wait` only: let this much time pass (virtual on emulated rigs), so timeouts fire.
    #[serde(default)]
    pub time_ms: Option<u64>,
    /// How long to wait for the rest to hold. `expect` waits 5 s by default, `wait` 30 s.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The display's text (lines joined by newlines).
    #[serde(default)]
    pub display: Option<super::MatcherValue>,
    /// Everything printed in this scenario so far, rendered as text.
    #[serde(default)]
    pub printer: Option<super::MatcherValue>,
    /// What the ECR received: `result` (BMP 27 of the last 04 0F or the 06 1E code),
    /// `completed`, `aborted`, `refused` (the xx of an `84 xx` to the command), BMP numbers of
    /// the last 04 0F (`"04"`, `"87"`), `tlv.1F16` / `tlv.1F17`, `text` (prints).
    #[serde(default)]
    pub ecr: OrderedMap<super::MatcherValue>,
    /// What the host received: `count` of requests, or `last.<field>`.
    #[serde(default)]
    pub host: OrderedMap<super::MatcherValue>,
    /// The four contactless LEDs: `[on, blink, off, off]`.
    #[serde(default)]
    pub leds: Option<Vec<String>>,
    #[serde(default)]
    pub beeper: Option<String>,
    /// Once everything above holds: variables from what was checked, by the same names
    /// (`ecr.87`: the receipt number of the last 04 0F; `host.last.37`; `display`).
    #[serde(default)]
    pub capture: OrderedMap<String>,
}

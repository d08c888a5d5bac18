//! What the runner has seen of the terminal so far, for expectations and waits. Every world
//! (emulated, process, real) fills the same structure.

use protocol::riglink::{LedState, Tone};
use protocol::zvt::command::StatusInformation;

/// The ECR's view.
#[derive(Clone, Debug, Default)]
pub struct EcrObserved {
    /// The last command was taken (80 00) / refused (84 xx) / never answered.
    pub accepted: Option<bool>,
    pub refused: Option<u8>,
    pub no_answer: bool,
    /// BMP 27 of the last 04 0F.
    pub last_status: Option<Box<StatusInformation>>,
    /// The last 06 0F arrived (the command ended well).
    pub completed: bool,
    /// The code of the last 06 1E.
    pub aborted: Option<u8>,
    /// TLV 1F16 / 1F17 of the last abort or status.
    pub extended_code: Option<String>,
    pub extended_text: Option<String>,
    /// The last 04 FF status.
    pub intermediate: Option<u8>,
    /// Messages from the PT so far.
    pub messages: u32,
    /// Text the ECR was asked to print (06 D1 / 06 D3), line by line.
    pub text: String,
    /// Receipts the ECR was asked to print so far: a 06 D1 line with the last-line attribute
    /// (0x80) ends one, a 06 D3 text block is one.
    pub receipts: u32,
    /// Software version from the last 05 01 completion.
    pub sw_version: Option<String>,
}

impl EcrObserved {
    /// A new command: forget the previous one's ending.
    pub fn begin_command(&mut self) {
        self.accepted = None;
        self.refused = None;
        self.no_answer = false;
        self.completed = false;
        self.aborted = None;
        self.extended_code = None;
        self.extended_text = None;
    }
    /// The result of the command: BMP 27 of its 04 0F, or the code of its 06 1E.
    pub fn result(&self) -> Option<u8> {
        self.aborted
            .or_else(|| self.last_status.as_ref().and_then(|s| s.result))
    }
    pub fn ended(&self) -> bool {
        self.completed || self.aborted.is_some() || self.refused.is_some() || self.no_answer
    }
}

#[derive(Clone, Debug)]
pub struct Observed {
    pub powered: bool,
    pub display: Vec<String>,
    /// Every receipt printed so far, rendered as text (not normalised).
    pub printer_text: String,
    pub receipts: u32,
    pub leds: [LedState; 4],
    pub beeps: Vec<Tone>,
    pub ecr: EcrObserved,
}

impl Default for Observed {
    fn default() -> Self {
        Observed {
            powered: false,
            display: Vec::new(),
            printer_text: String::new(),
            receipts: 0,
            leds: [LedState::Off; 4],
            beeps: Vec::new(),
            ecr: EcrObserved::default(),
        }
    }
}

impl Observed {
    pub fn display_text(&self) -> String {
        self.display
            .iter()
            .map(|l| l.trim_end())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

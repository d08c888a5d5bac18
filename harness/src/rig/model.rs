//! The rig file format.
//!
//! ```yaml
//! name: lab-desk5000
//! kind: terminal                 # emulated | emulator-process | terminal
//! tags: [lab1, zvt]
//! profile: fixtures/terminals/zvt-en-eur.yaml   # the terminal's own profile
//! ecr:
//!   transport: serial            # serial | tcp
//!   device: /dev/ttyUSB0
//!   baud: 9600
//!   data_bits: 8
//!   parity: none                 # none | even | odd
//!   stop_bits: 2
//!   flow_control: none           # none | hardware | software
//!   link: zvt-serial             # zvt-serial (DLE/STX framing) | zvt-tcp (raw APDUs)
//! signals: {transport: tcp, address: "127.0.0.1:20010"}   # absent: ask the operator
//! power: {off: "pdu off 3", on: "pdu on 3"}                # absent: no power control
//! acquirer: {listen: "127.0.0.1:5000"}                     # where the terminal finds the host
//! capabilities: [ecr, ecr-serial, display, printer]
//! ```
//!
//! The transport (a device path, raw TCP) is kept apart from the ZVT link mode: a serial
//! line through a ser2net TCP bridge is `transport: tcp` with `link: zvt-serial`.

use std::path::{Path, PathBuf};

use protocol::fixture::yaml::{self, YamlError};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::rules;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RigKind {
    /// The emulator and the acquirer stepped in-process on a virtual clock.
    Emulated,
    /// `posrig emulate` as a child process, over TCP or a serial line.
    EmulatorProcess,
    /// A real terminal.
    Terminal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Serial,
    Tcp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    /// DLE STX … DLE ETX CRC framing with ACK/NAK.
    ZvtSerial,
    /// Raw APDUs (ZVT over TCP).
    ZvtTcp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FlowControl {
    #[default]
    None,
    Hardware,
    Software,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrPort {
    pub transport: Transport,
    /// Serial device path; `pty` on emulator-process rigs makes a pseudo-terminal pair.
    #[serde(default)]
    pub device: Option<String>,
    /// TCP address (`host:port`); on emulator-process rigs the runner picks a free port.
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    #[serde(default)]
    pub parity: Parity,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    #[serde(default)]
    pub flow_control: FlowControl,
    /// Default: zvt-serial on a serial transport, zvt-tcp on TCP.
    #[serde(default)]
    pub link: Option<LinkMode>,
}

fn default_baud() -> u32 {
    9600
}
fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> u8 {
    2
}

impl EcrPort {
    pub fn link_mode(&self) -> LinkMode {
        self.link.unwrap_or(match self.transport {
            Transport::Serial => LinkMode::ZvtSerial,
            Transport::Tcp => LinkMode::ZvtTcp,
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsPort {
    pub transport: Transport,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default = "default_signals_baud")]
    pub baud: u32,
}

fn default_signals_baud() -> u32 {
    115_200
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerControl {
    /// Shell command that cuts power.
    pub off: String,
    /// Shell command that restores it.
    pub on: String,
    /// How long the terminal may take to answer again after `on`.
    #[serde(default = "default_boot_timeout_s")]
    pub boot_timeout_s: u64,
}

fn default_boot_timeout_s() -> u64 {
    60
}

fn default_operator_timeout_s() -> u64 {
    120
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AcquirerPlacement {
    /// Where the acquirer simulator listens for the terminal. Loopback unless a lab's real
    /// terminal must reach it (then posrig warns).
    #[serde(default)]
    pub listen: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RigFile {
    pub name: String,
    pub kind: RigKind,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// A real terminal's profile; on emulated rigs each scenario brings its own.
    #[serde(default)]
    pub profile: Option<Spanned<String>>,
    #[serde(default)]
    pub ecr: Option<EcrPort>,
    #[serde(default)]
    pub signals: Option<SignalsPort>,
    #[serde(default)]
    pub power: Option<PowerControl>,
    #[serde(default)]
    pub acquirer: AcquirerPlacement,
    /// emulator-process: the emulator's `--time-scale`. terminal: how much faster than real
    /// time the terminal's clock runs — 1 for every real terminal; a `posrig emulate
    /// --time-scale N` on the bench runs N× (host timeouts in seconds, not minutes).
    #[serde(default)]
    pub time_scale: Option<f64>,
    /// Declared capabilities (real terminals); emulated rigs derive theirs.
    #[serde(default)]
    pub capabilities: Vec<Spanned<String>>,
    /// Snapshot suffix; real terminals default to their name, emulators share snapshots.
    /// `""` shares the emulator's snapshots (a `kind: terminal` rig pointed at `posrig emulate`).
    #[serde(default)]
    pub snapshot_suffix: Option<String>,
    /// A step is over once the terminal has been quiet this long (wall time); default one
    /// second of the terminal's time. A fast terminal (`posrig emulate`) can use less.
    #[serde(default)]
    pub quiet_ms: Option<u64>,
    /// Attended mode: how long the operator has to do what the console asks.
    #[serde(default = "default_operator_timeout_s")]
    pub operator_timeout_s: u64,
}

/// A rig file, validated, with the capabilities it provides.
#[derive(Clone, Debug)]
pub struct LoadedRig {
    pub path: Option<PathBuf>,
    pub file: RigFile,
    pub capabilities: Vec<String>,
    /// Nobody is at the bench: what would need the operator is not applicable.
    pub unattended: bool,
}

impl LoadedRig {
    /// The built-in default: the emulated rig.
    pub fn emulated() -> LoadedRig {
        let file = RigFile {
            name: "emulated".into(),
            kind: RigKind::Emulated,
            description: None,
            tags: vec![],
            profile: None,
            ecr: None,
            signals: None,
            power: None,
            acquirer: AcquirerPlacement::default(),
            time_scale: None,
            capabilities: vec![],
            snapshot_suffix: None,
            quiet_ms: None,
            operator_timeout_s: default_operator_timeout_s(),
        };
        let capabilities = derive_capabilities(&file, false);
        LoadedRig {
            path: None,
            file,
            capabilities,
            unattended: false,
        }
    }

    /// Nobody at the bench: drops what only the operator could do.
    pub fn unattended(mut self) -> LoadedRig {
        self.unattended = true;
        self.capabilities = derive_capabilities(&self.file, true);
        self
    }

    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn provides(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }

    /// `None` for rigs that share the emulator's snapshots.
    pub fn snapshot_suffix(&self) -> Option<String> {
        match self.file.kind {
            RigKind::Terminal => Some(
                self.file
                    .snapshot_suffix
                    .clone()
                    .unwrap_or_else(|| self.file.name.clone()),
            )
            .filter(|s| !s.is_empty()),
            _ => self.file.snapshot_suffix.clone().filter(|s| !s.is_empty()),
        }
    }
}

/// Capabilities no real terminal offers: they reach inside the emulator.
const EMULATOR_ONLY: &[&str] = &[
    "preload-journal",
    "set-clock",
    "virtual-time",
    "power-failpoints",
    "paper-roll",
    "posrig-terminal",
];

/// What a real terminal's rig can do: the ECR line it has, the acquirer (always the runner's),
/// what its controller does, or — attended — what the operator does by hand.
fn terminal_possible(f: &RigFile, unattended: bool) -> Vec<&'static str> {
    let mut c = vec!["ecr", "host-down"];
    if let Some(e) = &f.ecr {
        match (e.transport, e.link_mode()) {
            (_, LinkMode::ZvtSerial) => c.push("ecr-serial"),
            (Transport::Tcp, LinkMode::ZvtTcp) => c.push("ecr-tcp"),
            _ => {}
        }
    }
    if f.signals.is_some() {
        c.extend([
            "keypad",
            "reader",
            "reader-faults",
            "display",
            "printer",
            "printer-faults",
            "leds",
            "beeper",
        ]);
    } else if !unattended {
        c.extend(["keypad", "reader"]);
    }
    if f.power.is_some() || !unattended {
        c.push("power");
    }
    c
}

fn derive_capabilities(f: &RigFile, unattended: bool) -> Vec<String> {
    let all = |except: &[&str]| -> Vec<String> {
        rules::CAPABILITIES
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !except.contains(c))
            .map(String::from)
            .collect()
    };
    match f.kind {
        RigKind::Emulated => all(&[]),
        RigKind::EmulatorProcess => {
            let link = f
                .ecr
                .as_ref()
                .map(EcrPort::link_mode)
                .unwrap_or(LinkMode::ZvtTcp);
            match link {
                LinkMode::ZvtSerial => {
                    all(&["virtual-time", "ecr-tcp", "power-failpoints", "paper-roll"])
                }
                LinkMode::ZvtTcp => all(&[
                    "virtual-time",
                    "ecr-serial",
                    "power-failpoints",
                    "paper-roll",
                ]),
            }
        }
        RigKind::Terminal => {
            let possible = terminal_possible(f, unattended);
            if f.capabilities.is_empty() {
                possible.into_iter().map(String::from).collect()
            } else {
                // The lab's list narrows what the rig could do (a terminal without LEDs).
                f.capabilities
                    .iter()
                    .map(|c| c.value.clone())
                    .filter(|c| possible.contains(&c.as_str()))
                    .collect()
            }
        }
    }
}

pub fn load_rig(path: &Path) -> Result<LoadedRig, YamlError> {
    let file_name = path.display().to_string();
    let src = std::fs::read_to_string(path)
        .map_err(|e| YamlError::at(&file_name, 0, 0, e.to_string()))?;
    let file: RigFile = yaml::from_str(&src, &file_name)?;
    let err = |line: u64, col: u64, msg: String| {
        crate::scenario::load::with_excerpt(YamlError::at(&file_name, line, col, msg), &src)
    };
    for c in &file.capabilities {
        if !rules::is_capability(&c.value) {
            return Err(err(
                c.referenced.line(),
                c.referenced.column(),
                format!("unknown capability {:?}", c.value),
            ));
        }
    }
    let key = |k: &str| protocol::fixture::terminal::locate_key(&src, k);
    match file.kind {
        RigKind::Terminal => {
            if file.profile.is_none() {
                let (l, c) = key("kind");
                return Err(err(
                    l,
                    c,
                    "a real terminal's rig names its profile (`profile:`)".into(),
                ));
            }
            let Some(ecr) = &file.ecr else {
                let (l, c) = key("kind");
                return Err(err(
                    l,
                    c,
                    "a real terminal's rig says how to reach its ECR port (`ecr:`)".into(),
                ));
            };
            for c in &file.capabilities {
                let v = c.value.as_str();
                let why = if EMULATOR_ONLY.contains(&v) {
                    Some("reaches inside the emulator; no real terminal offers it")
                } else if !terminal_possible(&file, false).contains(&v) {
                    Some("needs a rig controller (`signals:`) or another ECR line")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(err(
                        c.referenced.line(),
                        c.referenced.column(),
                        format!("capability {v:?} {why}"),
                    ));
                }
            }
            match ecr.transport {
                Transport::Serial if ecr.device.is_none() => {
                    let (l, c) = key("ecr");
                    return Err(err(l, c, "ecr.transport serial needs `device:`".into()));
                }
                Transport::Tcp if ecr.address.is_none() => {
                    let (l, c) = key("ecr");
                    return Err(err(l, c, "ecr.transport tcp needs `address:`".into()));
                }
                _ => {}
            }
        }
        RigKind::EmulatorProcess | RigKind::Emulated => {}
    }
    if let Some(s) = file.time_scale
        && !(s.is_finite() && s > 0.0 && s <= 1000.0)
    {
        let (l, c) = key("time_scale");
        return Err(err(l, c, format!("time_scale {s} must be in (0, 1000]")));
    }
    if let Some(ecr) = &file.ecr
        && (![5, 6, 7, 8].contains(&ecr.data_bits) || ![1, 2].contains(&ecr.stop_bits))
    {
        let (l, c) = key("ecr");
        return Err(err(l, c, "ecr: data_bits 5..8, stop_bits 1 or 2".into()));
    }
    let capabilities = derive_capabilities(&file, false);
    Ok(LoadedRig {
        path: Some(path.to_path_buf()),
        file,
        capabilities,
        unattended: false,
    })
}

//! The emulator as a child process (`posrig emulate`), reached over TCP or a serial line.
//! Built in a following change; until then such a rig ends each scenario with an error verdict.

use crate::rig::LoadedRig;
use crate::runner::{Failure, Finished};
use crate::scenario::load::{LoadedScenario, Variant};

pub fn run(
    _ls: &LoadedScenario,
    _v: &Variant,
    rig: &LoadedRig,
) -> Result<(Vec<Failure>, Finished), String> {
    Err(format!(
        "rig {}: {:?} rigs are not supported by this build yet",
        rig.name(),
        rig.file.kind
    ))
}

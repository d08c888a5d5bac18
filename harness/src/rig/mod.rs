//! Rigs: how the runner reaches a terminal and what that rig can do. A rig file is data
//! (`hil-rigs/*.yaml`); the transports and drivers that act on it are code.

pub mod cache;
pub mod ecr_side;
pub mod emulated;
pub mod model;
pub mod process;
pub mod terminal;

pub use model::{LoadedRig, RigKind, load_rig};

//! The terminal itself: a sans-IO state machine fed with events and `now`, returning outputs.

pub mod entry;
pub mod refusal;
pub mod review;

//! The journal in memory, for in-process emulated runs: the same ops, no disk. A "power cut"
//! on the emulated rig rebuilds the core from this store, so it behaves like SQLite after a
//! crash: committed ops survive, nothing else does.

use super::{JournalError, JournalOp, JournalState, JournalStore};

#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    state: JournalState,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn state(&self) -> &JournalState {
        &self.state
    }
}

impl JournalStore for MemoryStore {
    fn commit(&mut self, ops: &[JournalOp]) -> Result<(), JournalError> {
        for op in ops {
            self.state.apply(op);
        }
        Ok(())
    }
    fn load(&self) -> Result<JournalState, JournalError> {
        Ok(self.state.clone())
    }
}

//! Every shipped fixture file loads and validates.
use std::path::PathBuf;

use protocol::fixture::keys::TestKeys;
use protocol::fixture::terminal::TerminalProfile;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

#[test]
fn every_terminal_profile_loads() {
    let mut n = 0;
    for e in std::fs::read_dir(fixtures().join("terminals")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            TerminalProfile::from_path(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 5, "expected the five profiles of the suite, found {n}");
}

#[test]
fn test_keys_cover_every_terminal() {
    let keys = TestKeys::from_path(&fixtures().join("keys/test-keys.yaml")).unwrap();
    for e in std::fs::read_dir(fixtures().join("terminals")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let prof = TerminalProfile::from_path(&p).unwrap();
            assert!(
                keys.master_key(&prof.terminal_id).is_some(),
                "no master key for {}",
                prof.terminal_id
            );
        }
    }
}

//! Shipped rig files load; bad ones end in located errors.
use std::path::PathBuf;

use posrig::rig::{RigKind, load_rig};

fn rigs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hil-rigs")
}

#[test]
fn shipped_rigs_load_with_their_capabilities() {
    let e = load_rig(&rigs().join("emulated.yaml")).unwrap();
    assert_eq!(e.file.kind, RigKind::Emulated);
    assert!(e.provides("virtual-time") && e.provides("power"));
    let s = load_rig(&rigs().join("emulator-serial.yaml")).unwrap();
    assert!(s.provides("ecr-serial") && !s.provides("virtual-time") && !s.provides("ecr-tcp"));
    let t = load_rig(&rigs().join("emulator-tcp.yaml")).unwrap();
    assert!(t.provides("ecr-tcp") && !t.provides("ecr-serial"));
    for f in [
        "examples/zvt-terminal-serial.yaml",
        "examples/zvt-terminal-tcp.yaml",
    ] {
        let r = load_rig(&rigs().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(r.file.kind, RigKind::Terminal);
        assert_eq!(r.snapshot_suffix().as_deref(), Some(r.name()));
    }
}

#[test]
fn bad_rigs_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.yaml");
    std::fs::write(
        &p,
        "name: x\nkind: terminal\nprofile: p.yaml\necr: {transport: serial}\n",
    )
    .unwrap();
    let e = load_rig(&p).unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    std::fs::write(
        &p,
        "name: x\nkind: emulated\ncapabilities: [ecr, teleport]\n",
    )
    .unwrap();
    let e = load_rig(&p).unwrap_err();
    assert_eq!((e.line, e.column), (3, 21), "{e}");
    std::fs::write(&p, "name: x\nkind: robot\n").unwrap();
    let e = load_rig(&p).unwrap_err();
    assert_eq!(e.line, 2, "{e}");
}

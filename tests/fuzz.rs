//! Fuzzing with a fixed seed and a bounded budget, as part of `cargo test`:
//! the config-space decoder, the snapshot (archive) reader and the journal
//! loader get mutated and random inputs, and must never panic; what they
//! accept must hold together. Same seed, same cases, every run: a failure
//! reproduces. (P2PDOCTOR_FUZZ_CASES raises the budget for a longer run.)

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("P2PDOCTOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[0x5a; 32]),
    )
}

/// `seed` with bytes flipped, overwritten, cut or grown: mostly valid
/// structure with a few hostile spots, which reaches deeper than noise.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    (
        proptest::collection::vec((0..len, any::<u8>(), any::<bool>()), 0..24),
        prop_oneof![Just(None), (0..len + 64).prop_map(Some)],
    )
        .prop_map(move |(edits, cut)| {
            let mut v = seed.clone();
            for (at, byte, xor) in edits {
                if let Some(b) = v.get_mut(at) {
                    *b = if xor { *b ^ byte } else { byte };
                }
            }
            if let Some(n) = cut {
                v.resize(n, 0xff);
            }
            v
        })
}

fn lab_snapshot() -> Vec<u8> {
    std::fs::read(common::fixtures_dir().join("lab/01-switch.tar.gz")).unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The config spaces in the lab snapshot: real devices' bytes to mutate.
fn lab_configs() -> Vec<Vec<u8>> {
    let tar = gunzip(&lab_snapshot());
    let mut a = tar::Archive::new(&tar[..]);
    a.entries()
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_ok_and(|p| p.ends_with("config")))
        .map(|mut e| {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            v
        })
        .collect()
}

#[test]
fn config_decoder_never_panics() {
    let configs = lab_configs();
    assert!(configs.len() > 3);
    let strategy = prop_oneof![
        proptest::sample::select(configs).prop_flat_map(mutated),
        proptest::collection::vec(any::<u8>(), 0..4200),
    ];
    runner(3000)
        .run(&strategy, |config| {
            let d = p2pdoctor::pci::decode(&config);
            let _ = format!("{d:?}");
            Ok(())
        })
        .unwrap();
}

#[test]
fn archive_reader_never_panics_and_what_it_loads_scans() {
    let gz = lab_snapshot();
    let tar = gunzip(&gz);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap");
    let strategy = prop_oneof![
        3 => mutated(tar),
        2 => mutated(gz),
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
    ];
    runner(300)
        .run(&strategy, |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(root) = p2pdoctor::root::SystemRoot::open(&path) {
                let facts = p2pdoctor::scan::scan(
                    &root,
                    &p2pdoctor::scan::ScanOptions {
                        no_names: true,
                        ..Default::default()
                    },
                );
                let tree = p2pdoctor::topology::Tree::build(facts);
                let _ = p2pdoctor::diagnose::diagnose(&tree, &Default::default());
            }
            Ok(())
        })
        .unwrap();
}

/// A journal as `copy` writes it, for `len` bytes of `fill`.
fn journal_bytes(len: usize, fill: u8) -> Vec<u8> {
    let data = vec![fill; len];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let header = serde_json::json!({
        "device": "/nonexistent/disk", "identity": {"dev": 1, "ino": 2, "size": 1 << 20, "wwid": null},
        "offset": 4096, "length": len, "pid": 1, "started": 0, "fnv1a": h,
    });
    let mut j = b"P2PDOCTOR-JOURNAL 1\n".to_vec();
    j.extend(serde_json::to_vec(&header).unwrap());
    j.push(b'\n');
    j.extend(data);
    j
}

#[test]
fn journal_loader_never_panics_and_loads_only_whole_journals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.path().join("x.journal");
    let good = journal_bytes(4096, 0x5a);
    // The unmutated one loads: the harness tests something.
    write_private(&path, &good);
    assert!(p2pdoctor::confirm::journal::Journal::load(&path).is_ok());
    let strategy = prop_oneof![
        4 => mutated(good),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ];
    runner(1000)
        .run(&strategy, |bytes| {
            write_private(&path, &bytes);
            if let Ok(j) = p2pdoctor::confirm::journal::Journal::load(&path) {
                // Whatever it accepts is whole: the header's length is
                // what follows it.
                let at = bytes.len() as u64 - j.header.length;
                prop_assert!(bytes[at as usize - 1] == b'\n');
            }
            let recs = p2pdoctor::confirm::journal::recover(dir.path(), false);
            let restored = recs
                .iter()
                .any(|r| r.outcome == p2pdoctor::confirm::journal::RecoveryOutcome::Restored);
            prop_assert!(!restored);
            Ok(())
        })
        .unwrap();
}

fn write_private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

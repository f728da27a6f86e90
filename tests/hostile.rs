//! Hostile inputs, built at test time: trees, archives, journals, terminals
//! and concurrent runs that try to hang, exhaust, mislead or overwrite. Each
//! test asserts the outcome: refused or bounded, named, nothing written.
//!
//! Some need root (mknod, chown, loop devices); without it they say so and
//! pass.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use p2pdoctor::root::{Entry, SystemRoot};

fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

/// User and system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A bridge's config space: type 1 header, class 0x0604.
fn bridge_config() -> Vec<u8> {
    let mut c = vec![0u8; 64];
    c[0..4].copy_from_slice(&[0x86, 0x80, 0x34, 0x12]);
    c[0x0a] = 0x04;
    c[0x0b] = 0x06;
    c[0x0e] = 0x01;
    c
}

/// A chain of `n` bridges, each below the one before, as sysfs nests them:
/// sys/devices/pci0000:00/B0/B1/.../B(n-1), each with its link in
/// sys/bus/pci/devices. (Built in memory: no file system takes paths this
/// long.)
fn deep_chain(n: usize) -> BTreeMap<String, Entry> {
    let bdf = |i: usize| format!("{:04x}:{:02x}:00.0", i / 256, i % 256);
    let mut entries = BTreeMap::new();
    entries.insert(
        "proc/sys/kernel/hostname".to_string(),
        Entry::File(b"deep\n".to_vec()),
    );
    let mut path = String::from("devices/pci0000:00");
    let config = bridge_config();
    for i in 0..n {
        path.push('/');
        path.push_str(&bdf(i));
        entries.insert(format!("sys/{path}/config"), Entry::File(config.clone()));
        entries.insert(
            format!("sys/bus/pci/devices/{}", bdf(i)),
            Entry::Symlink(format!("../../../{path}")),
        );
    }
    entries
}

/// Deep hostile trees stay near-linear in the depth: resolving a path
/// steps once per component, never rehashing the path so far. A chain of
/// 3,000 bridges took 76 s; it is scanned, built into a tree and rendered
/// as JSON here in well under the bound (debug build, shared CI machine).
/// `P2PDOCTOR_DEEP_BRIDGES=10000 cargo test --release --test hostile deep`
/// measures the 10,000.
#[test]
fn deep_chain_of_bridges_is_fast() {
    let n: usize = std::env::var("P2PDOCTOR_DEEP_BRIDGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let entries = deep_chain(n);
    let cpu0 = cpu_time();
    let t = Instant::now();
    let root = SystemRoot::from_entries(Path::new("deep"), entries);
    let loaded = t.elapsed();
    let facts = p2pdoctor::scan::scan(&root, &p2pdoctor::scan::ScanOptions { no_names: true });
    assert_eq!(facts.devices.len(), n);
    let scanned = t.elapsed();
    let tree = p2pdoctor::topology::Tree::build(facts);
    let built = t.elapsed();
    let diagnosis = p2pdoctor::diagnose::diagnose(&tree, &Default::default());
    let diagnosed = t.elapsed();
    let mut out = Vec::new();
    use p2pdoctor::render::Render;
    p2pdoctor::render::json::JsonTopo
        .render(&tree, &Default::default(), &mut out)
        .unwrap();
    let total = t.elapsed();
    let cpu = cpu_time() - cpu0;
    drop(diagnosis);
    eprintln!(
        "{n} bridges: loaded {loaded:?}, scanned {scanned:?}, tree {built:?}, diagnosed {diagnosed:?}, rendered {total:?} (wall); {cpu:?} CPU (user+sys, all threads)"
    );
    let bound = if cfg!(debug_assertions) { 60 } else { 2 };
    assert!(
        total < Duration::from_secs(bound) * (n.max(3000) as u32) / 3000,
        "{n} bridges took {total:?}"
    );
}

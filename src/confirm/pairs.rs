//! `check --confirm`: for each pair an experiment can settle, the smallest
//! real transfer. [`confirm`] hands back one
//! [`PairResult`](crate::diagnose::PairResult) per pair and leaves the
//! diagnosis alone; `Diagnosis::settle` (diagnose/settle.rs) says what the
//! results mean for each finding.
//!
//! The client's controller is the DMA master: its NVMe namespace is read
//! into the provider's P2P memory (the client writes into the BAR). With
//! `--write` naming the namespace, the other direction too (the client
//! reads the BAR), journalled and restored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::buffer::Comparison;
use super::copy::{self, Outcome, Params, Shape, Via};
use super::engine::{EngineKind, errno_name};
use super::target::{Target, same_file};
use crate::diagnose::settle::{Compared, Direction, DirectionOutcome, IoPath};
use crate::diagnose::{Diagnosis, MapType, PairOutcome, PairResult};
use crate::pci::Bdf;
use crate::root::SystemRoot;

/// The experiment's result as check's JSON writes it (render/check_json.rs
/// names it here).
use crate::diagnose::PairConfirm;

/// How the experiments run.
#[derive(Debug, Clone)]
pub struct ConfirmOptions {
    /// Bytes per experiment and direction.
    pub size: u64,
    pub chunk: usize,
    pub qd: usize,
    pub engine: EngineKind,
    /// Block devices the write direction may use.
    pub write: Vec<PathBuf>,
    pub force: bool,
    pub journal_dir: PathBuf,
    pub progress: bool,
    /// The system root's directory on this machine (`/` on the live
    /// machine; tests point it at a fake one): the providers' `p2pmem/allocate`
    /// files are mapped and the block devices under `dev/` opened from it.
    /// Everything read from sysfs goes through the [`SystemRoot`] given to
    /// [`confirm`], which must be opened on the same directory.
    pub root_dir: PathBuf,
}

impl From<Outcome> for DirectionOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => DirectionOutcome::Ok,
            Outcome::Refused => DirectionOutcome::Refused,
            Outcome::Mismatch => DirectionOutcome::Mismatch,
            Outcome::Error => DirectionOutcome::Error,
            Outcome::Interrupted => DirectionOutcome::Interrupted,
        }
    }
}

impl From<Comparison> for Compared {
    fn from(c: Comparison) -> Self {
        Compared {
            bytes_compared: c.bytes_compared,
            bytes_differ: c.bytes_differ,
            first_mismatch: c.first_mismatch,
            untouched: c.untouched,
            stale_buffer: c.stale_buffer,
        }
    }
}

/// `nvme0n1` -> (subsystem instance 0, nsid 1); None for `nvme0c1n1`.
fn head_parts(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("nvme")?;
    let (s, n) = rest.split_once('n')?;
    Some((s.parse().ok()?, n.parse().ok()?))
}

/// `nvme0c1n1` -> (0, 1, 1).
fn path_parts(name: &str) -> Option<(u32, u32, u32)> {
    let rest = name.strip_prefix("nvme")?;
    let (s, rest) = rest.split_once('c')?;
    let (c, n) = rest.split_once('n')?;
    Some((s.parse().ok()?, c.parse().ok()?, n.parse().ok()?))
}

/// Every path of a namespace block device, with its completed I/O count
/// now. With native multipath (drivers/nvme/host/multipath.c) the
/// openable `nvmeXnY` is the subsystem's head and each controller has a
/// hidden per-path disk `nvmeXcCnY` under /sys/class/nvme/nvmeC/ (no /dev
/// node, and no per-path /dev/ng char device either: nvme_alloc_ns()
/// creates one only when the head is not multipath); without it `nvmeXnY`
/// sits under its only controller. Reads `<dir>/stat` fields 1 and 5,
/// through the system root.
pub fn namespace_paths(root: &SystemRoot, name: &str) -> Vec<IoPath> {
    let Some((subsys, nsid)) = head_parts(name) else {
        return Vec::new();
    };
    let class = "sys/class/nvme";
    let Ok(ctrls) = root.read_dir(class) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ctrl in ctrls {
        let dir = format!("{class}/{ctrl}");
        let pci = root
            .link_name(&format!("{dir}/device"))
            .and_then(|f| f.parse::<Bdf>().ok());
        let Ok(entries) = root.read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let ours = entry == name
                || path_parts(&entry).is_some_and(|(s, _, n)| s == subsys && n == nsid);
            if !ours {
                continue;
            }
            let ios = root
                .read_string(&format!("{dir}/{entry}/stat"))
                .ok()
                .map(|t| {
                    let f: Vec<u64> = t
                        .split_whitespace()
                        .map(|x| x.parse().unwrap_or(0))
                        .collect();
                    f.first().copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0)
                })
                .unwrap_or(0);
            out.push(IoPath {
                controller: ctrl.clone(),
                pci,
                path: entry,
                ios,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The paths whose count moved between two readings.
pub fn paths_used(before: &[IoPath], after: &[IoPath]) -> Vec<IoPath> {
    after
        .iter()
        .filter_map(|a| {
            let was = before
                .iter()
                .find(|b| b.path == a.path)
                .map(|b| b.ios)
                .unwrap_or(0);
            (a.ios > was).then(|| IoPath {
                ios: a.ios - was,
                ..a.clone()
            })
        })
        .collect()
}

/// Whether the experiment tested the pair it names: every path that
/// carried I/O belongs to the client's controller. None when unknown.
pub fn carried_by_client(carried: &[IoPath], client: Bdf) -> Option<bool> {
    if carried.is_empty() {
        return None;
    }
    Some(carried.iter().all(|p| p.pci == Some(client)))
}

/// The kernel's own log refuses this (client, provider) pair: the lines
/// of calc_map_type_and_dist() / upstream_bridge_distance_warn() name the
/// client as prefix and the provider in parentheses.
pub fn log_refuses_pair(log: &[String], provider: Bdf, client: Bdf) -> bool {
    let c = client.to_string();
    let p = format!("({provider})");
    log.iter().any(|l| {
        l.contains(&c) && l.contains(&p) && l.contains("cannot be used for peer-to-peer DMA")
    })
}

fn writable(path: &Path) -> bool {
    use rustix::fs::{Access, access};
    access(path, Access::READ_OK | Access::WRITE_OK).is_ok()
}

/// Runs one pair.
fn run_pair(
    provider: Bdf,
    client_devs: &[String],
    root: &SystemRoot,
    opts: &ConfirmOptions,
) -> PairConfirm {
    let p2pmem = format!("sys/bus/pci/devices/{provider}/p2pmem");
    if !root.exists(&format!("{p2pmem}/allocate")) {
        return PairConfirm::skipped(if root.exists(&p2pmem) {
            format!(
                "{provider} has p2pmem/ but no allocate file: this kernel cannot map P2P memory into user space (6.2 added it)"
            )
        } else {
            format!(
                "{provider} offers no P2P memory (no p2pmem/): a hypothetical provider cannot be tried"
            )
        });
    }
    // mapped, not read: opened on this machine below the root's directory
    let alloc = opts.root_dir.join(&p2pmem).join("allocate");
    if !writable(&alloc) {
        return PairConfirm::skipped(format!(
            "{} is not writable by this user: run as root to try the pair",
            alloc.display()
        ));
    }
    let Some(name) = client_devs.first() else {
        return PairConfirm::skipped(
            "the client has no block device to drive the DMA (experiments use an NVMe namespace of the client)",
        );
    };
    let dev = opts.root_dir.join("dev").join(name);
    let via = Via::P2p {
        path: alloc.clone(),
        bdf: Some(provider.to_string()),
    };
    let src = match Target::open(&dev, false, opts.force) {
        Ok(t) => t,
        Err(e) => {
            return PairConfirm::skipped(format!(
                "cannot open the client's {}: {e}",
                dev.display()
            ));
        }
    };
    let size = opts.size.min(src.size / 4096 * 4096);
    if size == 0 {
        return PairConfirm::skipped(format!("{} is empty", dev.display()));
    }
    let params = Params {
        chunk: opts.chunk.min(size as usize),
        qd: opts.qd,
        engine: opts.engine,
        size,
        duration: None,
        src_offset: 0,
        dst_offset: 0,
        repeat: 1,
        verify: true,
        baseline: true,
        progress: opts.progress,
    };
    let mut dirs = Vec::new();
    let mut log = Vec::new();
    let paths_before = namespace_paths(root, name);
    let read = copy::run(&Shape::Read { src: &src }, &via, &params, &opts.journal_dir);
    log.extend(read.kernel_log.iter().cloned());
    dirs.push(direction("read", &dev, &read));
    drop(src);
    if opts.write.iter().any(|w| same_file(w, &dev)) && !super::signal::interrupted() {
        match Target::open(&dev, true, opts.force) {
            Ok(dst) => {
                let w = copy::run(
                    &Shape::Write { dst: &dst },
                    &via,
                    &params,
                    &opts.journal_dir,
                );
                log.extend(w.kernel_log.iter().cloned());
                dirs.push(direction("write", &dev, &w));
            }
            Err(e) => dirs.push(Direction {
                direction: "write",
                block_device: dev.clone(),
                outcome: DirectionOutcome::Error,
                errno: None,
                errno_name: None,
                message: e.to_string(),
                bytes: 0,
                gbps: None,
                host_gbps: None,
                verify: None,
                restored: None,
            }),
        }
    }
    // the worst direction decides
    // (a direction that could not run says nothing about the pair: one
    // with a definite result outranks it)
    let rank = |o: DirectionOutcome| match o {
        DirectionOutcome::Mismatch => 4,
        DirectionOutcome::Refused => 3,
        DirectionOutcome::Ok => 2,
        DirectionOutcome::Error | DirectionOutcome::Interrupted => 1,
    };
    let worst = dirs.iter().max_by_key(|d| rank(d.outcome)).unwrap();
    let outcome = match worst.outcome {
        DirectionOutcome::Ok => PairOutcome::Ok,
        DirectionOutcome::Refused => PairOutcome::Refused,
        DirectionOutcome::Mismatch => PairOutcome::Mismatch,
        DirectionOutcome::Error | DirectionOutcome::Interrupted => PairOutcome::Error,
    };
    let reason = dirs
        .iter()
        .map(|d| format!("{}: {}", d.direction, d.message))
        .collect::<Vec<_>>()
        .join("; ");
    // The host-bounce baseline goes through the same namespace, so the
    // counts include it; which controller moved them is what matters.
    let carried_by = paths_used(&paths_before, &namespace_paths(root, name));
    PairConfirm {
        outcome,
        errno: worst.errno,
        errno_name: worst.errno.map(errno_name),
        throughput: dirs[0].gbps,
        host_throughput: dirs[0].host_gbps,
        reason,
        agrees: None,
        directions: dirs,
        log,
        namespace: Some(name.clone()),
        carried_by,
        settles_pair: true,
        unsettled: None,
    }
}

fn direction(which: &'static str, dev: &Path, r: &copy::CopyReport) -> Direction {
    Direction {
        direction: which,
        block_device: dev.to_path_buf(),
        outcome: r.outcome.into(),
        errno: r.errno,
        errno_name: r.errno_name,
        message: r.message.clone(),
        bytes: r.main.as_ref().map(|m| m.bytes).unwrap_or(0),
        gbps: r
            .main
            .as_ref()
            .filter(|m| m.failure.is_none())
            .map(|m| m.gbps),
        host_gbps: r
            .baseline
            .as_ref()
            .filter(|m| m.failure.is_none())
            .map(|m| m.gbps),
        verify: r.verify.map(Compared::from),
        restored: r.restore.as_ref().map(|x| x.restored),
    }
}

/// Runs the experiments for every pair, and hands back what each showed
/// (`Diagnosis::settle` takes them in). Reads sysfs through `root`.
pub fn confirm(d: &Diagnosis, root: &SystemRoot, opts: &ConfirmOptions) -> Vec<PairResult> {
    let blocks: BTreeMap<Bdf, Vec<String>> = d
        .devices
        .iter()
        .map(|dev| (dev.bdf, dev.block_devices.clone()))
        .collect();
    let total = d.pairs.len();
    let mut results = Vec::with_capacity(total);
    for (i, pair) in d.pairs.iter().enumerate() {
        let (provider, client, map_type) =
            (pair.provider(), pair.client(), pair.verdict().map_type);
        if super::signal::interrupted() {
            results.push(PairResult {
                provider,
                client,
                confirm: PairConfirm::skipped("interrupted"),
            });
            continue;
        }
        if opts.progress && total > 1 {
            use std::io::IsTerminal;
            if std::io::stderr().is_terminal() {
                eprint!(
                    "\rconfirming pair {}/{total}: {} → {}   ",
                    i + 1,
                    client,
                    provider
                );
            }
        }
        let devs = blocks.get(&client).cloned().unwrap_or_default();
        let mut c = run_pair(provider, &devs, root, opts);
        judge(&mut c, provider, client, map_type, root);
        results.push(PairResult {
            provider,
            client,
            confirm: c,
        });
    }
    if opts.progress && total > 1 {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprint!("\r{:70}\r", "");
        }
    }
    results
}

/// What to tell the user when `check --confirm` ran no transfer at all:
/// no pair was predicted, or every pair was skipped (the first reason is
/// given). None when at least one experiment ran.
pub fn nothing_confirmed(d: &Diagnosis) -> Option<String> {
    if d.pairs.is_empty() {
        return Some(
            "check --confirm: nothing to confirm: no pair was predicted (a pair needs a device that offers P2P memory; see `p2pdoctor explain P2P201`); the findings above stand as predictions".to_string(),
        );
    }
    let mut skipped = d.pairs.iter().filter_map(|p| p.confirm());
    if skipped.clone().any(|c| c.outcome != PairOutcome::Skipped) {
        return None;
    }
    let reason = skipped
        .next()
        .map(|c| format!(" (the first: {})", c.reason))
        .unwrap_or_default();
    Some(format!(
        "check --confirm: nothing could be confirmed: all {} pairs were skipped{reason}; the findings above stand as predictions",
        d.pairs.len()
    ))
}

/// Whether an experiment's outcome agrees with the prediction, and
/// whether it tested the pair at all (issue 11 item 9).
///
/// - Native NVMe multipath sends I/O on the namespace head down any live
///   path of the subsystem (nvme_find_path(): iopolicy numa, round-robin
///   or queue-depth, ANA state), including the provider's own controller;
///   the per-path disks and char devices cannot be opened, so the path
///   cannot be pinned from user space. When the per-path statistics show
///   another controller carried the I/O, the experiment does not test the
///   named client.
/// - When the outcome contradicts the prediction and the kernel's own log
///   lines for this pair agree with the prediction, the outcome is
///   suspect, not the prediction.
pub fn judge(
    c: &mut PairConfirm,
    provider: Bdf,
    client: Bdf,
    predicted: MapType,
    root: &SystemRoot,
) {
    if c.outcome == PairOutcome::Skipped {
        return;
    }
    if carried_by_client(&c.carried_by, client) == Some(false) {
        let others: Vec<String> = c
            .carried_by
            .iter()
            .filter(|p| p.pci != Some(client))
            .map(|p| format!("{} ({})", p.controller, p.path))
            .collect();
        let policy = c
            .namespace
            .as_deref()
            .and_then(head_parts)
            .and_then(|(s, _)| {
                root.read_string(&format!("sys/class/nvme-subsystem/nvme-subsys{s}/iopolicy"))
                    .ok()
            })
            .map(|p| format!(" (iopolicy {})", p.trim()))
            .unwrap_or_default();
        c.settles_pair = false;
        c.unsettled = Some(format!(
            "native NVMe multipath sent the I/O on {} through {}{policy}, not only through the client {client}'s controller; the experiment does not test {client} → {provider} (boot with nvme_core.multipath=N to get one block device per controller)",
            c.namespace.as_deref().unwrap_or("the namespace"),
            others.join(", ")
        ));
        c.agrees = None;
        return;
    }
    let allowed = predicted != MapType::NotSupported;
    let kernel_allowed = matches!(c.outcome, PairOutcome::Ok | PairOutcome::Mismatch);
    let kernel_refused = c.outcome == PairOutcome::Refused;
    c.agrees = if kernel_allowed || kernel_refused {
        Some(allowed == kernel_allowed)
    } else {
        None
    };
    if c.agrees == Some(false) && kernel_allowed && log_refuses_pair(&c.log, provider, client) {
        c.settles_pair = false;
        c.unsettled = Some(format!(
            "the transfer went through, but the kernel logged that it refuses {client} with {provider}, as predicted: the I/O did not take the named path, so the outcome is suspect, not the prediction"
        ));
        c.agrees = None;
    }
}

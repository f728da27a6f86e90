//! `check --confirm`: for each pair an experiment can settle, the smallest
//! real transfer, and what it says about each finding.
//!
//! The client's controller is the DMA master: its NVMe namespace is read
//! into the provider's P2P memory (the client writes into the BAR). With
//! `--write` naming the namespace, the other direction too (the client
//! reads the BAR), journalled and restored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::buffer::Comparison;
use super::copy::{self, Outcome, Params, Shape, Via};
use super::engine::{EngineKind, errno_name};
use super::target::{Target, same_file};
use crate::diagnose::{Diagnosis, MapType, Severity, Status};
use crate::diagnose::{RULE_CONTRADICTED as CONTRADICTED, RULE_MISMATCH as MISMATCH};
use crate::pci::Bdf;

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
    /// Where sysfs is (tests point it elsewhere).
    pub sysfs: PathBuf,
    /// Where device nodes are.
    pub dev: PathBuf,
}

/// The outcome of a pair's experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PairOutcome {
    Ok,
    Refused,
    Mismatch,
    Skipped,
    Error,
}

impl PairOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            PairOutcome::Ok => "ok",
            PairOutcome::Refused => "refused",
            PairOutcome::Mismatch => "mismatch",
            PairOutcome::Skipped => "skipped",
            PairOutcome::Error => "error",
        }
    }
}

/// One direction of a pair's experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Direction {
    /// `read` (client → provider memory) or `write` (provider memory → client).
    pub direction: &'static str,
    pub block_device: PathBuf,
    pub outcome: Outcome,
    pub errno: Option<i32>,
    pub errno_name: Option<&'static str>,
    pub message: String,
    pub bytes: u64,
    pub gbps: Option<f64>,
    pub host_gbps: Option<f64>,
    pub verify: Option<Comparison>,
    pub restored: Option<bool>,
}

/// What real transfers showed for a pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairConfirm {
    pub outcome: PairOutcome,
    pub errno: Option<i32>,
    pub errno_name: Option<&'static str>,
    /// P2P throughput (GB/s) of the read direction.
    pub throughput: Option<f64>,
    /// The same through host memory.
    pub host_throughput: Option<f64>,
    /// Why it was skipped or failed; what happened otherwise.
    pub reason: String,
    /// Whether the kernel's decision matched the predicted map type
    /// (allowed vs refused); None when nothing ran.
    pub agrees: Option<bool>,
    pub directions: Vec<Direction>,
    /// Kernel-log lines that appeared during the transfers.
    pub log: Vec<String>,
    /// The namespace block device the I/O was issued to (`nvme0n1`).
    pub namespace: Option<String>,
    /// The controllers and paths that carried the I/O, from the per-path
    /// block statistics before and after (empty when they could not be
    /// read).
    pub carried_by: Vec<IoPath>,
    /// False when the experiment did not test the pair it names (another
    /// controller of the subsystem carried the I/O, or the kernel's own
    /// log contradicts the outcome); `unsettled` says why. Such an
    /// experiment confirms and refutes nothing.
    pub settles_pair: bool,
    pub unsettled: Option<String>,
}

/// One path of an NVMe namespace and the I/O it carried during an
/// experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IoPath {
    /// `nvme1`
    pub controller: String,
    /// The controller's PCI function.
    pub pci: Option<Bdf>,
    /// `nvme0c1n1` (a native-multipath path) or `nvme1n1` (no multipath).
    pub path: String,
    /// I/Os completed on it during the experiment (reads + writes).
    pub ios: u64,
}

impl IoPath {
    pub fn describe(&self) -> String {
        format!(
            "controller {} ({}), path {}: {} I/Os",
            self.controller,
            self.pci
                .map(|b| b.to_string())
                .unwrap_or_else(|| "not PCI".into()),
            self.path,
            self.ios
        )
    }
}

impl PairConfirm {
    fn skipped(reason: impl Into<String>) -> PairConfirm {
        PairConfirm {
            outcome: PairOutcome::Skipped,
            errno: None,
            errno_name: None,
            throughput: None,
            host_throughput: None,
            reason: reason.into(),
            agrees: None,
            directions: Vec::new(),
            log: Vec::new(),
            namespace: None,
            carried_by: Vec::new(),
            settles_pair: true,
            unsettled: None,
        }
    }

    /// Lines naming the controller, namespace and path that carried the
    /// I/O (issue 11 item 10).
    pub fn path(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(ns) = &self.namespace {
            if self.carried_by.is_empty() {
                out.push(format!(
                    "namespace {ns}; the path that carried the I/O could not be read"
                ));
            } else {
                for p in &self.carried_by {
                    out.push(format!("namespace {ns} via {}", p.describe()));
                }
            }
        }
        if let Some(u) = &self.unsettled {
            out.push(format!("does not settle the pair: {u}"));
        }
        out
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
/// sits under its only controller. Reads `<dir>/stat` fields 1 and 5.
pub fn namespace_paths(sysfs: &Path, name: &str) -> Vec<IoPath> {
    let Some((subsys, nsid)) = head_parts(name) else {
        return Vec::new();
    };
    let class = sysfs.join("class/nvme");
    let Ok(ctrls) = std::fs::read_dir(&class) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in ctrls.flatten() {
        let ctrl = c.file_name().to_string_lossy().to_string();
        let dir = class.join(&ctrl);
        let pci = std::fs::read_link(dir.join("device"))
            .ok()
            .and_then(|l| l.file_name().map(|f| f.to_string_lossy().to_string()))
            .and_then(|f| f.parse::<Bdf>().ok());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let entry = e.file_name().to_string_lossy().to_string();
            let ours = entry == name
                || path_parts(&entry).is_some_and(|(s, _, n)| s == subsys && n == nsid);
            if !ours {
                continue;
            }
            let ios = std::fs::read_to_string(dir.join(&entry).join("stat"))
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
fn run_pair(provider: Bdf, client_devs: &[String], opts: &ConfirmOptions) -> PairConfirm {
    let alloc = opts
        .sysfs
        .join(format!("bus/pci/devices/{provider}/p2pmem/allocate"));
    if !alloc.exists() {
        let dir = alloc.parent().unwrap();
        return PairConfirm::skipped(if dir.exists() {
            format!(
                "{provider} has p2pmem/ but no allocate file: this kernel cannot map P2P memory into user space (6.2 added it)"
            )
        } else {
            format!(
                "{provider} offers no P2P memory (no p2pmem/): a hypothetical provider cannot be tried"
            )
        });
    }
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
    let dev = opts.dev.join(name);
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
    let paths_before = namespace_paths(&opts.sysfs, name);
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
                outcome: Outcome::Error,
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
    let rank = |o: Outcome| match o {
        Outcome::Mismatch => 4,
        Outcome::Refused => 3,
        Outcome::Ok => 2,
        Outcome::Error | Outcome::Interrupted => 1,
    };
    let worst = dirs.iter().max_by_key(|d| rank(d.outcome)).unwrap();
    let outcome = match worst.outcome {
        Outcome::Ok => PairOutcome::Ok,
        Outcome::Refused => PairOutcome::Refused,
        Outcome::Mismatch => PairOutcome::Mismatch,
        Outcome::Error | Outcome::Interrupted => PairOutcome::Error,
    };
    let reason = dirs
        .iter()
        .map(|d| format!("{}: {}", d.direction, d.message))
        .collect::<Vec<_>>()
        .join("; ");
    // The host-bounce baseline goes through the same namespace, so the
    // counts include it; which controller moved them is what matters.
    let carried_by = paths_used(&paths_before, &namespace_paths(&opts.sysfs, name));
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
        outcome: r.outcome,
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
        verify: r.verify,
        restored: r.restore.as_ref().map(|x| x.restored),
    }
}

/// How an experiment bears on a rule.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Settles {
    /// The rule predicts the kernel refuses the pair.
    Refusal,
    /// The rule predicts faults or wrong data.
    Corruption,
    /// The rule predicts slow P2P relative to the host bounce.
    Slow,
    /// Timing-dependent hazards: a failure confirms, a pass proves nothing.
    Hazard,
}

fn settles(rule: &str) -> Option<Settles> {
    Some(match rule {
        "P2P301" | "P2P401" => Settles::Refusal,
        "P2P501" => Settles::Corruption,
        "P2P403" | "P2P404" | "P2P402" => Settles::Slow,
        "P2P302" | "P2P303" | "P2P601" | "P2P603" => Settles::Hazard,
        _ => return None,
    })
}

/// An IOMMU fault line about one of `devs` (a fault of another device
/// during the experiment says nothing about this pair).
fn fault_about(l: &str, devs: &[Bdf]) -> bool {
    fault_line(l)
        && devs.iter().any(|b| {
            let short = format!("{:02x}:{:02x}.{:x}", b.bus, b.device, b.function);
            l.contains(&short)
        })
}

fn fault_line(l: &str) -> bool {
    l.contains("DMAR") && l.contains("fault")
        || l.contains("IO_PAGE_FAULT")
        || l.contains("PTE Write access")
        || l.contains("PTE Read access")
        || l.contains("AMD-Vi: Event logged")
        || l.contains("Unhandled context fault")
}

/// Runs the experiments for every pair and settles what they can.
pub fn confirm(d: &mut Diagnosis, opts: &ConfirmOptions) {
    let blocks: BTreeMap<Bdf, Vec<String>> = d
        .devices
        .iter()
        .map(|dev| (dev.bdf, dev.block_devices.clone()))
        .collect();
    let total = d.pairs.len();
    for i in 0..total {
        let pair = d.pairs.get(i).expect("i < len");
        let (provider, client, map_type) =
            (pair.provider(), pair.client(), pair.verdict().map_type);
        if super::signal::interrupted() {
            d.pairs.set_confirm(i, PairConfirm::skipped("interrupted"));
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
        let mut c = run_pair(provider, &devs, opts);
        judge(&mut c, provider, client, map_type, &opts.sysfs);
        d.pairs.set_confirm(i, c);
    }
    if opts.progress && total > 1 {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprint!("\r{:70}\r", "");
        }
    }
    settle(d);
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
pub fn judge(c: &mut PairConfirm, provider: Bdf, client: Bdf, predicted: MapType, sysfs: &Path) {
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
                std::fs::read_to_string(
                    sysfs.join(format!("class/nvme-subsystem/nvme-subsys{s}/iopolicy")),
                )
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

/// Sets finding statuses from the pairs' experiments, and adds findings
/// for contradictions and mismatches.
pub fn settle(d: &mut Diagnosis) {
    settle_pool(d);
    let tried: Vec<(Bdf, Bdf, &PairConfirm, MapType)> = d
        .pairs
        .iter()
        .filter_map(|p| {
            p.confirm()
                .filter(|c| {
                    c.outcome != PairOutcome::Skipped
                        && c.outcome != PairOutcome::Error
                        && c.settles_pair
                })
                .map(|c| (p.provider(), p.client(), c, p.verdict().map_type))
        })
        .collect();
    let mut added = Vec::new();
    for f in d.findings.iter_mut() {
        let Some(kind) = settles(&f.rule) else {
            continue;
        };
        let mine: Vec<_> = tried
            .iter()
            .filter(|(p, c, _, _)| f.subjects.contains(p) && f.subjects.contains(c))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut confirmed = Vec::new();
        let mut refuted = Vec::new();
        let mut open = Vec::new();
        for (p, c, x, _) in &mine {
            let faults = x.log.iter().any(|l| fault_about(l, &[*p, *c]));
            let line = format!("confirm {c} → {p}: {}", describe(x));
            let verdict = match kind {
                Settles::Refusal => match x.outcome {
                    PairOutcome::Refused => Some(true),
                    PairOutcome::Ok | PairOutcome::Mismatch => Some(false),
                    _ => None,
                },
                Settles::Corruption => match x.outcome {
                    PairOutcome::Mismatch => Some(true),
                    PairOutcome::Ok if faults => Some(true),
                    PairOutcome::Ok => Some(false),
                    _ => None,
                },
                Settles::Slow => match (x.outcome, x.throughput, x.host_throughput) {
                    (PairOutcome::Ok, Some(p2p), Some(host)) if host > 0.0 => {
                        let r = p2p / host;
                        if r < 0.5 {
                            Some(true)
                        } else if r >= 0.8 {
                            Some(false)
                        } else {
                            None
                        }
                    }
                    _ => None,
                },
                Settles::Hazard => match x.outcome {
                    PairOutcome::Mismatch => Some(true),
                    _ => None,
                },
            };
            match verdict {
                Some(true) => confirmed.push(line),
                Some(false) => refuted.push(line),
                None => open.push(line),
            }
        }
        f.status = if !confirmed.is_empty() {
            Status::Confirmed
        } else if !refuted.is_empty() {
            Status::Refuted
        } else {
            Status::Inconclusive
        };
        if kind == Settles::Hazard && confirmed.is_empty() {
            open.push("the transfers passed, but ordering failures are timing-dependent: a pass does not rule them out".into());
        }
        if kind == Settles::Slow && f.status == Status::Inconclusive {
            open.push("P2P ran between half and 0.8 of the host-bounce throughput: neither clearly slow nor clearly fine".into());
        }
        f.evidence.extend(confirmed);
        f.evidence.extend(refuted);
        f.evidence.extend(open);
    }
    for (p, c, x, map) in &tried {
        let predicted_allowed = *map != MapType::NotSupported;
        if x.agrees == Some(false) {
            let (what, did) = if predicted_allowed {
                (
                    format!("{} (allowed)", map.as_str()),
                    "refused it".to_string(),
                )
            } else {
                (
                    "refused (not_supported)".to_string(),
                    "allowed it".to_string(),
                )
            };
            added.push(
                CONTRADICTED
                    .finding(
                        Severity::Warning,
                        Status::Confirmed,
                        [*p, *c],
                        format!(
                            "p2pdoctor predicted {c} → {p} {what}, but the kernel {did}: {}",
                            describe(x)
                        ),
                    )
                    .fix("Trust the experiment for this pair, and report it with the output of p2pdoctor snapshot so the model can be corrected")
                    .evidence(x.log.iter().map(|l| format!("kernel: {l}"))),
            );
        }
        if x.outcome == PairOutcome::Mismatch {
            let faults: Vec<String> = x
                .log
                .iter()
                .filter(|l| fault_about(l, &[*p, *c]))
                .cloned()
                .collect();
            let cause = if faults.is_empty() {
                "no IOMMU fault was logged".to_string()
            } else {
                format!("the IOMMU logged {} fault line(s)", faults.len())
            };
            added.push(
                MISMATCH
                    .finding(
                        Severity::Error,
                        Status::Confirmed,
                        [*p, *c],
                        format!(
                            "{c} with {p}'s P2P memory: {} ({cause})",
                            describe(x)
                        ),
                    )
                    .fix("Do not use this pair for P2P until the cause is fixed: with an IOMMU on, boot with iommu=pt or set both devices' IOMMU groups to identity; otherwise move both devices below one PCIe switch")
                    .evidence(x.log.iter().map(|l| format!("kernel: {l}"))),
            );
        }
    }
    d.findings.extend(added);
    d.resummarize();
}

/// P2P205 (pool exhausted) is about the provider alone: an experiment whose
/// mapping of P2P memory failed with ENOMEM confirms it; one that mapped its
/// buffer refutes it for that size.
fn settle_pool(d: &mut Diagnosis) {
    let mut by_provider: BTreeMap<Bdf, Vec<&PairConfirm>> = BTreeMap::new();
    for p in &d.pairs {
        if let Some(c) = p
            .confirm()
            .as_ref()
            .filter(|c| c.outcome != PairOutcome::Skipped)
        {
            by_provider.entry(p.provider()).or_default().push(c);
        }
    }
    for f in d.findings.iter_mut().filter(|f| f.rule == "P2P205") {
        let exps: Vec<&PairConfirm> = f
            .subjects
            .iter()
            .filter_map(|b| by_provider.get(b))
            .flatten()
            .copied()
            .collect();
        // (ENOMEM as an Error is the mapping of P2P memory failing; a
        // transfer refused with it had its buffer)
        if let Some(c) = exps
            .iter()
            .find(|c| c.outcome == PairOutcome::Error && c.errno == Some(libc::ENOMEM))
        {
            f.status = Status::Confirmed;
            f.evidence.push(format!(
                "confirm: mapping P2P memory failed with ENOMEM: {}",
                c.reason
            ));
        } else if let Some(c) = exps.iter().find(|c| c.outcome != PairOutcome::Error) {
            f.status = Status::Refuted;
            let bytes = c.directions.first().map(|x| x.bytes).unwrap_or(0);
            f.evidence.push(format!(
                "confirm: a P2P buffer was mapped and {} moved through it",
                crate::units::human_bytes(bytes)
            ));
        }
    }
}

/// One line about a pair's experiment.
pub fn describe(x: &PairConfirm) -> String {
    match x.outcome {
        PairOutcome::Ok => {
            let dirs: Vec<&str> = x.directions.iter().map(|d| d.direction).collect();
            let speed = match (x.throughput, x.host_throughput) {
                (Some(p), Some(h)) => format!(
                    " at {} (host bounce {})",
                    crate::units::rate(p),
                    crate::units::rate(h)
                ),
                (Some(p), None) => format!(" at {}", crate::units::rate(p)),
                _ => String::new(),
            };
            format!("{} verified{speed}", dirs.join(" and "))
        }
        PairOutcome::Refused => format!("refused with {}", x.errno_name.unwrap_or("an error")),
        PairOutcome::Mismatch => x
            .directions
            .iter()
            .find(|d| d.outcome == Outcome::Mismatch)
            .map(|d| format!("{}: {}", d.direction, d.message))
            .unwrap_or_else(|| "data mismatch".into()),
        PairOutcome::Skipped | PairOutcome::Error => x.reason.clone(),
    }
}

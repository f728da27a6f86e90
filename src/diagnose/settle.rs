//! What `check --confirm`'s transfers showed, as plain data, and how a
//! diagnosis takes it in.
//!
//! The confirm stage runs an experiment per pair and hands back a
//! [`PairResult`] for each; it never touches the [`Diagnosis`].
//! [`Diagnosis::settle`] then records each result on its pair and turns
//! the findings an experiment bears on `confirmed`, `refuted` or
//! `inconclusive`, adding P2P902 where the kernel decided otherwise than
//! predicted and P2P903 where the data did not arrive intact.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use super::{Diagnosis, MapType, Severity, Status};
use super::{RULE_CONTRADICTED as CONTRADICTED, RULE_MISMATCH as MISMATCH};
use crate::pci::Bdf;

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

/// How one direction's transfer ended (the confirm stage's copy outcome,
/// as data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionOutcome {
    /// Moved and verified.
    Ok,
    /// The kernel refused the P2P transfer (an errno) while host memory worked.
    Refused,
    /// The transfer reported success but the data is wrong or missing.
    Mismatch,
    /// Something else failed (the device itself, a buffer, a journal).
    Error,
    /// Stopped by a signal; what was written has been restored.
    Interrupted,
}

/// What the full comparison of a direction's data found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Compared {
    pub bytes_compared: u64,
    pub bytes_differ: u64,
    /// The offset (in the device range) of the first byte that differs.
    pub first_mismatch: Option<u64>,
    /// Of the differing bytes, how many still hold the fill pattern: the
    /// DMA never reached them.
    pub untouched: u64,
    /// Copies only: of the differing bytes, how many hold the P2P buffer's
    /// fill pattern.
    pub stale_buffer: u64,
}

/// One direction of a pair's experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Direction {
    /// `read` (client → provider memory) or `write` (provider memory → client).
    pub direction: &'static str,
    pub block_device: PathBuf,
    pub outcome: DirectionOutcome,
    pub errno: Option<i32>,
    pub errno_name: Option<&'static str>,
    pub message: String,
    pub bytes: u64,
    pub gbps: Option<f64>,
    pub host_gbps: Option<f64>,
    pub verify: Option<Compared>,
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
    /// An experiment that did not run, and why.
    pub fn skipped(reason: impl Into<String>) -> PairConfirm {
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

/// The result of confirming one pair: which pair, and what its experiment
/// showed.
#[derive(Debug, Clone, PartialEq)]
pub struct PairResult {
    pub provider: Bdf,
    pub client: Bdf,
    pub confirm: PairConfirm,
}

impl Diagnosis {
    /// Takes in what the experiments showed: each result goes on its pair
    /// (a result naming no pair of this diagnosis is dropped), then the
    /// findings the experiments bear on are settled, contradictions and
    /// mismatches are added, and the summary is worked out again.
    pub fn settle(mut self, results: Vec<PairResult>) -> Diagnosis {
        let mut by_pair: HashMap<(Bdf, Bdf), PairConfirm> = results
            .into_iter()
            .map(|r| ((r.provider, r.client), r.confirm))
            .collect();
        for i in 0..self.pairs.len() {
            if by_pair.is_empty() {
                break;
            }
            let key = {
                let p = self.pairs.get(i).expect("i < len");
                (p.provider(), p.client())
            };
            if let Some(c) = by_pair.remove(&key) {
                self.pairs.set_confirm(i, c);
            }
        }
        settle_findings(&mut self);
        self
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

/// Sets finding statuses from the pairs' experiments, and adds findings
/// for contradictions and mismatches.
fn settle_findings(d: &mut Diagnosis) {
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
            .find(|d| d.outcome == DirectionOutcome::Mismatch)
            .map(|d| format!("{}: {}", d.direction, d.message))
            .unwrap_or_else(|| "data mismatch".into()),
        PairOutcome::Skipped | PairOutcome::Error => x.reason.clone(),
    }
}

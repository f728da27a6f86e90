//! What `check` shows: a pure stage from a [`Diagnosis`] and a
//! [`Selection`] to the diagnosis of the devices asked about.
//!
//! - By default pairs and findings are about devices that do P2P (NVMe,
//!   GPUs and display controllers, NICs, accelerators: `checks::p2p_class`);
//!   chipset functions (SATA, USB, SMBus, audio, ...) appear only with
//!   `--all-devices` or when named with `--device`.
//! - `--device`, `--provider`, `--client` pick devices by address or by
//!   the name the OS gives them (`nvme0`, `mlx5_0`, `card1`, `nvme0n1`).
//! - `--min-severity` hides findings below it; they still count in the
//!   verdict and the exit status.
//! - Suppressions (from a config file, each with a reason) take findings
//!   out of the report and the exit status, and list them in `suppressed`.
//!
//! Findings of `check --baseline` and `--policy` compare the whole machine:
//! the device selection never hides them (only suppressions and
//! `--min-severity` do).
//!
//! Nothing is dropped silently: every hidden device, pair count and
//! finding is in [`SelectionReport`].

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Diagnosis, Finding, Severity, Status};
use crate::pci::Bdf;
use crate::topology::NodeId;

/// An endpoint function as the selection sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Endpoint {
    /// Of a class that does P2P DMA (or a provider).
    pub p2p: bool,
    /// The names the OS gives it (`nvme0`, `mlx5_0`, `card1`, `eth0`).
    pub names: Vec<String>,
    /// `nvme0n1`
    pub block_devices: Vec<String>,
}

/// One suppression from a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// A rule ID (`P2P402`) or name (`root-complex-p2p`).
    pub rule: String,
    /// A BDF or an OS name; None: every finding of the rule.
    pub device: Option<String>,
    pub reason: String,
    /// The config file, as named in the headline (`p2pdoctor.toml`).
    pub file: String,
    /// The line of its `[[suppress]]` table.
    pub line: usize,
}

/// What to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Chipset functions too (`--all-devices`).
    pub all_devices: bool,
    /// `--device`: pairs with either end, findings about any of them.
    pub devices: Vec<String>,
    /// `--provider`: pairs with one of these as the provider.
    pub providers: Vec<String>,
    /// `--client`: pairs with one of these as the client.
    pub clients: Vec<String>,
    pub min_severity: Severity,
    /// Show info findings with nothing to do in full (`--verbose`).
    pub verbose: bool,
    pub suppress: Vec<Suppression>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            all_devices: false,
            devices: Vec::new(),
            providers: Vec::new(),
            clients: Vec::new(),
            min_severity: Severity::Info,
            verbose: false,
            suppress: Vec::new(),
        }
    }
}

/// Why something is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenReason {
    /// A chipset function (not of a class that does P2P): `--all-devices`.
    Chipset,
    /// Not among `--device`, `--provider`, `--client`.
    NotSelected,
    /// Below `--min-severity` (still counted in the verdict).
    BelowMinSeverity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HiddenDevice {
    pub bdf: Bdf,
    pub names: Vec<String>,
    pub reason: HiddenReason,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HiddenFinding {
    pub rule: String,
    pub severity: Severity,
    pub status: Status,
    pub subjects: Vec<Bdf>,
    pub reason: HiddenReason,
}

/// What was shown and hidden, and why (`selection` in the JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectionReport {
    pub all_devices: bool,
    pub devices: Vec<String>,
    pub providers: Vec<String>,
    pub clients: Vec<String>,
    pub min_severity: Severity,
    /// The text report folds info findings with nothing to do into one
    /// line (not with `--verbose` or `--all-devices`).
    pub info_folded: bool,
    pub hidden_devices: Vec<HiddenDevice>,
    pub hidden_pairs: usize,
    pub hidden_findings: Vec<HiddenFinding>,
}

impl Default for SelectionReport {
    /// Everything shown: a diagnosis no selection was applied to.
    fn default() -> Self {
        SelectionReport {
            all_devices: true,
            devices: Vec::new(),
            providers: Vec::new(),
            clients: Vec::new(),
            min_severity: Severity::Info,
            info_folded: false,
            hidden_devices: Vec::new(),
            hidden_pairs: 0,
            hidden_findings: Vec::new(),
        }
    }
}

/// A finding taken out by a suppression, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    pub rule: String,
    pub name: String,
    pub severity: Severity,
    pub status: Status,
    pub subjects: Vec<Bdf>,
    pub message: String,
    pub reason: String,
    /// The config file.
    pub file: String,
    pub line: usize,
}

/// An info finding whose fix says there is nothing to do (or that has
/// none): the text report folds these into one count line.
pub fn nothing_to_do(f: &Finding) -> bool {
    f.severity == Severity::Info
        && f.fix.as_ref().is_none_or(|x| {
            x.commands.is_empty()
                && x.kernel_params.is_empty()
                && x.text.trim_start().starts_with("Nothing to fix")
        })
}

/// The rules of `check --baseline` and `--policy`: they compare the whole
/// machine, so the device selection does not hide them.
fn whole_machine(rule: &str) -> bool {
    use crate::{baseline, policy};
    [
        baseline::PAIR,
        baseline::DEVICE,
        baseline::LINK,
        baseline::ACS,
        baseline::HOST,
        policy::PAIR,
        policy::LINK,
        policy::ACS,
        policy::IOMMU,
        policy::KERNEL,
    ]
    .iter()
    .any(|r| r.id == rule)
}

/// The endpoints a name or address stands for (a name may be on several
/// functions, e.g. `mlx5_0` on none, an address on one).
fn resolve(d: &Diagnosis, spec: &str) -> Vec<Bdf> {
    if let Ok(b) = spec.parse::<Bdf>() {
        return d
            .endpoints
            .contains_key(&b)
            .then_some(b)
            .into_iter()
            .collect();
    }
    d.endpoints
        .iter()
        .filter(|(_, e)| {
            e.names.iter().any(|n| n == spec) || e.block_devices.iter().any(|n| n == spec)
        })
        .map(|(b, _)| *b)
        .collect()
}

fn resolve_all(d: &Diagnosis, flag: &str, specs: &[String]) -> Result<BTreeSet<Bdf>, String> {
    let mut out = BTreeSet::new();
    for spec in specs {
        let found = resolve(d, spec);
        if found.is_empty() {
            let known: Vec<String> = d
                .endpoints
                .iter()
                .filter(|(_, e)| e.p2p)
                .map(|(b, e)| match e.names.first() {
                    Some(n) => format!("{b} ({n})"),
                    None => b.to_string(),
                })
                .collect();
            return Err(format!(
                "{flag} {spec}: no PCI function has that address or name; devices that do P2P here: {} (a name is one the OS gives, like nvme0, mlx5_0, card1; `p2pdoctor check --all-devices` lists every device)",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        out.extend(found);
    }
    Ok(out)
}

fn rule_matches(s: &Suppression, f: &Finding) -> bool {
    s.rule.eq_ignore_ascii_case(&f.rule) || s.rule == f.name
}

/// What the selection says of one end of a pair (see [`apply`]).
#[derive(Clone, Copy)]
struct EndSelection {
    /// A chipset function the selection leaves out.
    hidden: bool,
    /// Named by --device.
    device: bool,
    /// May be the provider (--provider names it, or there is none).
    provider: bool,
    /// May be the client (--client names it, or there is none).
    client: bool,
}

/// The diagnosis as the selection shows it. Errors name a `--device`,
/// `--provider` or `--client` that matches nothing.
pub fn apply(mut d: Diagnosis, s: &Selection) -> Result<Diagnosis, String> {
    let devices = resolve_all(&d, "--device", &s.devices)?;
    let providers = resolve_all(&d, "--provider", &s.providers)?;
    let clients = resolve_all(&d, "--client", &s.clients)?;
    let named: BTreeSet<Bdf> = devices
        .iter()
        .chain(&providers)
        .chain(&clients)
        .copied()
        .collect();

    // Suppressions first: a suppressed finding is listed with its reason
    // whether or not the selection would show it.
    let mut suppressed = Vec::new();
    let mut kept = Vec::new();
    for f in std::mem::take(&mut d.findings) {
        let hit = s.suppress.iter().find(|sup| {
            rule_matches(sup, &f)
                && sup
                    .device
                    .as_deref()
                    .is_none_or(|dev| resolve(&d, dev).iter().any(|b| f.subjects.contains(b)))
        });
        match hit {
            Some(sup) => suppressed.push(Suppressed {
                rule: f.rule.clone(),
                name: f.name.clone(),
                severity: f.severity,
                status: f.status,
                subjects: f.subjects.clone(),
                message: f.message.clone(),
                reason: sup.reason.clone(),
                file: sup.file.clone(),
                line: sup.line,
            }),
            None => kept.push(f),
        }
    }

    let hidden = |b: &Bdf| {
        !s.all_devices && !named.contains(b) && d.endpoints.get(b).is_some_and(|e| !e.p2p)
    };
    let picked = |b: &Bdf| named.is_empty() || named.contains(b);

    let before = d.pairs.len();
    // What the selection says of each end, worked out once per function:
    // a server has thousands of ends and millions of pairs.
    let mut ends: Vec<Option<EndSelection>> = Vec::new();
    let mut end = |id: NodeId, b: Bdf| -> EndSelection {
        if ends.len() <= id.index() {
            ends.resize(id.index() + 1, None);
        }
        *ends[id.index()].get_or_insert_with(|| EndSelection {
            hidden: hidden(&b),
            device: devices.contains(&b),
            provider: providers.is_empty() || providers.contains(&b),
            client: clients.is_empty() || clients.contains(&b),
        })
    };
    d.pairs.retain(|p| {
        let (a, b) = (
            end(p.provider_id(), p.provider()),
            end(p.client_id(), p.client()),
        );
        !a.hidden
            && !b.hidden
            && (devices.is_empty() || a.device || b.device)
            && a.provider
            && b.client
    });
    let hidden_pairs = before - d.pairs.len();

    let mut hidden_devices = Vec::new();
    // The table keeps exactly the ends its rows name.
    let in_pairs: BTreeSet<Bdf> = d.pairs.end_bdfs().collect();
    d.devices.retain(|dev| {
        let reason = if hidden(&dev.bdf) {
            Some(HiddenReason::Chipset)
        } else if !picked(&dev.bdf) && !in_pairs.contains(&dev.bdf) {
            Some(HiddenReason::NotSelected)
        } else {
            None
        };
        if let Some(reason) = reason {
            hidden_devices.push(HiddenDevice {
                bdf: dev.bdf,
                names: d
                    .endpoints
                    .get(&dev.bdf)
                    .map(|e| e.names.clone())
                    .unwrap_or_default(),
                reason,
            });
        }
        reason.is_none()
    });

    let mut hidden_findings = Vec::new();
    let mut shown = Vec::new();
    for f in kept {
        let ends: Vec<&Bdf> = f
            .subjects
            .iter()
            .filter(|b| d.endpoints.contains_key(b))
            .collect();
        let reason = if whole_machine(&f.rule) {
            None
        } else if ends.iter().any(|b| hidden(b)) {
            Some(HiddenReason::Chipset)
        } else if !named.is_empty() && !ends.is_empty() && !ends.iter().any(|b| named.contains(b)) {
            Some(HiddenReason::NotSelected)
        } else {
            None
        };
        let reason =
            reason.or((f.severity > s.min_severity).then_some(HiddenReason::BelowMinSeverity));
        match reason {
            Some(reason) => hidden_findings.push(HiddenFinding {
                rule: f.rule.clone(),
                severity: f.severity,
                status: f.status,
                subjects: f.subjects.clone(),
                reason,
            }),
            None => shown.push(f),
        }
    }
    d.findings = shown;
    d.suppressed = suppressed;
    d.selection = SelectionReport {
        all_devices: s.all_devices,
        devices: s.devices.clone(),
        providers: s.providers.clone(),
        clients: s.clients.clone(),
        min_severity: s.min_severity,
        info_folded: !s.verbose && !s.all_devices,
        hidden_devices,
        hidden_pairs,
        hidden_findings,
    };
    d.resummarize();
    Ok(d)
}

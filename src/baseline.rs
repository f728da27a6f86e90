//! A known-good node as data, and every way another node deviates from it:
//! `p2pdoctor baseline -o good.json` records a [`Record`];
//! `p2pdoctor check --baseline good.json` turns each deviation into a
//! finding of the baseline family (P2P1001..P2P1005).
//!
//! A stage after `diagnose`, like `compare`: it takes a tree and its
//! diagnosis as values. Devices are named by their place (the host
//! bridge's position, then device.function from the root bus down:
//! [`crate::compare::place`]), never by host name, serial number or bus
//! number, so the record of one node describes every node built like it.
//! `fleet` uses the same record as each node's fingerprint.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::compare::place;
use crate::diagnose::{
    Diagnosis, Family, Finding, MapType, Rule, RuleRef, Severity, Stage, Status,
};
use crate::pci::Bdf;
use crate::topology::{LinkState, NodeId, PathClass, Role, Tree};

/// Bumped when a field of the baseline file changes meaning or goes away.
pub const BASELINE_SCHEMA_VERSION: u32 = 1;

pub const PAIR: RuleRef = RuleRef {
    id: "P2P1001",
    name: "baseline-pair",
};
pub const DEVICE: RuleRef = RuleRef {
    id: "P2P1002",
    name: "baseline-device",
};
pub const LINK: RuleRef = RuleRef {
    id: "P2P1003",
    name: "baseline-link",
};
pub const ACS: RuleRef = RuleRef {
    id: "P2P1004",
    name: "baseline-acs",
};
pub const HOST: RuleRef = RuleRef {
    id: "P2P1005",
    name: "baseline-host",
};

/// This family's registry entries (crate::diagnose::RULES).
pub(crate) const RULES: &[Rule] = &[
    Rule::elsewhere(PAIR, Family::Baseline, Stage::Baseline),
    Rule::elsewhere(DEVICE, Family::Baseline, Stage::Baseline),
    Rule::elsewhere(LINK, Family::Baseline, Stage::Baseline),
    Rule::elsewhere(ACS, Family::Baseline, Stage::Baseline),
    Rule::elsewhere(HOST, Family::Baseline, Stage::Baseline),
];

/// Kernel parameters that change P2P (IOMMU, ACS, PCIe port services):
/// the only part of the command line a record keeps (the rest, such as
/// `root=UUID=...`, differs from node to node).
const CMDLINE_KEYS: &[&str] = &[
    "iommu",
    "intel_iommu",
    "amd_iommu",
    "iommu.passthrough",
    "iommu.strict",
    "pci",
    "pcie_acs_override",
    "pcie_aspm",
    "pcie_ports",
];

/// What a node looks like, for P2P, without anything that names the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Pairs were taken over every endpoint (`--all-pairs`).
    pub all_pairs: bool,
    pub host: HostRecord,
    /// Every function, by place.
    pub devices: Vec<DeviceRecord>,
    /// Every predicted pair, by the places of provider and client.
    pub pairs: Vec<PairRecord>,
    /// Every finding, by rule and the places of its subjects.
    pub findings: Vec<FindingRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    pub kernel_release: Option<String>,
    /// CONFIG_PCI_P2PDMA (None: no kernel config found).
    pub p2pdma_config: Option<bool>,
    /// `none`, `intel`, `amd`, ...
    pub iommu_kind: String,
    /// `off`, `translated`, `passthrough`, `mixed`, `unknown`.
    pub iommu_mode: String,
    /// The P2P-relevant kernel parameters, in order (see CMDLINE_KEYS).
    pub cmdline: Vec<String>,
    /// `GenuineIntel family 0x6 model 0x55`
    pub cpu: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// `hb0/03.0/00.0/00.0/00.0`
    pub place: String,
    /// `144d:a824` (`?` for an unreadable ID).
    pub ids: String,
    /// `010802`
    pub class: Option<String>,
    pub role: Role,
    pub driver: Option<String>,
    pub link: Option<LinkRecord>,
    /// ACS Control, where the function has the capability and it was read.
    pub acs_ctrl: Option<u16>,
    pub p2pmem: Option<P2pmemRecord>,
    pub iommu_group_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRecord {
    /// PCIe generation the link trained at (None: unknown or not a standard speed).
    pub generation: Option<u8>,
    pub width: Option<u8>,
}

impl LinkRecord {
    fn describe(&self) -> String {
        format!(
            "{} {}",
            self.generation
                .map(|g| format!("Gen{g}"))
                .unwrap_or_else(|| "Gen?".into()),
            self.width
                .map(|w| format!("x{w}"))
                .unwrap_or_else(|| "x?".into())
        )
    }

    /// Slower or narrower than `other` in any known respect.
    fn below(&self, other: &LinkRecord) -> bool {
        let lt = |a: Option<u8>, b: Option<u8>| matches!((a, b), (Some(a), Some(b)) if a < b);
        lt(self.generation, other.generation) || lt(self.width, other.width)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pmemRecord {
    pub size: Option<u64>,
    pub published: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRecord {
    pub provider: String,
    pub client: String,
    pub map_type: MapType,
    pub distance: u32,
    pub path_class: PathClass,
    /// Places of the bridges with ACS redirect, in the kernel's order.
    pub acs_redirect: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingRecord {
    pub rule: String,
    pub severity: Severity,
    pub subjects: Vec<String>,
}

/// The tool that wrote a baseline: [`crate::render::ToolBlock`] as read
/// back from a file another release may have written (owned strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Tool {
        let this = crate::render::ToolBlock::THIS;
        Tool {
            name: this.name.into(),
            version: this.version.into(),
        }
    }
}

/// The baseline file (schema/baseline.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    pub schema_version: u32,
    pub tool: Tool,
    pub node: Record,
}

impl BaselineFile {
    pub fn new(node: Record) -> BaselineFile {
        BaselineFile {
            schema_version: BASELINE_SCHEMA_VERSION,
            tool: Tool::this(),
            node,
        }
    }

    /// Reads a baseline file; errors name the file and what to do.
    pub fn load(path: &Path) -> anyhow::Result<BaselineFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the baseline {}: {e}; record one on a known-good node with `p2pdoctor baseline -o {}`",
                path.display(),
                path.display()
            )
        })?;
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("schema_version").and_then(|s| s.as_u64()));
        if let Some(v) = version
            && v != u64::from(BASELINE_SCHEMA_VERSION)
        {
            anyhow::bail!(
                "the baseline {} has schema version {v}; this p2pdoctor reads version {BASELINE_SCHEMA_VERSION}: record it again with `p2pdoctor baseline -o {}`",
                path.display(),
                path.display()
            );
        }
        serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a p2pdoctor baseline ({e}); record one with `p2pdoctor baseline -o FILE` (schema/baseline.schema.json)",
                path.display()
            )
        })
    }
}

fn hex_ids(tree: &Tree, id: NodeId) -> String {
    let f = &tree.node(id).facts;
    let h = |v: Option<u16>| v.map(|v| format!("{v:04x}")).unwrap_or_else(|| "?".into());
    format!("{}:{}", h(f.vendor), h(f.device))
}

fn link_record(link: &LinkState) -> Option<LinkRecord> {
    if !(link.is_up() || link.width.is_some()) {
        return None;
    }
    Some(LinkRecord {
        generation: link.speed_gts.and_then(LinkState::generation),
        width: link.width,
    })
}

/// The P2P-relevant kernel parameters of a command line.
pub fn relevant_cmdline(raw: &str) -> Vec<String> {
    raw.split_whitespace()
        .filter(|t| {
            let key = t.split('=').next().unwrap_or("");
            CMDLINE_KEYS.contains(&key)
        })
        .map(str::to_string)
        .collect()
}

/// Reduces a node to its record.
pub fn record(tree: &Tree, diagnosis: &Diagnosis) -> Record {
    let h = &tree.host;
    let places: Vec<String> = tree.ids().map(|i| place(tree, i)).collect();
    let by_bdf = |b: &Bdf| {
        tree.find(*b)
            .map(|i| places[i].clone())
            .unwrap_or_else(|| b.to_string())
    };
    let mut devices: BTreeMap<String, DeviceRecord> = BTreeMap::new();
    for (i, n) in tree.nodes_with_ids() {
        if n.facts.missing {
            continue;
        }
        devices
            .entry(places[i].clone())
            .or_insert_with(|| DeviceRecord {
                place: places[i].clone(),
                ids: hex_ids(tree, i),
                class: n.facts.class.map(|c| format!("{c:06x}")),
                role: n.role,
                driver: n.facts.driver.clone(),
                link: n.link.as_ref().and_then(link_record),
                acs_ctrl: n.caps.acs.as_ref().and_then(|a| a.ctrl).map(|c| c.0),
                p2pmem: n.facts.p2pmem.as_ref().map(|m| P2pmemRecord {
                    size: m.size,
                    published: m.published,
                }),
                iommu_group_type: n.facts.iommu_group_type.clone(),
            });
    }
    let mut pairs: Vec<PairRecord> = diagnosis
        .pairs
        .iter()
        .map(|p| PairRecord {
            provider: places[p.provider_id()].clone(),
            client: places[p.client_id()].clone(),
            map_type: p.verdict().map_type,
            distance: p.verdict().distance,
            path_class: p.path_class(),
            acs_redirect: p.verdict().acs_redirect.iter().map(by_bdf).collect(),
        })
        .collect();
    pairs.sort();
    pairs.dedup_by(|a, b| (&a.provider, &a.client) == (&b.provider, &b.client));
    let mut findings: Vec<FindingRecord> = diagnosis
        .findings
        .iter()
        .map(|f| {
            let mut subjects: Vec<String> = f.subjects.iter().map(by_bdf).collect();
            subjects.sort();
            FindingRecord {
                rule: f.rule.clone(),
                severity: f.severity,
                subjects,
            }
        })
        .collect();
    findings.sort();
    findings.dedup();
    let cpu = h.cpu.vendor.as_ref().map(|v| {
        format!(
            "{v} family {:#x} model {:#x}",
            h.cpu.family.unwrap_or(0),
            h.cpu.model.unwrap_or(0)
        )
    });
    Record {
        all_pairs: diagnosis.all_pairs,
        host: HostRecord {
            kernel_release: h.kernel_release.clone(),
            p2pdma_config: h.p2pdma_config,
            iommu_kind: diagnosis.header.iommu.kind.clone(),
            iommu_mode: diagnosis.header.iommu.mode.as_str().to_string(),
            cmdline: relevant_cmdline(&h.cmdline.raw),
            cpu,
        },
        devices: devices.into_values().collect(),
        pairs,
        findings,
    }
}

fn hash_of(v: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

impl Record {
    /// A stable hash of the whole record: nodes with the same fingerprint
    /// look the same for P2P.
    pub fn fingerprint(&self) -> u64 {
        hash_of(self)
    }

    /// One hash per fact (host field, device, pair, finding), sorted: how
    /// `fleet` measures how alike two nodes are without keeping records.
    pub fn items(&self) -> Vec<u64> {
        let h = &self.host;
        let mut out = vec![
            hash_of(&("kernel", &h.kernel_release, h.p2pdma_config)),
            hash_of(&("iommu", &h.iommu_kind, &h.iommu_mode)),
            hash_of(&("cmdline", &h.cmdline)),
            hash_of(&("cpu", &h.cpu)),
        ];
        out.extend(self.devices.iter().map(|d| hash_of(&("device", d))));
        out.extend(self.pairs.iter().map(|p| hash_of(&("pair", p))));
        out.extend(self.findings.iter().map(|f| hash_of(&("finding", f))));
        out.sort_unstable();
        out
    }
}

/// One difference before it becomes a finding: grouped so that one change
/// (an ACS bit that sends thirty pairs through the root complex) is one
/// finding naming the pairs, not thirty.
struct Deviation {
    rule: RuleRef,
    severity: Severity,
    /// What changed, the same for every member of a group.
    what: String,
    /// Places or pairs it applies to.
    at: Vec<String>,
    subjects: Vec<Bdf>,
}

fn opt(s: &Option<impl ToString>) -> String {
    s.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn params(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        format!("`{}`", list.join(" "))
    }
}

fn acs_text(c: Option<u16>) -> String {
    match c {
        None => "none".into(),
        Some(c) if c & 0x7f == 0 => format!("{c:#06x} (off)"),
        Some(c) => format!("{c:#06x} ({})", crate::pci::AcsFlags(c).names().join(" ")),
    }
}

/// Every way this node (`tree`, `diagnosis`) deviates from `base`, as
/// findings of the baseline family.
pub fn deviations(base: &Record, tree: &Tree, diagnosis: &Diagnosis) -> Vec<Finding> {
    let now = record(tree, diagnosis);
    let bdf_at: BTreeMap<String, Bdf> = tree
        .ids()
        .filter(|&i| !tree.node(i).facts.missing)
        .map(|i| (place(tree, i), tree.node(i).bdf()))
        .collect();
    let bdf = |p: &str| bdf_at.get(p).copied();
    let mut devs: Vec<Deviation> = Vec::new();
    let mut dev =
        |rule: RuleRef, severity: Severity, what: String, at: String, subjects: Vec<Bdf>| {
            devs.push(Deviation {
                rule,
                severity,
                what,
                at: vec![at],
                subjects,
            })
        };

    // The host.
    let (hb, hn) = (&base.host, &now.host);
    let host_facts: [(&str, String, String); 5] = [
        (
            "kernel release",
            opt(&hb.kernel_release),
            opt(&hn.kernel_release),
        ),
        (
            "CONFIG_PCI_P2PDMA",
            opt(&hb.p2pdma_config.map(|c| if c { "y" } else { "not set" })),
            opt(&hn.p2pdma_config.map(|c| if c { "y" } else { "not set" })),
        ),
        (
            "IOMMU",
            format!("{} {}", hb.iommu_kind, hb.iommu_mode),
            format!("{} {}", hn.iommu_kind, hn.iommu_mode),
        ),
        (
            "P2P kernel parameters",
            params(&hb.cmdline),
            params(&hn.cmdline),
        ),
        ("CPU", opt(&hb.cpu), opt(&hn.cpu)),
    ];
    for (what, b, n) in host_facts {
        if b != n {
            dev(
                HOST,
                Severity::Warning,
                format!("{what} is {n}; the baseline has {b}"),
                "host".into(),
                vec![],
            );
        }
    }

    // Devices, by place.
    let base_dev: BTreeMap<&str, &DeviceRecord> =
        base.devices.iter().map(|d| (d.place.as_str(), d)).collect();
    let now_dev: BTreeMap<&str, &DeviceRecord> =
        now.devices.iter().map(|d| (d.place.as_str(), d)).collect();
    let label = |d: &DeviceRecord| {
        format!(
            "{} {}{}",
            role_label(d.role),
            d.ids,
            d.driver
                .as_ref()
                .map(|x| format!(" (driver {x})"))
                .unwrap_or_default()
        )
    };
    for (p, b) in &base_dev {
        let Some(n) = now_dev.get(p) else {
            dev(
                DEVICE,
                Severity::Error,
                format!("missing: the baseline has {} here", label(b)),
                p.to_string(),
                vec![],
            );
            continue;
        };
        let subj = bdf(p).into_iter().collect::<Vec<_>>();
        if b.ids != n.ids || b.role != n.role {
            dev(
                DEVICE,
                Severity::Error,
                format!("{} where the baseline has {}", label(n), label(b)),
                p.to_string(),
                subj.clone(),
            );
            continue;
        }
        if b.driver != n.driver {
            dev(
                DEVICE,
                Severity::Warning,
                format!(
                    "driver {} where the baseline has {}",
                    opt(&n.driver),
                    opt(&b.driver)
                ),
                p.to_string(),
                subj.clone(),
            );
        }
        if b.p2pmem != n.p2pmem {
            let pm = |m: &Option<P2pmemRecord>| match m {
                None => "no P2P memory".to_string(),
                Some(m) => format!(
                    "P2P memory of {}{}",
                    m.size
                        .map(crate::units::human_bytes)
                        .unwrap_or_else(|| "unknown size".into()),
                    match m.published {
                        Some(true) => ", published",
                        Some(false) => ", not published",
                        None => "",
                    }
                ),
            };
            let lost = b.p2pmem.is_some() && n.p2pmem.is_none();
            dev(
                DEVICE,
                if lost {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                format!("{} where the baseline has {}", pm(&n.p2pmem), pm(&b.p2pmem)),
                p.to_string(),
                subj.clone(),
            );
        }
        if b.iommu_group_type != n.iommu_group_type {
            dev(
                DEVICE,
                Severity::Warning,
                format!(
                    "IOMMU group type {} where the baseline has {}",
                    opt(&n.iommu_group_type),
                    opt(&b.iommu_group_type)
                ),
                p.to_string(),
                subj.clone(),
            );
        }
        if b.link != n.link {
            let d = |l: &Option<LinkRecord>| {
                l.map(|l| l.describe()).unwrap_or_else(|| "no link".into())
            };
            let worse = match (&n.link, &b.link) {
                (Some(x), Some(y)) => x.below(y),
                (None, Some(_)) => true,
                _ => false,
            };
            dev(
                LINK,
                if worse {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!("link {} where the baseline has {}", d(&n.link), d(&b.link)),
                p.to_string(),
                subj.clone(),
            );
        }
        if b.acs_ctrl != n.acs_ctrl {
            dev(
                ACS,
                Severity::Warning,
                format!(
                    "ACS Control {} where the baseline has {}",
                    acs_text(n.acs_ctrl),
                    acs_text(b.acs_ctrl)
                ),
                p.to_string(),
                subj,
            );
        }
    }
    for (p, n) in &now_dev {
        if !base_dev.contains_key(p) {
            dev(
                DEVICE,
                Severity::Warning,
                format!("{} that the baseline does not have", label(n)),
                p.to_string(),
                bdf(p).into_iter().collect(),
            );
        }
    }

    // Pairs, by the places of their ends.
    let key = |p: &PairRecord| (p.provider.clone(), p.client.clone());
    let base_pairs: BTreeMap<_, &PairRecord> = base.pairs.iter().map(|p| (key(p), p)).collect();
    let now_pairs: BTreeMap<_, &PairRecord> = now.pairs.iter().map(|p| (key(p), p)).collect();
    let ends = |k: &(String, String)| -> Vec<Bdf> {
        [bdf(&k.0), bdf(&k.1)].into_iter().flatten().collect()
    };
    let pair_at = |k: &(String, String)| {
        let name = |p: &str| {
            bdf(p)
                .map(|b| b.to_string())
                .unwrap_or_else(|| p.to_string())
        };
        format!("{} → {}", name(&k.0), name(&k.1))
    };
    for (k, b) in &base_pairs {
        let Some(n) = now_pairs.get(k) else {
            dev(
                PAIR,
                Severity::Warning,
                format!("no such pair here; the baseline predicts {}", b.map_type),
                format!("{} → {}", k.0, k.1),
                ends(k),
            );
            continue;
        };
        if b.map_type != n.map_type {
            dev(
                PAIR,
                if n.map_type > b.map_type {
                    Severity::Error
                } else {
                    Severity::Info
                },
                format!(
                    "map type {} where the baseline has {}",
                    n.map_type, b.map_type
                ),
                pair_at(k),
                ends(k),
            );
        } else if b.distance != n.distance || b.path_class != n.path_class {
            dev(
                PAIR,
                Severity::Warning,
                format!(
                    "path {} distance {} where the baseline has {} distance {}",
                    n.path_class.as_str(),
                    n.distance,
                    b.path_class.as_str(),
                    b.distance
                ),
                pair_at(k),
                ends(k),
            );
        } else if b.acs_redirect != n.acs_redirect {
            dev(
                PAIR,
                Severity::Warning,
                format!(
                    "ACS-redirect bridges [{}] where the baseline has [{}]",
                    n.acs_redirect.join(", "),
                    b.acs_redirect.join(", ")
                ),
                pair_at(k),
                ends(k),
            );
        }
    }
    for k in now_pairs.keys() {
        if !base_pairs.contains_key(k) {
            dev(
                PAIR,
                Severity::Info,
                format!(
                    "a pair the baseline does not have ({})",
                    now_pairs[k].map_type
                ),
                pair_at(k),
                ends(k),
            );
        }
    }

    // One finding per (rule, severity, what): the places it applies to listed.
    let mut grouped: BTreeMap<(&str, Severity, String), Deviation> = BTreeMap::new();
    for d in devs {
        match grouped.entry((d.rule.id, d.severity, d.what.clone())) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(d);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let g = o.get_mut();
                g.at.extend(d.at);
                g.subjects.extend(d.subjects);
            }
        }
    }
    grouped
        .into_values()
        .map(|d| {
            let shown: Vec<&str> = d.at.iter().take(4).map(String::as_str).collect();
            let more = if d.at.len() > 4 {
                format!(" and {} more", d.at.len() - 4)
            } else {
                String::new()
            };
            let subjects: BTreeSet<Bdf> = d.subjects.into_iter().collect();
            d.rule
                .finding(
                    d.severity,
                    Status::Predicted,
                    subjects,
                    format!("{}{more}: {}.", shown.join(", "), d.what),
                )
                .fix(fix_for(d.rule))
                .evidence(d.at.iter().map(|a| format!("at {a}")))
        })
        .collect()
}

fn role_label(r: Role) -> &'static str {
    r.label()
}

fn fix_for(rule: RuleRef) -> &'static str {
    match rule.id {
        "P2P1001" => {
            "Find the cause among this node's other deviations (ACS, links, devices, kernel); `p2pdoctor diff GOOD.tar.gz THIS.tar.gz` compares the two nodes in full. If the new decision is intended, record the baseline again."
        }
        "P2P1002" => {
            "Check that the card is seated and powered and its driver is bound (`lspci -k`); compare the slots with the good node. If the new layout is intended, record the baseline again."
        }
        "P2P1003" => {
            "Reseat the card, check the riser and cable, and compare the BIOS link settings with the good node; `p2pdoctor topo` shows each link."
        }
        "P2P1004" => {
            "Make ACS Control match the good node: the same BIOS settings, and the same pci=disable_acs_redir= or config_acs= kernel parameters (`p2pdoctor explain P2P301`)."
        }
        _ => {
            "Install the same kernel, kernel parameters and IOMMU settings as the good node, or record the baseline again if the change is intended."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_p2p_kernel_parameters_are_kept() {
        assert_eq!(
            relevant_cmdline(
                "BOOT_IMAGE=/vmlinuz root=UUID=abcd ro quiet iommu=pt intel_iommu=on pci=disable_acs_redir=0000:00:03.0 console=ttyS0 pcie_acs_override=downstream"
            ),
            vec![
                "iommu=pt",
                "intel_iommu=on",
                "pci=disable_acs_redir=0000:00:03.0",
                "pcie_acs_override=downstream"
            ]
        );
        assert!(relevant_cmdline("root=/dev/sda1 ro").is_empty());
    }

    #[test]
    fn links_compare_by_generation_and_width() {
        let l = |g, w| LinkRecord {
            generation: Some(g),
            width: Some(w),
        };
        assert!(l(3, 8).below(&l(3, 16)));
        assert!(l(3, 16).below(&l(4, 16)));
        assert!(!l(4, 16).below(&l(4, 16)));
        assert!(!l(5, 16).below(&l(4, 8)));
        let unknown = LinkRecord {
            generation: None,
            width: Some(16),
        };
        assert!(!unknown.below(&l(4, 16)), "unknown speed is not slower");
        assert_eq!(l(4, 16).describe(), "Gen4 x16");
    }
}

//! A site's own rules, written by hand: `check --policy p2p.toml`.
//!
//! ```toml
//! [kernel]
//! min_release = "6.2"      # kernel >= 6.2
//! p2pdma = true            # CONFIG_PCI_P2PDMA=y
//!
//! [iommu]
//! modes = ["off", "identity"]
//!
//! [acs]
//! no_redirect_on = ["switch_downstream", "switch_upstream"]
//!
//! [[link]]
//! devices = "gpu"          # gpu, nvme, nic, accelerator, provider, any, 10de:*, 10de:2330
//! min_gen = 5
//! min_width = 16
//!
//! [[pair]]
//! provider = "nvme"
//! client = "gpu"
//! map_type = "bus_addr"    # or a list
//! ```
//!
//! Every section takes `severity = "warning"` (default `error`). A stage
//! after `diagnose`: it reads the tree and the diagnosis, and returns
//! findings of the policy family (P2P1101..P2P1105).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::diagnose::{
    Diagnosis, Family, Finding, IommuMode, KernelVersion, MapType, Rule, RuleRef, Severity, Stage,
    Status,
};
use crate::pci::AcsFlags;
use crate::topology::{LinkState, NodeId, Role, Tree};

pub const PAIR: RuleRef = RuleRef {
    id: "P2P1101",
    name: "policy-pair",
};
pub const LINK: RuleRef = RuleRef {
    id: "P2P1102",
    name: "policy-link",
};
pub const ACS: RuleRef = RuleRef {
    id: "P2P1103",
    name: "policy-acs",
};
pub const IOMMU: RuleRef = RuleRef {
    id: "P2P1104",
    name: "policy-iommu",
};
pub const KERNEL: RuleRef = RuleRef {
    id: "P2P1105",
    name: "policy-kernel",
};

/// This family's registry entries (crate::diagnose::RULES).
pub(crate) const RULES: &[Rule] = &[
    Rule::elsewhere(PAIR, Family::Policy, Stage::Policy),
    Rule::elsewhere(LINK, Family::Policy, Stage::Policy),
    Rule::elsewhere(ACS, Family::Policy, Stage::Policy),
    Rule::elsewhere(IOMMU, Family::Policy, Stage::Policy),
    Rule::elsewhere(KERNEL, Family::Policy, Stage::Policy),
];

fn default_severity() -> Severity {
    Severity::Error
}

/// The policy file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub kernel: Option<KernelPolicy>,
    #[serde(default)]
    pub iommu: Option<IommuPolicy>,
    #[serde(default)]
    pub acs: Option<AcsPolicy>,
    #[serde(default)]
    pub link: Vec<LinkPolicy>,
    #[serde(default)]
    pub pair: Vec<PairPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelPolicy {
    /// The oldest acceptable release (`6.2`, `6.8.0`).
    pub min_release: Option<String>,
    /// CONFIG_PCI_P2PDMA must be (true) or must not be (false) set.
    pub p2pdma: Option<bool>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IommuPolicy {
    pub modes: Vec<IommuMode>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

/// Kinds of port a policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    RootPort,
    SwitchUpstream,
    SwitchDownstream,
    /// Both kinds of switch port.
    SwitchPorts,
}

impl PortKind {
    fn covers(&self, role: Role) -> bool {
        match self {
            PortKind::RootPort => role == Role::RootPort,
            PortKind::SwitchUpstream => role == Role::SwitchUpstreamPort,
            PortKind::SwitchDownstream => role == Role::SwitchDownstreamPort,
            PortKind::SwitchPorts => {
                matches!(role, Role::SwitchUpstreamPort | Role::SwitchDownstreamPort)
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcsPolicy {
    /// Ports that must not have P2P Request Redirect, Completion Redirect
    /// or Egress Control switched on.
    pub no_redirect_on: Vec<PortKind>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkPolicy {
    pub devices: Selector,
    pub min_gen: Option<u8>,
    pub min_width: Option<u8>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(MapType),
    Many(Vec<MapType>),
}

impl OneOrMany {
    fn list(&self) -> Vec<MapType> {
        match self {
            OneOrMany::One(m) => vec![*m],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairPolicy {
    pub provider: Selector,
    pub client: Selector,
    /// The map types allowed.
    pub map_type: OneOrMany,
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

/// Which devices a policy line is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Selector {
    /// Display controllers (class 03).
    Gpu,
    /// NVMe controllers (class 010802).
    Nvme,
    /// Network and InfiniBand controllers (class 02).
    Nic,
    /// Processing accelerators (class 12).
    Accelerator,
    /// Devices with P2P memory.
    Provider,
    Any,
    /// `10de:2330`, or `10de:*` for every device of a vendor.
    Ids(u16, Option<u16>),
}

impl TryFrom<String> for Selector {
    type Error = String;
    fn try_from(s: String) -> Result<Selector, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "gpu" => Selector::Gpu,
            "nvme" => Selector::Nvme,
            "nic" => Selector::Nic,
            "accelerator" => Selector::Accelerator,
            "provider" => Selector::Provider,
            "any" => Selector::Any,
            other => {
                let bad = || {
                    format!(
                        "`{s}` names no devices: use gpu, nvme, nic, accelerator, provider, any, VENDOR:DEVICE (10de:2330) or VENDOR:* (hex)"
                    )
                };
                let (v, d) = other.split_once(':').ok_or_else(bad)?;
                let v = u16::from_str_radix(v, 16).map_err(|_| bad())?;
                let d = match d {
                    "*" => None,
                    d => Some(u16::from_str_radix(d, 16).map_err(|_| bad())?),
                };
                Selector::Ids(v, d)
            }
        })
    }
}

impl Selector {
    pub fn matches(&self, tree: &Tree, id: NodeId) -> bool {
        let n = tree.node(id);
        if !n.role.is_endpoint() {
            return false;
        }
        let class = n.facts.class.unwrap_or(0);
        match self {
            Selector::Gpu => class >> 16 == 0x03,
            Selector::Nvme => class == 0x010802,
            Selector::Nic => class >> 16 == 0x02,
            Selector::Accelerator => class >> 16 == 0x12,
            Selector::Provider => n.facts.p2pmem.is_some(),
            Selector::Any => true,
            Selector::Ids(v, d) => {
                n.facts.vendor == Some(*v) && d.is_none_or(|d| n.facts.device == Some(d))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Selector::Gpu => "GPU".into(),
            Selector::Nvme => "NVMe".into(),
            Selector::Nic => "network".into(),
            Selector::Accelerator => "accelerator".into(),
            Selector::Provider => "P2P memory provider".into(),
            Selector::Any => "any".into(),
            Selector::Ids(v, Some(d)) => format!("{v:04x}:{d:04x}"),
            Selector::Ids(v, None) => format!("{v:04x}:*"),
        }
    }
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let p: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(k) = &p.kernel
            && let Some(r) = &k.min_release
            && KernelVersion::parse(r).is_none()
        {
            return Err(format!(
                "[kernel] min_release = \"{r}\" is not a kernel version (example: \"6.2\")"
            ));
        }
        for l in &p.link {
            if l.min_gen.is_none() && l.min_width.is_none() {
                return Err(format!(
                    "[[link]] for {} sets neither min_gen nor min_width",
                    l.devices.describe()
                ));
            }
        }
        Ok(p)
    }

    /// Reads a policy file; errors name the file and what to do.
    pub fn load(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the policy {}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "the policy {} is not valid: {e}; see `p2pdoctor help check` for its sections",
                path.display()
            )
        })
    }
}

fn release_at_least(release: &str, min: &str) -> Option<bool> {
    Some(KernelVersion::parse(release)? >= KernelVersion::parse(min)?)
}

/// The findings of every policy line this node breaks.
pub fn evaluate(policy: &Policy, tree: &Tree, diagnosis: &Diagnosis) -> Vec<Finding> {
    let mut out = Vec::new();
    let host = &tree.host;

    if let Some(k) = &policy.kernel {
        if let Some(min) = &k.min_release {
            let release = host.kernel_release.as_deref();
            match release.and_then(|r| release_at_least(r, min)) {
                Some(true) => {}
                Some(false) => out.push(
                    KERNEL
                        .finding(
                            k.severity,
                            Status::Predicted,
                            [],
                            format!(
                                "kernel {} is older than the policy's minimum {min}.",
                                release.unwrap_or("?")
                            ),
                        )
                        .fix(format!("Boot a kernel of release {min} or newer.")),
                ),
                None => out.push(
                    KERNEL
                        .finding(
                            k.severity,
                            Status::Inconclusive,
                            [],
                            format!(
                                "the kernel release could not be read, so the policy's minimum {min} cannot be checked."
                            ),
                        )
                        .fix("Make /proc/sys/kernel/osrelease readable (or capture a snapshot as root)."),
                ),
            }
        }
        if let Some(want) = k.p2pdma {
            match host.p2pdma_config {
                Some(have) if have == want => {}
                Some(_) => out.push(
                    KERNEL
                        .finding(
                            k.severity,
                            Status::Predicted,
                            [],
                            format!(
                                "CONFIG_PCI_P2PDMA is {}; the policy wants it {}.",
                                if host.p2pdma_config == Some(true) { "set" } else { "not set" },
                                if want { "set" } else { "not set" }
                            ),
                        )
                        .fix("Boot a kernel built as the policy says (`p2pdoctor explain P2P101`)."),
                ),
                None => out.push(
                    KERNEL
                        .finding(
                            k.severity,
                            Status::Inconclusive,
                            [],
                            "no kernel config was found, so CONFIG_PCI_P2PDMA cannot be checked against the policy.",
                        )
                        .fix("Install the kernel's config (/boot/config-<release>) or enable /proc/config.gz."),
                ),
            }
        }
    }

    if let Some(i) = &policy.iommu {
        let mode = diagnosis.header.iommu.mode;
        let allowed: Vec<&str> = i.modes.iter().map(IommuMode::as_str).collect();
        if !i.modes.contains(&mode) {
            let status = if mode == IommuMode::Unknown {
                Status::Inconclusive
            } else {
                Status::Predicted
            };
            out.push(
                IOMMU
                    .finding(
                        i.severity,
                        status,
                        [],
                        format!(
                            "the IOMMU is {} ({}); the policy allows {}.",
                            mode,
                            diagnosis.header.iommu.describe,
                            allowed.join(", ")
                        ),
                    )
                    .fix("Set the IOMMU as the policy says: iommu=pt (identity), intel_iommu=off/amd_iommu=off, or the BIOS setting; then reboot."),
            );
        }
    }

    if let Some(a) = &policy.acs {
        for (id, n) in tree.nodes_with_ids() {
            if !a.no_redirect_on.iter().any(|k| k.covers(n.role)) {
                continue;
            }
            let Some(acs) = &n.caps.acs else { continue };
            match acs.ctrl {
                Some(c) if c.0 & AcsFlags::REDIRECTS.0 != 0 => out.push(
                    ACS.finding(
                        a.severity,
                        Status::Predicted,
                        [tree.node(id).bdf()],
                        format!(
                            "{} {} has ACS redirect on (Control {:#06x}: {}); the policy forbids it on this kind of port.",
                            n.role.label(),
                            n.bdf(),
                            c.0,
                            c.names().join(" ")
                        ),
                    )
                    .fix(format!(
                        "Turn the redirect bits off: the kernel parameter pci=disable_acs_redir={} or the BIOS's ACS setting (`p2pdoctor explain P2P301`).",
                        n.bdf()
                    )),
                ),
                Some(_) => {}
                None => out.push(
                    ACS.finding(
                        a.severity,
                        Status::Inconclusive,
                        [n.bdf()],
                        format!(
                            "the ACS Control register of {} could not be read.",
                            n.bdf()
                        ),
                    )
                    .fix("Run as root to read full config space."),
                ),
            }
        }
    }

    for l in &policy.link {
        let want = format!(
            "{}{}",
            l.min_gen.map(|g| format!("Gen{g}")).unwrap_or_default(),
            l.min_width.map(|w| format!(" x{w}")).unwrap_or_default()
        )
        .trim()
        .to_string();
        for (id, n) in tree.nodes_with_ids() {
            if n.facts.missing || !l.devices.matches(tree, id) {
                continue;
            }
            let link = n.link.as_ref();
            let generation = link
                .and_then(|k| k.speed_gts)
                .and_then(LinkState::generation);
            let width = link.and_then(|k| k.width);
            let short_gen = matches!((l.min_gen, generation), (Some(m), Some(g)) if g < m);
            let short_width = matches!((l.min_width, width), (Some(m), Some(w)) if w < m);
            let unknown = (l.min_gen.is_some() && generation.is_none())
                || (l.min_width.is_some() && width.is_none());
            let now = link
                .map(|k| k.describe())
                .unwrap_or_else(|| "no link".into());
            if short_gen || short_width {
                out.push(
                    LINK.finding(
                        l.severity,
                        Status::Predicted,
                        [n.bdf()],
                        format!(
                            "{} {} runs at {now}; the policy wants {} links at {want} at least.",
                            l.devices.describe(),
                            n.bdf(),
                            l.devices.describe()
                        ),
                    )
                    .fix("Move the card to a slot wired for the policy's width and speed, reseat it, check risers and BIOS link settings (`p2pdoctor explain P2P702`)."),
                );
            } else if unknown {
                out.push(
                    LINK.finding(
                        l.severity,
                        Status::Inconclusive,
                        [n.bdf()],
                        format!(
                            "the link of {} {} could not be read ({now}), so the policy's {want} cannot be checked.",
                            l.devices.describe(),
                            n.bdf()
                        ),
                    )
                    .fix("Run as root to read full config space."),
                );
            }
        }
    }

    for rule in &policy.pair {
        let allowed = rule.map_type.list();
        let mut by_type: BTreeMap<MapType, Vec<crate::diagnose::Pair<'_>>> = BTreeMap::new();
        for p in &diagnosis.pairs {
            if p.provider_id() == p.client_id()
                || !rule.provider.matches(tree, p.provider_id())
                || !rule.client.matches(tree, p.client_id())
                || allowed.contains(&p.verdict().map_type)
            {
                continue;
            }
            by_type.entry(p.verdict().map_type).or_default().push(p);
        }
        for (map_type, pairs) in by_type {
            let list: Vec<String> = pairs
                .iter()
                .take(4)
                .map(|p| format!("{} → {}", p.provider(), p.client()))
                .collect();
            let more = if pairs.len() > 4 {
                format!(" and {} more", pairs.len() - 4)
            } else {
                String::new()
            };
            let status = if pairs.iter().all(|p| p.verdict().certain()) {
                Status::Predicted
            } else {
                Status::Inconclusive
            };
            out.push(
                PAIR.finding(
                    rule.severity,
                    status,
                    pairs.iter().flat_map(|p| [p.provider(), p.client()]),
                    format!(
                        "{}{more}: {map_type}; the policy wants {} → {} pairs to be {}.",
                        list.join(", "),
                        rule.provider.describe(),
                        rule.client.describe(),
                        allowed
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                )
                .fix("The other findings about these pairs say why (ACS redirect, host-bridge whitelist, IOMMU); fix those, or put the devices below one switch.")
                .evidence(pairs.iter().map(|p| format!("{} → {}: {}", p.provider(), p.client(), p.verdict().map_type))),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_refuse_what_names_nothing() {
        let s = |t: &str| Selector::try_from(t.to_string());
        assert_eq!(s("GPU"), Ok(Selector::Gpu));
        assert_eq!(s("10de:2330"), Ok(Selector::Ids(0x10de, Some(0x2330))));
        assert_eq!(s("10de:*"), Ok(Selector::Ids(0x10de, None)));
        for bad in ["gpus", "10de", "xyz:1", "10de:zz", ""] {
            assert!(s(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_policy_reads_one_map_type_or_several_and_defaults_to_error() {
        let p = Policy::parse(
            "[[pair]]\nprovider = \"nvme\"\nclient = \"gpu\"\nmap_type = \"bus_addr\"\n\
             [[pair]]\nprovider = \"any\"\nclient = \"any\"\nmap_type = [\"bus_addr\", \"thru_host_bridge\"]\nseverity = \"warning\"\n\
             [iommu]\nmodes = [\"identity\", \"off\"]\n",
        )
        .unwrap();
        assert_eq!(p.pair[0].map_type.list(), vec![MapType::BusAddr]);
        assert_eq!(p.pair[0].severity, Severity::Error);
        assert_eq!(p.pair[1].map_type.list().len(), 2);
        assert_eq!(p.pair[1].severity, Severity::Warning);
        assert_eq!(
            p.iommu.unwrap().modes,
            vec![IommuMode::Passthrough, IommuMode::Off]
        );
        assert!(Policy::parse("").is_ok(), "an empty policy asks nothing");
        assert!(Policy::parse("[acs]\nno_redirect_on = [\"switch\"]\n").is_err());
    }

    #[test]
    fn kernel_minimums_compare_as_versions() {
        assert_eq!(release_at_least("6.10.0-1-amd64", "6.8"), Some(true));
        assert_eq!(release_at_least("6.8.0-45-generic", "6.8"), Some(true));
        assert_eq!(release_at_least("6.1.0-18-amd64", "6.8"), Some(false));
        assert_eq!(release_at_least("garbage", "6.8"), None);
    }
}

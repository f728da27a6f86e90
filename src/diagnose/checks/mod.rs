//! The rules, one file per family. Each family exports its rule IDs as
//! [`RuleRef`] constants and its registry entries as `RULES`: one [`Rule`]
//! per rule, naming the check that finds it. [`RULES`] concatenates them,
//! [`run_all`] runs them, and tests hold them to the catalog.

mod acs;
mod bar;
mod device;
pub(crate) mod facts;
mod host_bridge;
mod iommu;
mod kernel;
mod link;
mod ordering;
mod platform;
mod provider;
pub mod vendor;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::acs_params::{AcsParams, CmdlineEffect};
use super::kernel::{KernelData, KernelModel};
use super::p2pdma::P2pView;
use super::{
    Finding, Header, IommuMode, IommuState, LinkBound, P2pdmaSupport, Pair, PairTable, Severity,
    Status,
};
use crate::pci::Bdf;
use crate::topology::{LinkState, NodeId, Role, Tree};

/// A rule's stable ID and name, as code refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub id: &'static str,
    pub name: &'static str,
}

impl RuleRef {
    pub(crate) fn finding(
        &self,
        severity: Severity,
        status: Status,
        subjects: impl IntoIterator<Item = Bdf>,
        message: impl Into<String>,
    ) -> Finding {
        // Each once, in address order; a group of a million pairs names a
        // few thousand functions, so they are not gathered twice first.
        let subjects: BTreeSet<Bdf> = subjects.into_iter().collect();
        let subjects: Vec<Bdf> = subjects.into_iter().collect();
        Finding {
            rule: self.id.to_string(),
            name: self.name.to_string(),
            severity,
            status,
            subjects,
            message: message.into(),
            fix: None,
            evidence: Vec::new(),
        }
    }
}

impl Finding {
    pub(crate) fn fix(mut self, fix: impl Into<super::fix::Fix>) -> Finding {
        self.fix = Some(fix.into());
        self
    }

    pub(crate) fn evidence(mut self, lines: impl IntoIterator<Item = String>) -> Finding {
        self.evidence.extend(lines);
        self
    }
}

/// A rule's family, as `rules/catalog.toml` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Kernel,
    Platform,
    Provider,
    Acs,
    HostBridge,
    Iommu,
    Ordering,
    Link,
    Device,
    Facts,
    Baseline,
    Policy,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Kernel => "kernel",
            Family::Platform => "platform",
            Family::Provider => "provider",
            Family::Acs => "acs",
            Family::HostBridge => "host_bridge",
            Family::Iommu => "iommu",
            Family::Ordering => "ordering",
            Family::Link => "link",
            Family::Device => "device",
            Family::Facts => "facts",
            Family::Baseline => "baseline",
            Family::Policy => "policy",
        }
    }
}

/// Where a rule's findings come from: what must have run (and on what
/// input) for the rule to be able to fire at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Every diagnosis: [`run_all`] runs its check.
    Diagnose,
    /// A diagnosis whose input holds `nvidia-smi topo -m` (or `-p2p r`):
    /// `diagnose()` compares it with the tree (checks::vendor).
    VendorTopology,
    /// `check --confirm`, after the diagnosis (crate::confirm::pairs).
    Confirm,
    /// `check --baseline` (crate::baseline).
    Baseline,
    /// `check --policy` (crate::policy).
    Policy,
}

/// One walk over the pairs or devices that finds several rules of a
/// family at once, where splitting it would repeat the walk or the
/// decision that sends each case to one rule (an NVMe CMB gets at most one
/// of P2P202, P2P203, P2P204). [`run_all`] runs it once, at its first
/// entry; every finding it returns carries one of `emits`, and each of
/// those rules' entries names this pass.
pub(crate) struct Pass {
    pub run: fn(&Ctx) -> Vec<Finding>,
    pub emits: &'static [RuleRef],
}

/// What finds a rule.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// The rule's own check: every finding it returns carries the rule's ID.
    Check(fn(&Ctx) -> Vec<Finding>),
    /// A pass shared with other rules of the family (a `static`, so that
    /// its address tells it apart).
    Pass(&'static Pass),
    /// Found outside [`run_all`], by the stage named.
    Elsewhere(Stage),
}

/// A rule's entry in the registry: declared in its family's file next to
/// its logic (each family exports `RULES`), in ID order.
#[derive(Clone, Copy)]
pub struct Rule {
    pub rule: RuleRef,
    pub family: Family,
    pub(crate) source: Source,
}

impl Rule {
    pub(crate) const fn check(
        rule: RuleRef,
        family: Family,
        check: fn(&Ctx) -> Vec<Finding>,
    ) -> Rule {
        Rule {
            rule,
            family,
            source: Source::Check(check),
        }
    }

    pub(crate) const fn pass(rule: RuleRef, family: Family, pass: &'static Pass) -> Rule {
        Rule {
            rule,
            family,
            source: Source::Pass(pass),
        }
    }

    pub(crate) const fn elsewhere(rule: RuleRef, family: Family, stage: Stage) -> Rule {
        Rule {
            rule,
            family,
            source: Source::Elsewhere(stage),
        }
    }

    pub fn id(&self) -> &'static str {
        self.rule.id
    }

    pub fn name(&self) -> &'static str {
        self.rule.name
    }

    /// What must run for the rule to fire.
    pub fn stage(&self) -> Stage {
        match self.source {
            Source::Check(_) | Source::Pass(_) => Stage::Diagnose,
            Source::Elsewhere(s) => s,
        }
    }

    /// The rule IDs the findings of this entry's check may carry: its own,
    /// or, for a shared pass, those of every rule the pass finds.
    pub fn may_emit(&self) -> Vec<&'static str> {
        match self.source {
            Source::Pass(p) => p.emits.iter().map(|r| r.id).collect(),
            Source::Check(_) | Source::Elsewhere(_) => vec![self.rule.id],
        }
    }

    /// Every finding a check of this entry returned carries an ID it may
    /// emit (a rule that emitted another rule's ID would escape that
    /// rule's tests and catalog severity).
    pub(crate) fn hold(&self, found: &[Finding]) -> Result<(), String> {
        let may = self.may_emit();
        match found.iter().find(|f| !may.contains(&f.rule.as_str())) {
            Some(f) => Err(format!(
                "the check of {} ({}) emitted a finding of {} (it may emit {}): {}",
                self.rule.id,
                self.rule.name,
                f.rule,
                may.join(", "),
                f.message
            )),
            None => Ok(()),
        }
    }
}

/// The families' entries, concatenated: the registry is in ID order
/// (a test holds it to that and to the catalog).
const FAMILIES: &[&[Rule]] = &[
    kernel::RULES,
    platform::RULES,
    provider::RULES,
    acs::RULES,
    host_bridge::RULES,
    iommu::RULES,
    ordering::RULES,
    link::RULES,
    device::RULES,
    facts::RULES,
    crate::baseline::RULES,
    crate::policy::RULES,
];

const fn count(parts: &[&[Rule]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

const fn concat<const N: usize>(parts: &[&[Rule]]) -> [Rule; N] {
    let mut out = [parts[0][0]; N];
    let (mut i, mut k) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// Every rule, one entry each, in ID order.
pub static RULES: [Rule; count(FAMILIES)] = concat(FAMILIES);

/// What every check sees.
pub(crate) struct Ctx<'a> {
    pub tree: &'a Tree,
    pub kernel: &'a KernelModel,
    /// The whole table (to say which newer kernel would help).
    pub data: &'a KernelData,
    pub view: &'a P2pView,
    /// The command line's effect on each node (by node id).
    pub effects: &'a [CmdlineEffect],
    pub params: &'a AcsParams,
    pub pairs: &'a PairTable,
}

impl Ctx<'_> {
    pub fn bdf(&self, id: NodeId) -> Bdf {
        self.tree.node(id).bdf()
    }

    /// Only the first 64 bytes of config space could be read.
    pub fn truncated(&self, id: NodeId) -> bool {
        self.tree.node(id).facts.config.len() <= 64
    }

    /// Nodes on any pair's route, each once, in address order. Pairs on
    /// one path cross the same bridges, so one pair per path tells them.
    pub fn route_nodes(&self) -> Vec<NodeId> {
        let mut set: BTreeSet<NodeId> = self.pairs.ends().collect();
        for (a, b) in self.pairs.representatives() {
            set.extend(super::pairs::route(self.tree, a, b));
        }
        set.into_iter().collect()
    }

    /// Providers and clients of the pairs, in node order.
    pub fn pair_endpoints(&self) -> Vec<NodeId> {
        self.pairs.ends().collect()
    }

    /// `01:00.0 (nvme0n1)`: a device with its block devices, for messages.
    pub fn label(&self, id: NodeId) -> String {
        let n = self.tree.node(id);
        if n.facts.block_devices.is_empty() {
            n.bdf().to_string()
        } else {
            format!("{} ({})", n.bdf(), n.facts.block_devices.join(", "))
        }
    }
}

/// A device of a class that takes part in P2P DMA in practice (NVMe, SAS
/// and RAID host bus adapters, network and InfiniBand, display, video
/// capture, co-processors, accelerators), or a provider. An unknown class
/// counts. Chipset functions (SATA, USB, SMBus, LPC, audio) do not: `check`
/// hides them unless --all-devices, and findings about them are info.
pub(crate) fn p2p_class(tree: &Tree, id: NodeId) -> bool {
    let n = tree.node(id);
    if n.facts.p2pmem.is_some() {
        return true;
    }
    let Some(class) = n.facts.class else {
        return true;
    };
    let (base, sub) = (class >> 16, (class >> 8) & 0xff);
    matches!(
        (base, sub),
        (0x01, 0x04 | 0x07 | 0x08)
            | (0x02, _)
            | (0x03, _)
            | (0x04, 0x00)
            | (0x0b, _)
            | (0x12, _)
            | (0x0c, 0x04 | 0x06)
    )
}

/// Both ends of the pair are of classes that do P2P; otherwise findings
/// about it are only worth an info line.
pub(crate) fn pair_matters(tree: &Tree, p: Pair<'_>) -> bool {
    p2p_class(tree, p.provider_id()) && p2p_class(tree, p.client_id())
}

/// The note added to findings about pairs that do not matter much.
pub(crate) fn minor_note(ctx: &Ctx, pairs: &[Pair<'_>]) -> String {
    let odd: BTreeSet<String> = pairs
        .iter()
        .flat_map(|p| [p.provider_id(), p.client_id()])
        .filter(|&id| !p2p_class(ctx.tree, id))
        .map(|id| {
            let n = ctx.tree.node(id);
            format!("{} (class {:06x})", n.bdf(), n.facts.class.unwrap_or(0))
        })
        .collect();
    format!(
        " Reported as info: {} {} not of a class that usually does P2P DMA (the block layer only does it for NVMe).",
        odd.into_iter().collect::<Vec<_>>().join(", "),
        if pairs.len() == 1 { "is" } else { "are" }
    )
}

/// `a → b, c → d and 3 more`.
pub(crate) fn pair_list(pairs: &[Pair<'_>]) -> String {
    const SHOWN: usize = 4;
    let mut s: Vec<String> = pairs
        .iter()
        .take(SHOWN)
        .map(|p| format!("{} → {}", p.provider(), p.client()))
        .collect();
    if pairs.len() > SHOWN {
        s.push(format!("and {} more", pairs.len() - SHOWN));
    }
    s.join(", ")
}

/// The subject of a sentence about pairs: `a → b` for one pair (read "a
/// and b"), `3 pairs (a → b, ...)` for more.
pub(crate) fn pairs_phrase(pairs: &[Pair<'_>]) -> String {
    match pairs {
        [one] => format!("{} → {}", one.provider(), one.client()),
        _ => format!("{} pairs ({})", pairs.len(), pair_list(pairs)),
    }
}

pub(crate) fn bdf_list(list: impl IntoIterator<Item = Bdf>) -> String {
    list.into_iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    super::plural(n, one, many)
}

/// Every pair's predicted kernel-log lines, each once (they name the pair,
/// so a group shows them all), with the note on when they appear.
pub(crate) fn kernel_evidence(pairs: &[Pair<'_>]) -> Vec<String> {
    // A group can hold millions of pairs: the first lines, each once, and
    // how many more there are.
    const SHOWN: usize = 16;
    let mut evidence: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut more = 0usize;
    for p in pairs {
        if evidence.len() >= SHOWN {
            more += p.verdict().kernel_lines.len();
            continue;
        }
        for m in p.kernel_messages() {
            if seen.insert(m.clone()) {
                evidence.push(format!("kernel: {m}"));
            }
        }
    }
    if more > 0 {
        evidence.push(format!(
            "kernel: ... and {more} more lines like these, for the other pairs"
        ));
    }
    if !evidence.is_empty() {
        evidence.push(format!(
            "kernel lines above: {}",
            crate::diagnose::p2pdma::KERNEL_MESSAGES_NOTE
        ));
    }
    evidence
}

/// A value computed once per path and shared by every pair on it: the
/// words a group's key needs (a host bridge's reason, a whitelist entry)
/// are the same for all of a path's pairs, and a server has millions of
/// pairs over a few thousand paths.
pub(crate) struct PerPath<T> {
    cache: std::cell::RefCell<Vec<Option<std::rc::Rc<T>>>>,
}

impl<T> PerPath<T> {
    pub fn new(pairs: &PairTable) -> Self {
        PerPath {
            cache: std::cell::RefCell::new((0..pairs.paths().len()).map(|_| None).collect()),
        }
    }

    /// `f(p)` for the first pair of `p`'s path, then the same value.
    pub fn get(&self, p: Pair<'_>, f: impl FnOnce(Pair<'_>) -> T) -> std::rc::Rc<T> {
        let id = p.path_id() as usize;
        if let Some(v) = &self.cache.borrow()[id] {
            return v.clone();
        }
        let v = std::rc::Rc::new(f(p));
        self.cache.borrow_mut()[id] = Some(v.clone());
        v
    }
}

/// Groups pair reports by a key, keeping first-seen order of the keys.
/// Called over every pair (15 million on a 4,096-function server): a pair
/// usually has its predecessor's key (pairs come provider by provider,
/// and neighbours sit alike), so that key is tried first, and the map is
/// searched once, not twice, for the rest.
pub(crate) fn group_pairs<P: Copy, K: Ord + Clone>(
    pairs: impl IntoIterator<Item = P>,
    key: impl Fn(P) -> Option<K>,
) -> Vec<(K, Vec<P>)> {
    let mut groups: Vec<(K, Vec<P>)> = Vec::new();
    let mut index: BTreeMap<K, usize> = BTreeMap::new();
    let mut last: Option<usize> = None;
    for p in pairs {
        let Some(k) = key(p) else { continue };
        let i = match last {
            Some(i) if groups[i].0 == k => i,
            _ => match index.get(&k) {
                Some(&i) => i,
                None => {
                    index.insert(k.clone(), groups.len());
                    groups.push((k, Vec::new()));
                    groups.len() - 1
                }
            },
        };
        groups[i].1.push(p);
        last = Some(i);
    }
    groups
}

/// Every finding of the diagnosis proper: each entry's check in registry
/// order, each shared pass once. Findings are sorted afterwards (stably),
/// so only the order of one rule's own findings shows.
pub(crate) fn run_all(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut passes: Vec<&'static Pass> = Vec::new();
    for rule in &RULES {
        let found = match rule.source {
            Source::Check(check) => check(ctx),
            Source::Pass(pass) => {
                if passes.iter().any(|p| std::ptr::eq(*p, pass)) {
                    continue;
                }
                passes.push(pass);
                (pass.run)(ctx)
            }
            Source::Elsewhere(_) => continue,
        };
        out.extend(held(rule, found));
    }
    // Every kernel parameter a rule asks for, with how to keep it on this
    // machine's boot loader.
    for f in &mut out {
        if let Some(fix) = &mut f.fix {
            fix.persist = super::fix::persist(fix, &ctx.tree.host.boot);
        }
    }
    out
}

/// `found`, held to `rule`'s entry: debug builds (every test) panic on a
/// finding the entry may not emit ([`Rule::hold`]).
pub(crate) fn held(rule: &Rule, found: Vec<Finding>) -> Vec<Finding> {
    if cfg!(debug_assertions)
        && let Err(e) = rule.hold(&found)
    {
        panic!("{e}");
    }
    found
}

/// Usable bandwidth of a link in GB/s, one direction: 8b/10b below
/// 8 GT/s, 128b/130b up to 32 GT/s, FLIT mode (242/256) at 64 GT/s.
pub(crate) fn link_gbytes(speed_gts: f64, width: u8) -> f64 {
    let efficiency = if speed_gts < 8.0 {
        0.8
    } else if speed_gts < 64.0 {
        128.0 / 130.0
    } else {
        242.0 / 256.0
    };
    speed_gts * f64::from(width) * efficiency / 8.0
}

fn link_bound(bdf: Bdf, link: &LinkState) -> Option<LinkBound> {
    let (speed, width) = (link.speed_gts?, link.width?);
    if width == 0 {
        return None;
    }
    let gbytes = (link_gbytes(speed, width) * 100.0).round() / 100.0;
    Some(LinkBound {
        bdf,
        link: link.describe(),
        gbytes_per_s: gbytes,
    })
}

/// A node's own link bandwidth (its upstream link), if known.
pub(crate) fn own_link(tree: &Tree, id: NodeId) -> Option<LinkBound> {
    let n = tree.node(id);
    link_bound(n.bdf(), n.link.as_ref()?)
}

/// The links the traffic between `a` and `b` crosses: each node's upstream
/// link, except where the "link" is a switch's internal bus (downstream
/// ports) or a root port's own link (its child reports the same link).
/// Root-complex integrated endpoints have no link to cross. Returns the
/// narrowest link whose speed and width are known, and whether every
/// crossed link was known (else the narrowest may be one not read).
pub(crate) fn path_links(tree: &Tree, a: NodeId, b: NodeId) -> (Option<LinkBound>, bool) {
    let path = tree.path(a, b);
    let crossed: Vec<NodeId> = std::iter::once(a)
        .chain(path.up_from_a.iter().copied())
        .chain(std::iter::once(b))
        .chain(path.up_from_b.iter().copied())
        .filter(|&id| {
            !matches!(
                tree.node(id).role,
                Role::SwitchDownstreamPort
                    | Role::RootPort
                    | Role::RcIntegratedEndpoint
                    | Role::RcEventCollector
                    | Role::HostBridgeDevice
            )
        })
        .collect();
    let bounds: Vec<Option<(LinkBound, f64)>> = crossed
        .iter()
        .map(|&id| {
            let b = own_link(tree, id)?;
            // Among equally narrow links, the one that cannot do more
            // (a Gen4 switch's uplink rather than a Gen5 GPU trained at
            // Gen4 below it) names the cause.
            let cap = tree
                .node(id)
                .link
                .as_ref()
                .and_then(|l| Some(link_gbytes(l.max_speed_gts?, l.max_width?)))
                .unwrap_or(f64::INFINITY);
            Some((b, cap))
        })
        .collect();
    let all_known = !bounds.is_empty() && bounds.iter().all(Option::is_some);
    let narrowest = bounds
        .into_iter()
        .flatten()
        .min_by(|x, y| {
            x.0.gbytes_per_s
                .total_cmp(&y.0.gbytes_per_s)
                .then(x.1.total_cmp(&y.1))
        })
        .map(|x| x.0);
    (narrowest, all_known)
}

/// The report header: host, kernel, IOMMU mode, P2PDMA support.
pub(crate) fn header(tree: &Tree, kernel: &KernelModel, params: &AcsParams) -> Header {
    let h = &tree.host;
    let cpu = h.cpu.vendor.as_ref().map(|v| {
        let fam = h
            .cpu
            .family
            .map(|f| format!(" family 0x{f:x}"))
            .unwrap_or_default();
        match &h.cpu.model_name {
            Some(m) => format!("{m} ({v}{fam})"),
            None => format!("{v}{fam}"),
        }
    });
    let user_space = h
        .kernel_release
        .as_deref()
        .and_then(super::KernelVersion::parse)
        .map(|_| kernel.user_space_p2pdma);
    let min = kernel.features.user_space_p2pdma;
    let describe = match (h.p2pdma_config, user_space) {
        (Some(false), _) => "not available: CONFIG_PCI_P2PDMA is not set".to_string(),
        (Some(true), Some(true)) => {
            format!("CONFIG_PCI_P2PDMA=y, kernel >= {min}: user-space P2P supported")
        }
        (Some(true), Some(false)) => {
            format!("CONFIG_PCI_P2PDMA=y but kernel < {min}: in-kernel users only")
        }
        (None, Some(true)) => {
            format!("kernel >= {min}; CONFIG_PCI_P2PDMA unknown (no kernel config found)")
        }
        (None, Some(false)) => format!("kernel < {min}: no user-space P2P"),
        (_, None) => "unknown: the kernel release could not be read".to_string(),
    };
    Header {
        hostname: h.hostname.clone(),
        kernel_release: h.kernel_release.clone(),
        kernel_model: kernel.version,
        kernel_assumed: kernel.assumed,
        kernel_basis: kernel.basis.clone(),
        cpu,
        iommu: iommu_state(tree),
        p2pdma: P2pdmaSupport {
            config: h.p2pdma_config,
            user_space,
            describe,
        },
        acs_parameters: params.clone(),
        virtualization: h.virtualization.clone(),
    }
}

/// Whether the command line makes identity (passthrough) the default.
pub(crate) fn passthrough_by_cmdline(tree: &Tree) -> bool {
    let c = &tree.host.cmdline;
    c.iommu.as_deref() == Some("pt")
        || c.iommu_passthrough
            .as_deref()
            .is_some_and(|v| v == "1" || v == "on" || v == "y")
}

fn iommu_state(tree: &Tree) -> IommuState {
    let units: Vec<String> = tree
        .host
        .iommu_units
        .iter()
        .map(|u| u.name.clone())
        .collect();
    let kind = tree
        .host
        .iommu_units
        .first()
        .map(|u| u.kind.clone())
        .unwrap_or_else(|| "none".to_string());
    if units.is_empty() && tree.host.sources.iommu_units.is_none() {
        // An evidence file without `IOMMU group:` lines.
        return IommuState {
            kind: "unknown".into(),
            mode: IommuMode::Unknown,
            units,
            describe: "unknown: not in the input (`sudo lspci -vvv` shows IOMMU groups; `ls /sys/class/iommu`)".into(),
        };
    }
    if units.is_empty() {
        return IommuState {
            kind,
            mode: IommuMode::Off,
            units,
            describe: "none registered: DMA addresses are physical".into(),
        };
    }
    let types: BTreeSet<&str> = tree
        .nodes
        .iter()
        .filter_map(|n| n.facts.iommu_group_type.as_deref())
        .collect();
    // The driver's own per-device entries (debugfs) where the groups'
    // types could not be read.
    let debugfs = tree
        .host
        .iommu_debugfs
        .as_ref()
        .filter(|_| types.is_empty());
    let driver_says = |want: crate::scan::iommu_debugfs::DmaTranslation| {
        debugfs.is_some_and(|d| d.devices.iter().any(|x| x.translation == want))
    };
    let translated = types.iter().any(|t| t.starts_with("DMA"))
        || driver_says(crate::scan::iommu_debugfs::DmaTranslation::Translated);
    let identity = types.contains("identity")
        || driver_says(crate::scan::iommu_debugfs::DmaTranslation::Identity);
    let mode = match (translated, identity) {
        (true, true) => IommuMode::Mixed,
        (true, false) => IommuMode::Translated,
        (false, true) => IommuMode::Passthrough,
        (false, false) if passthrough_by_cmdline(tree) => IommuMode::Passthrough,
        (false, false) => IommuMode::Unknown,
    };
    let describe = match mode {
        IommuMode::Translated if types.is_empty() => {
            format!("{kind}, translating DMA (the driver's context entries in debugfs)")
        }
        IommuMode::Mixed if types.is_empty() => format!(
            "{kind}, some devices translated, some identity (the driver's context entries in debugfs)"
        ),
        IommuMode::Translated => format!(
            "{kind}, translating DMA ({})",
            types.iter().copied().collect::<Vec<_>>().join(", ")
        ),
        IommuMode::Passthrough => format!("{kind}, passthrough (identity)"),
        IommuMode::Mixed => format!(
            "{kind}, some groups translated, some identity ({})",
            types.iter().copied().collect::<Vec<_>>().join(", ")
        ),
        _ => format!("{kind}, domain type unknown"),
    };
    IommuState {
        kind,
        mode,
        units,
        describe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_first_seen_order_and_every_member() {
        // Keys by tens; 25 has none. Runs of one key, and keys that come back.
        let items = [10, 11, 20, 25, 12, 30, 21, 31, 13];
        let groups = group_pairs(items, |n| (n != 25).then_some(n / 10));
        assert_eq!(
            groups,
            vec![
                (1, vec![10, 11, 12, 13]),
                (2, vec![20, 21]),
                (3, vec![30, 31])
            ]
        );
        assert!(group_pairs([25], |n: i32| (n != 25).then_some(n)).is_empty());
    }

    #[test]
    fn link_bandwidth() {
        assert!((link_gbytes(8.0, 4) - 3.94).abs() < 0.01);
        assert!((link_gbytes(2.5, 1) - 0.25).abs() < 0.001);
        assert!((link_gbytes(16.0, 16) - 31.5).abs() < 0.05);
    }

    #[test]
    fn registry_and_catalog_agree() {
        let catalog = crate::diagnose::Catalog::embedded();
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable_by_key(|id| crate::diagnose::catalog::id_order(id));
        assert_eq!(ids, sorted, "the registry is in ID order");
        ids.dedup();
        assert_eq!(ids.len(), RULES.len(), "one entry per rule");
        for r in &RULES {
            let info = catalog
                .find(r.id())
                .unwrap_or_else(|| panic!("{} is not in rules/catalog.toml", r.id()));
            assert_eq!(info.id, r.id(), "{} is found by its ID", r.id());
            assert_eq!(info.name, r.name(), "{}", r.id());
            assert_eq!(info.family, r.family.as_str(), "{}", r.id());
        }
        for info in &catalog.rules {
            let entries = RULES.iter().filter(|r| r.id() == info.id).count();
            assert_eq!(entries, 1, "{} has {entries} registry entries", info.id);
        }
    }

    /// A pass names exactly the entries that name it.
    #[test]
    fn shared_passes_and_their_entries_agree() {
        for r in &RULES {
            let Source::Pass(pass) = r.source else {
                continue;
            };
            assert!(
                pass.emits.contains(&r.rule),
                "{}'s pass does not list it",
                r.id()
            );
            for e in pass.emits {
                let entry = RULES.iter().find(|x| x.id() == e.id).unwrap();
                assert!(
                    matches!(entry.source, Source::Pass(p) if std::ptr::eq(p, pass)),
                    "{} is emitted by {}'s pass but its entry names another source",
                    e.id,
                    r.id()
                );
                assert_eq!(entry.family, r.family, "{} and {}", e.id, r.id());
            }
        }
    }

    fn some_finding(rule: RuleRef) -> Finding {
        rule.finding(Severity::Info, Status::Predicted, [], "m")
    }

    #[test]
    fn an_entry_holds_its_checks_findings_to_its_ids() {
        let own = Rule::check(kernel::TOO_OLD, Family::Kernel, |_| Vec::new());
        assert!(own.hold(&[some_finding(kernel::TOO_OLD)]).is_ok());
        let err = own
            .hold(&[
                some_finding(kernel::TOO_OLD),
                some_finding(kernel::NO_P2PDMA),
            ])
            .unwrap_err();
        assert!(err.contains("P2P102") && err.contains("P2P101"), "{err}");
        // A pass may emit each of its rules, and no other.
        let entry = RULES.iter().find(|r| r.id() == "P2P203").unwrap();
        assert!(
            entry
                .hold(&[
                    some_finding(provider::NOT_PUBLISHED),
                    some_finding(provider::TOO_SMALL)
                ])
                .is_ok()
        );
        assert!(entry.hold(&[some_finding(provider::EXHAUSTED)]).is_err());
    }
}

//! Diagnosis: what the kernel will decide for every pair of devices, and
//! every risk on the way, each with a fix.
//!
//! Input is a [`Tree`] (and the host facts in it); output is a
//! [`Diagnosis`]: plain values the renderers turn into text or JSON.
//!
//! - [`p2pdma`] mirrors the kernel's `calc_map_type_and_dist()` as a pure
//!   function, [`acs_params`] the `pci=disable_acs_redir=`/`config_acs=`
//!   matching, [`kernel`] the per-release whitelist (data in
//!   `rules/kernel.toml`);
//! - `checks/` holds one file per rule family; [`catalog`] the words of
//!   every rule (data in `rules/catalog.toml`).
//!
//! Findings are `predicted` here, `inconclusive` when the facts they need
//! could not be read; the confirm stage's results, taken in by
//! [`Diagnosis::settle`] ([`settle`]), turn them `confirmed` or `refuted`.

pub mod acs_params;
pub mod catalog;
mod checks;
pub mod fix;

pub use checks::vendor::{Mapping, VendorComparison, VendorDevice, VendorPair};
pub mod kernel;
pub mod matrix;
pub mod p2pdma;
pub mod pairs;
pub mod select;
pub mod settle;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::pci::Bdf;
use crate::topology::{NodeId, Role, Tree};

pub use catalog::{Catalog, RuleInfo, Severity};
pub use checks::facts::{CONTRADICTED as RULE_CONTRADICTED, MISMATCH as RULE_MISMATCH};
pub use checks::{Family, RULES, Rule, RuleRef, Stage};
pub use fix::{Fix, KernelParam};
pub use kernel::{KernelData, KernelModel, KernelVersion};
pub use p2pdma::{MapType, P2pView, PairVerdict, Verdict};
pub use pairs::{Pair, PairPath, PairTable, PathId};
pub use settle::{PairConfirm, PairOutcome, PairResult};

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Predicted from the facts read; not tried.
    Predicted,
    /// The facts it needs could not be read (not root, missing files).
    Inconclusive,
    /// A real P2P operation showed it.
    Confirmed,
    /// A real P2P operation contradicted it.
    Refuted,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Predicted => "predicted",
            Status::Inconclusive => "inconclusive",
            Status::Confirmed => "confirmed",
            Status::Refuted => "refuted",
        }
    }
}

/// One risk, with its subjects and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `P2P301`
    pub rule: String,
    /// `acs-redirect`
    pub name: String,
    pub severity: Severity,
    pub status: Status,
    /// The devices it is about, sorted.
    pub subjects: Vec<Bdf>,
    pub message: String,
    pub fix: Option<fix::Fix>,
    /// Kernel log lines it predicts, register values, pairs: supporting lines.
    pub evidence: Vec<String>,
}

impl Finding {
    /// Whether this finding alone makes `check` exit non-zero at
    /// `fail_on`, by the same rules as [`Diagnosis::exit_code`]: predicted
    /// or confirmed errors always, warnings at `--fail-on warning`, and an
    /// inconclusive warning or error counts as a warning (an unreadable
    /// fact is never "all clear"). Refuted findings never fail.
    pub fn fails(&self, fail_on: FailOn) -> bool {
        let counted = matches!(self.status, Status::Predicted | Status::Confirmed);
        match (self.severity, self.status) {
            (Severity::Error, _) if counted => true,
            (Severity::Info, _) | (_, Status::Refuted) => false,
            _ => fail_on == FailOn::Warning,
        }
    }
}

/// The threshold for a non-zero exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailOn {
    /// Exit 1 on warnings, 2 on errors.
    #[default]
    Warning,
    /// Exit 2 on errors; warnings alone exit 0.
    Error,
}

/// Exit statuses of `check` (documented in `--help`).
pub const EXIT_CLEAR: i32 = 0;
pub const EXIT_WARNINGS: i32 = 1;
pub const EXIT_ERRORS: i32 = 2;

/// What the IOMMU does with DMA, over the whole machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IommuMode {
    /// No IOMMU registered: DMA addresses are physical.
    Off,
    /// Identity for every device the host owns. Also spelled `identity`
    /// (the IOMMU group type's word) in a site policy.
    #[serde(alias = "identity")]
    Passthrough,
    /// DMA is translated (`DMA`, `DMA-FQ` domains).
    Translated,
    /// Some groups translated, some identity.
    Mixed,
    /// Units are registered, but what they do could not be read.
    Unknown,
}

impl IommuMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            IommuMode::Off => "off",
            IommuMode::Passthrough => "passthrough",
            IommuMode::Translated => "translated",
            IommuMode::Mixed => "mixed",
            IommuMode::Unknown => "unknown",
        }
    }

    /// Some DMA may be translated (or nothing says it is not).
    pub fn may_translate(&self) -> bool {
        matches!(
            self,
            IommuMode::Translated | IommuMode::Mixed | IommuMode::Unknown
        )
    }
}

impl std::fmt::Display for IommuMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the IOMMU treats DMA on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IommuState {
    /// `none`, `intel`, `amd`, `arm-smmu`, ...
    pub kind: String,
    pub mode: IommuMode,
    pub units: Vec<String>,
    /// One line for people.
    pub describe: String,
}

/// Whether this kernel can do user-space P2P at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct P2pdmaSupport {
    /// CONFIG_PCI_P2PDMA (None: no kernel config found).
    pub config: Option<bool>,
    /// Release >= 6.2 (None: release unknown).
    pub user_space: Option<bool>,
    pub describe: String,
}

/// The header of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    pub hostname: Option<String>,
    pub kernel_release: Option<String>,
    /// The kernel version whose P2PDMA rules were applied.
    pub kernel_model: KernelVersion,
    /// The release was unknown: the newest kernel was assumed.
    pub kernel_assumed: bool,
    /// What the kernel model was chosen from: the release string (with its
    /// stable number, if any) and live evidence that overrode a gate.
    pub kernel_basis: Vec<String>,
    pub cpu: Option<String>,
    pub iommu: IommuState,
    pub p2pdma: P2pdmaSupport,
    pub acs_parameters: acs_params::AcsParams,
    /// A virtual machine: every verdict is about the hypervisor's
    /// topology, not the physical machine's.
    pub virtualization: Option<crate::scan::Virtualization>,
}

/// A device that takes part in the pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSummary {
    pub bdf: Bdf,
    pub name: String,
    pub role: Role,
    pub provider: bool,
    pub driver: Option<String>,
    pub block_devices: Vec<String>,
    pub numa_node: Option<i32>,
    pub host_bridge: String,
}

/// The narrowest link on a pair's path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkBound {
    /// The device whose Link Status describes the link.
    pub bdf: Bdf,
    /// `Gen3 x4`
    pub link: String,
    /// Usable bandwidth in one direction, GB/s.
    pub gbytes_per_s: f64,
}

/// The verdict of the kernel's rules alone: the worst finding that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// No warning or error (info findings do not count).
    #[default]
    Clear,
    /// Warnings, or inconclusive findings (never "all clear").
    Warnings,
    /// Errors: the kernel will refuse a pair, or P2P cannot work at all.
    Errors,
}

impl Level {
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Clear => "clear",
            Level::Warnings => "warnings",
            Level::Errors => "errors",
        }
    }
}

/// What the transfers of `check --confirm` showed, over every pair tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verified {
    /// Every pair that was settled behaved as predicted, and the data
    /// arrived intact wherever the kernel allowed the transfer.
    AsPredicted,
    /// A pair the kernel allowed moved data that did not verify.
    DataMismatch,
    /// A pair did not do what the kernel's rules predicted (P2P902).
    NotAsPredicted,
    /// Experiments ran, but none settled a pair (skipped or failed).
    Unsettled,
}

impl Verified {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verified::AsPredicted => "as_predicted",
            Verified::DataMismatch => "data_mismatch",
            Verified::NotAsPredicted => "not_as_predicted",
            Verified::Unsettled => "unsettled",
        }
    }
}

/// The second tier: transfers that were tried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub outcome: Verified,
    /// Pairs with an experiment (skipped ones included).
    pub pairs_tried: usize,
    /// Pairs whose experiment settled the prediction (allowed or refused).
    pub pairs_settled: usize,
    /// Pairs whose data moved and verified.
    pub pairs_ok: usize,
}

/// Why a verdict needs a word more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaveatKind {
    /// Refused pairs whose findings are only info: one end is a device of
    /// a class that does not do P2P DMA.
    RefusedMinorPairs,
    /// Refused pairs of P2P devices without an error (suppressed, or a
    /// rule that reports them at a lower severity).
    RefusedNotReported,
    /// Pairs mapped by bus address while an IOMMU translates DMA: the lab
    /// showed such a write reporting success with data that did not
    /// arrive (docs/ARCHITECTURE.md, case 4).
    IommuWithoutAcs,
}

/// One sentence the verdict must carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Caveat {
    pub kind: CaveatKind,
    pub message: String,
}

/// The verdict in two tiers: what the kernel's rules predict, and what a
/// transfer verified (None: nothing was tried).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ReportVerdict {
    pub predicted: Level,
    pub verified: Option<Verification>,
    pub caveats: Vec<Caveat>,
}

impl ReportVerdict {
    /// `predicted by the kernel's rules` or `verified by a transfer`.
    pub fn established(&self) -> &'static str {
        match &self.verified {
            Some(v) if v.outcome != Verified::Unsettled => "verified by a transfer",
            _ => "predicted by the kernel's rules",
        }
    }
}

/// Counts and a one-line verdict.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Summary {
    pub verdict: ReportVerdict,
    pub headline: String,
    pub errors: usize,
    pub warnings: usize,
    pub info: usize,
    pub inconclusive: usize,
    /// Findings a config file suppressed (listed in `suppressed`).
    pub suppressed: usize,
    pub pairs: usize,
    pub bus_addr: usize,
    pub thru_host_bridge: usize,
    pub not_supported: usize,
}

/// Everything `check` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub header: Header,
    pub summary: Summary,
    /// Devices in the pairs, in address order.
    pub devices: Vec<DeviceSummary>,
    pub pairs: PairTable,
    /// Most severe first.
    pub findings: Vec<Finding>,
    pub limitations: Vec<String>,
    /// Every endpoint was taken as a hypothetical provider.
    pub all_pairs: bool,
    /// ... because the input cannot show p2pmem (an evidence file), not
    /// because --all-pairs was given.
    pub all_pairs_implied: bool,
    /// The vendor's tool (`nvidia-smi topo -m`) beside p2pdoctor's path
    /// classes, when it ran or a capture holds its output.
    pub vendor_topology: Option<VendorComparison>,
    /// GPUs, NICs, NVMe and accelerators and the path class between each
    /// two (`nvidia-smi topo -m` style), when there are two or more.
    pub class_matrix: Option<matrix::ClassMatrix>,
    /// Every endpoint function (not bridges or ports): whether it does
    /// P2P and the names the OS gives it, for the selection.
    pub endpoints: BTreeMap<Bdf, select::Endpoint>,
    /// What `check` shows and hides, and why ([`select::apply`]).
    pub selection: select::SelectionReport,
    /// Findings a config file suppressed, each with its reason.
    pub suppressed: Vec<select::Suppressed>,
}

/// What to diagnose.
#[derive(Debug, Clone)]
pub struct Options {
    /// Treat every DMA-capable endpoint as a provider.
    pub all_pairs: bool,
    /// `all_pairs` was set because the input shows no p2pmem state.
    pub all_pairs_implied: bool,
    /// Only pairs (and matrix rows) of these kinds of device; all when
    /// empty.
    pub roles: Vec<matrix::DeviceKind>,
    pub kernel_data: KernelData,
    pub catalog: Catalog,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            all_pairs: false,
            all_pairs_implied: false,
            roles: Vec::new(),
            kernel_data: KernelData::embedded(),
            catalog: Catalog::embedded(),
        }
    }
}

impl Diagnosis {
    /// Sorts the findings again and recounts, after `check --confirm`
    /// changed statuses or added findings.
    pub fn resummarize(&mut self) {
        sort_findings(&mut self.findings);
        self.summary = summarize(self);
    }

    /// 0 all clear, 1 warnings, 2 errors, from the summary's predicted
    /// verdict: the findings shown plus those hidden only by
    /// `--min-severity`, never suppressed ones. Inconclusive warnings and
    /// errors count as warnings: an unreadable fact is never "all clear".
    pub fn exit_code(&self, fail_on: FailOn) -> i32 {
        match (self.summary.verdict.predicted, fail_on) {
            (Level::Errors, _) => EXIT_ERRORS,
            (Level::Warnings, FailOn::Warning) => EXIT_WARNINGS,
            _ => EXIT_CLEAR,
        }
    }
}

/// A function that can master DMA to a peer: an endpoint of a class that
/// does (not bridges, system peripherals, SMBus, RAM controllers).
pub fn dma_capable(tree: &Tree, id: NodeId) -> bool {
    let n = tree.node(id);
    if !n.role.is_endpoint() {
        return false;
    }
    let class = n.facts.class.unwrap_or(0);
    let (base, sub) = (class >> 16, (class >> 8) & 0xff);
    !matches!((base, sub), (0x05 | 0x06 | 0x08 | 0xff, _) | (0x0c, 0x05))
}

/// A P2P provider without a p2pmem pool: from 6.19 vfio-pci (and its
/// variant drivers, all named `*vfio-pci`/`*vfio_pci`) calls
/// pcim_p2pdma_init() for every device it binds, so its BARs can be
/// exported as dma-buf for P2P ("vfio/pci: Enable peer-to-peer DMA
/// transactions by default"). No p2pmem/ directory appears (the sysfs
/// group is created only with a pool, pci_p2pdma_setup_pool()), and
/// pci_p2pmem_find_many() does not offer them.
pub fn pool_less_provider(tree: &Tree, id: NodeId) -> bool {
    let n = tree.node(id);
    n.facts.p2pmem.is_none()
        && n.role.is_endpoint()
        && n.facts.driver.as_deref().is_some_and(|d| {
            let d = d.replace('_', "-");
            d == "vfio-pci" || d.ends_with("-vfio-pci")
        })
}

/// Runs every check over the tree.
pub fn diagnose(tree: &Tree, opts: &Options) -> Diagnosis {
    let allocate_seen = tree
        .nodes
        .iter()
        .any(|n| n.facts.p2pmem.as_ref().and_then(|m| m.allocate) == Some(true))
        .then_some(true);
    let kernel = opts
        .kernel_data
        .for_release(tree.host.kernel_release.as_deref())
        .with_live_evidence(allocate_seen);
    let params = &tree.host.cmdline.acs;
    let (view, effects) = P2pView::from_tree(tree, params, &kernel);

    let mut candidates: Vec<NodeId> = tree.ids().filter(|&i| dma_capable(tree, i)).collect();
    let mut providers: Vec<NodeId> = tree
        .ids()
        .filter(|&i| {
            tree.node(i).facts.p2pmem.is_some()
                || (kernel.pool_less_providers && pool_less_provider(tree, i))
        })
        .collect();
    let mut notes = Vec::new();
    if opts.all_pairs_implied {
        let (p, c, n) = implied_pairs(tree, candidates);
        (providers, candidates, notes) = (p, c, n);
    } else if opts.all_pairs {
        providers.extend(candidates.iter().copied());
        providers.sort_unstable();
        providers.dedup();
    }
    // Every client, the provider itself included: calc_map_type_and_dist()
    // computes (provider, provider) too (distance 0, and the first step of
    // its walk checks ACS redirect on the provider function itself): an
    // NVMe reading into its own CMB is that pair.
    if !opts.roles.is_empty() {
        // --role: only the kinds of device asked for, on both ends.
        let wanted = |i: &NodeId| {
            matrix::DeviceKind::of_class(tree.node(*i).facts.class)
                .is_some_and(|k| opts.roles.contains(&k))
        };
        candidates.retain(wanted);
        providers.retain(wanted);
    }
    let mut builder = pairs::Builder::new(tree, &view, &kernel);
    builder.reserve(providers.len() * candidates.len());
    for &p in &providers {
        for &c in &candidates {
            builder.push(p, c);
        }
    }
    let pairs = builder.finish();

    let ctx = checks::Ctx {
        tree,
        kernel: &kernel,
        data: &opts.kernel_data,
        view: &view,
        effects: &effects,
        params,
        pairs: &pairs,
    };
    let mut findings = checks::run_all(&ctx);
    let vendor_topology = tree
        .host
        .nvidia_topology
        .as_ref()
        .map(|t| checks::vendor::compare(tree, t));
    findings.extend(checks::vendor::run(
        tree,
        vendor_topology.as_ref(),
        &view,
        &kernel,
    ));
    sort_findings(&mut findings);

    let mut in_pairs: BTreeSet<NodeId> = providers.iter().copied().collect();
    in_pairs.extend(candidates.iter().copied().filter(|_| !providers.is_empty()));
    let devices = in_pairs
        .into_iter()
        .map(|id| {
            let n = tree.node(id);
            DeviceSummary {
                bdf: n.bdf(),
                name: n.name(),
                role: n.role,
                provider: n.facts.p2pmem.is_some()
                    || (kernel.pool_less_providers && pool_less_provider(tree, id)),
                driver: n.facts.driver.clone(),
                block_devices: n.facts.block_devices.clone(),
                numa_node: n.facts.numa_node,
                host_bridge: tree
                    .host_bridges
                    .get(n.host_bridge)
                    .map(|h| h.id.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();

    let class_matrix = matrix::build(tree, &view, &kernel, &opts.roles);
    let header = checks::header(tree, &kernel, params);
    // Bridge functions (class 06, the host bridge's own included) are the
    // path, not devices one selects.
    let endpoints = tree
        .nodes_with_ids()
        .filter(|(_, n)| n.role.is_endpoint() && n.facts.class.is_none_or(|c| c >> 16 != 0x06))
        .map(|(id, n)| {
            (
                n.bdf(),
                select::Endpoint {
                    p2p: checks::p2p_class(tree, id),
                    names: n.facts.os_names.clone(),
                    block_devices: n.facts.block_devices.clone(),
                },
            )
        })
        .collect();
    let mut d = Diagnosis {
        header,
        summary: Summary::default(),
        devices,
        pairs,
        findings,
        limitations: notes
            .into_iter()
            .chain(tree.limitations.iter().map(|l| l.message.clone()))
            .collect(),
        all_pairs: opts.all_pairs,
        all_pairs_implied: opts.all_pairs_implied,
        vendor_topology,
        class_matrix,
        endpoints,
        selection: select::SelectionReport::default(),
        suppressed: Vec::new(),
    };
    d.resummarize();
    d
}

/// Pairs computed at most when every endpoint is only implied to be a
/// provider (an evidence file shows no p2pmem): a paste of a server with
/// thousands of functions must not turn into millions of pairs.
pub const IMPLIED_PAIR_BUDGET: usize = 1024;

/// Providers and clients when `--all-pairs` is implied: every DMA-capable
/// endpoint both ways, cut down in steps while over
/// [`IMPLIED_PAIR_BUDGET`], each step said in a note.
fn implied_pairs(tree: &Tree, candidates: Vec<NodeId>) -> (Vec<NodeId>, Vec<NodeId>, Vec<String>) {
    let count = |p: &[NodeId], c: &[NodeId]| p.len() * c.len().saturating_sub(1);
    let mut notes = Vec::new();
    let mut clients = candidates.clone();
    let mut providers = candidates;
    let all = count(&providers, &clients);
    if all <= IMPLIED_PAIR_BUDGET {
        return (providers, clients, notes);
    }
    // A virtual function sits on its physical function's bus behind the
    // same bridges: the PF's pairs stand for its VFs'.
    let vf = |&i: &NodeId| tree.node(i).facts.physfn.is_some();
    if providers.iter().any(vf) {
        providers.retain(|i| !vf(i));
        clients.retain(|i| !vf(i));
        notes.push(format!(
            "{all} pairs with every endpoint as a provider: SR-IOV virtual functions are left out (their physical function's pairs stand for them); --all-pairs computes them all"
        ));
    }
    if count(&providers, &clients) > IMPLIED_PAIR_BUDGET {
        // The classes whose drivers publish P2P memory: NVMe (CMB),
        // GPUs and accelerators.
        let provider_class = |&i: &NodeId| {
            let class = tree.node(i).facts.class.unwrap_or(0) >> 16;
            matches!(class, 0x01 | 0x03 | 0x0b | 0x12)
        };
        let before = providers.len();
        providers.retain(provider_class);
        notes.push(format!(
            "hypothetical providers limited to storage, display and accelerator functions ({} of {before}); --all-pairs takes every endpoint",
            providers.len()
        ));
    }
    if count(&providers, &clients) > IMPLIED_PAIR_BUDGET {
        let keep = (IMPLIED_PAIR_BUDGET / clients.len().saturating_sub(1).max(1)).max(1);
        let left = providers.len().saturating_sub(keep);
        providers.truncate(keep);
        notes.push(format!(
            "only the first {keep} hypothetical providers (by address) are paired, {left} left out to stay within {IMPLIED_PAIR_BUDGET} pairs; --all-pairs computes them all"
        ));
    }
    (providers, clients, notes)
}

fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.severity, a.status, &a.rule, &a.subjects).cmp(&(
            b.severity,
            b.status,
            &b.rule,
            &b.subjects,
        ))
    });
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summarize(d: &Diagnosis) -> Summary {
    // What counts: the findings shown, and those hidden only because they
    // are below --min-severity (hiding a line does not change the verdict).
    let below: Vec<(Severity, Status)> = d
        .selection
        .hidden_findings
        .iter()
        .filter(|h| h.reason == select::HiddenReason::BelowMinSeverity)
        .map(|h| (h.severity, h.status))
        .collect();
    let all: Vec<(Severity, Status)> = d
        .findings
        .iter()
        .map(|f| (f.severity, f.status))
        .chain(below)
        .collect();
    let counted = |s: Severity| {
        all.iter()
            .filter(|(sev, st)| *sev == s && matches!(st, Status::Predicted | Status::Confirmed))
            .count()
    };
    let (errors, warnings, info) = (
        counted(Severity::Error),
        counted(Severity::Warning),
        counted(Severity::Info),
    );
    let inconclusive = all
        .iter()
        .filter(|(_, st)| *st == Status::Inconclusive)
        .count();
    let pairs = &d.pairs;
    let (mut bus, mut thru, mut ns) = (0, 0, 0);
    for p in pairs {
        match p.verdict().map_type {
            MapType::BusAddr => bus += 1,
            MapType::ThruHostBridge => thru += 1,
            MapType::NotSupported => ns += 1,
        }
    }
    let predicted = if errors > 0 {
        Level::Errors
    } else if warnings > 0
        || all
            .iter()
            .any(|(sev, st)| *st == Status::Inconclusive && *sev != Severity::Info)
    {
        Level::Warnings
    } else {
        Level::Clear
    };
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(plural(errors, "error", "errors"));
    }
    if warnings > 0 {
        parts.push(plural(warnings, "warning", "warnings"));
    }
    if inconclusive > 0 {
        parts.push(format!("{inconclusive} inconclusive"));
    }
    let counts = if parts.is_empty() {
        "all clear".to_string()
    } else {
        parts.join(", ")
    };
    let pair_text = if pairs.is_empty() {
        "no pairs to predict".to_string()
    } else {
        let mut p = Vec::new();
        if bus > 0 {
            p.push(format!("{bus} by bus address"));
        }
        if thru > 0 {
            p.push(format!("{thru} through the host bridge"));
        }
        if ns > 0 {
            p.push(format!("{ns} refused"));
        }
        format!(
            "{} predicted: {}",
            plural(pairs.len(), "pair", "pairs"),
            p.join(", ")
        )
    };
    let mut tried: BTreeMap<&str, usize> = BTreeMap::new();
    for c in pairs.iter().filter_map(|p| p.confirm()) {
        *tried.entry(c.outcome.as_str()).or_default() += 1;
    }
    let confirm_text = if tried.is_empty() {
        String::new()
    } else {
        let order = ["ok", "refused", "mismatch", "error", "skipped"];
        let parts: Vec<String> = order
            .iter()
            .filter_map(|k| tried.get(k).map(|n| format!("{n} {k}")))
            .collect();
        format!("; experiments: {}", parts.join(", "))
    };
    let suppressed_text = if d.suppressed.is_empty() {
        String::new()
    } else {
        let mut files: Vec<&str> = d.suppressed.iter().map(|s| s.file.as_str()).collect();
        files.dedup();
        format!(
            "; {} suppressed by {}",
            d.suppressed.len(),
            files.join(", ")
        )
    };
    Summary {
        verdict: ReportVerdict {
            predicted,
            verified: verification(pairs),
            caveats: caveats(d, predicted),
        },
        headline: format!("{counts}; {pair_text}{confirm_text}{suppressed_text}"),
        errors,
        warnings,
        info,
        inconclusive,
        suppressed: d.suppressed.len(),
        pairs: pairs.len(),
        bus_addr: bus,
        thru_host_bridge: thru,
        not_supported: ns,
    }
}

/// The second tier, from the pairs `check --confirm` tried.
fn verification(pairs: &PairTable) -> Option<Verification> {
    let tried: Vec<&PairConfirm> = pairs.iter().filter_map(|p| p.confirm()).collect();
    if tried.is_empty() {
        return None;
    }
    let settled = tried
        .iter()
        .filter(|c| c.settles_pair && c.agrees.is_some())
        .count();
    let ok = tried
        .iter()
        .filter(|c| c.outcome == PairOutcome::Ok)
        .count();
    let outcome = if tried.iter().any(|c| c.outcome == PairOutcome::Mismatch) {
        Verified::DataMismatch
    } else if tried
        .iter()
        .any(|c| c.settles_pair && c.agrees == Some(false))
    {
        Verified::NotAsPredicted
    } else if settled > 0 {
        Verified::AsPredicted
    } else {
        Verified::Unsettled
    };
    Some(Verification {
        outcome,
        pairs_tried: tried.len(),
        pairs_settled: settled,
        pairs_ok: ok,
    })
}

/// What a verdict without errors must add: refused pairs that carry no
/// error, and bus-address pairs under a translating IOMMU.
fn caveats(d: &Diagnosis, predicted: Level) -> Vec<Caveat> {
    let mut out = Vec::new();
    let does_p2p = |b: &Bdf| d.endpoints.get(b).is_none_or(|e| e.p2p);
    if predicted != Level::Errors {
        let refused: Vec<Pair<'_>> = d
            .pairs
            .iter()
            .filter(|p| p.verdict().map_type == MapType::NotSupported)
            .collect();
        let (minor, major): (Vec<Pair<'_>>, Vec<Pair<'_>>) = refused
            .into_iter()
            .partition(|p| !does_p2p(&p.provider()) || !does_p2p(&p.client()));
        if !minor.is_empty() {
            let odd: BTreeSet<Bdf> = minor
                .iter()
                .flat_map(|p| [p.provider(), p.client()])
                .filter(|b| !does_p2p(b))
                .collect();
            out.push(Caveat {
                kind: CaveatKind::RefusedMinorPairs,
                message: format!(
                    "{} refused: each has an end that does not do P2P DMA ({}), so it is reported as info, not as an error",
                    plural(minor.len(), "pair is", "pairs are"),
                    odd.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        if !major.is_empty() {
            let why = if d.suppressed.is_empty() {
                "no error reports it".to_string()
            } else {
                let mut files: Vec<&str> = d.suppressed.iter().map(|s| s.file.as_str()).collect();
                files.dedup();
                format!(
                    "its error may be among the findings suppressed by {}",
                    files.join(", ")
                )
            };
            out.push(Caveat {
                kind: CaveatKind::RefusedNotReported,
                message: format!(
                    "{} of devices that do P2P {} refused by the kernel ({}): {why}",
                    plural(major.len(), "pair", "pairs"),
                    if major.len() == 1 { "is" } else { "are" },
                    checks::pair_list(&major)
                ),
            });
        }
    }
    let translating = !d.header.iommu.units.is_empty() && d.header.iommu.mode.may_translate();
    if translating {
        let direct: Vec<Pair<'_>> = d
            .pairs
            .iter()
            .filter(|p| {
                p.verdict().map_type == MapType::BusAddr
                    && p.provider() != p.client()
                    && p.confirm()
                        .is_none_or(|c| c.outcome != PairOutcome::Ok || !c.settles_pair)
            })
            .collect();
        if !direct.is_empty() {
            out.push(Caveat {
                kind: CaveatKind::IommuWithoutAcs,
                message: format!(
                    "the IOMMU is on ({}) and {} mapped by bus address with no ACS redirect on the path ({}): the kernel allows {}, but the lab saw such a peer write sent through the IOMMU, reported as a success, with data that did not arrive (docs/ARCHITECTURE.md, case 4); only a verifying transfer tells: run p2pdoctor check --confirm",
                    d.header.iommu.mode,
                    plural(direct.len(), "pair is", "pairs are"),
                    checks::pair_list(&direct),
                    if direct.len() == 1 { "it" } else { "them" },
                ),
            });
        }
    }
    out
}

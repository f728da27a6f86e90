//! Diagnosis: what the kernel will decide for every pair of devices, and
//! every risk on the way, each with a fix.
//!
//! Input is a [`Tree`] (and the host facts in it); output is a
//! [`Diagnosis`]: plain values the renderers turn into text or JSON.
//!
//! - [`p2pdma`] mirrors the kernel's `calc_map_type_and_dist()` as a pure
//!   function, [`acs_params`] the `pci=disable_acs_redir=`/`config_acs=`
//!   parsing, [`kernel`] the per-release whitelist (data in
//!   `rules/kernel.toml`);
//! - `checks/` holds one file per rule family; [`catalog`] the words of
//!   every rule (data in `rules/catalog.toml`).
//!
//! Findings are `predicted` here, `inconclusive` when the facts they need
//! could not be read; a later confirmation stage turns them `confirmed` or
//! `refuted`.

pub mod acs_params;
pub mod catalog;
mod checks;

pub use checks::vendor::{Mapping, VendorComparison, VendorDevice, VendorPair};
pub mod kernel;
pub mod matrix;
pub mod p2pdma;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::pci::Bdf;
use crate::topology::{NodeId, PathClass, Role, Tree};

pub use catalog::{Catalog, RuleInfo, Severity};
pub use checks::facts::{CONTRADICTED as RULE_CONTRADICTED, MISMATCH as RULE_MISMATCH};
pub use checks::{ALL_RULES, RuleRef};
pub use kernel::{KernelData, KernelModel, KernelVersion};
pub use p2pdma::{MapType, P2pView, Verdict};

/// The JSON schema version of `check --format json`.
pub const CHECK_SCHEMA_VERSION: u32 = 1;

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
    pub fix: Option<String>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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

/// How the IOMMU treats DMA on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IommuState {
    /// `none`, `intel`, `amd`, `arm-smmu`, ...
    pub kind: String,
    /// `off`, `translated`, `passthrough`, `mixed`, `unknown`.
    pub mode: String,
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

/// One (provider, client) pair: the kernel's decision and the path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairReport {
    pub provider: Bdf,
    pub client: Bdf,
    pub verdict: Verdict,
    /// The wiring, in NVML's classes (PIX, PXB, PHB, NODE, SYS).
    pub path_class: PathClass,
    /// Where the TLPs really go: PHB at least when the kernel's decision
    /// sends the pair through the root complex (a PIX pair with ACS
    /// redirect behaves as PHB).
    pub effective_path_class: PathClass,
    /// PCIe switches on the path.
    pub switches: usize,
    pub bottleneck: Option<LinkBound>,
    /// The most the path can carry, one direction, GB/s: the narrowest
    /// link by trained speed x width less the encoding overhead. None
    /// where a link on the path could not be read.
    pub bandwidth_bound: Option<f64>,
    #[serde(skip)]
    pub provider_id: NodeId,
    #[serde(skip)]
    pub client_id: NodeId,
    /// Every function the traffic touches, provider and client included.
    #[serde(skip)]
    pub route: Vec<NodeId>,
    /// What a real transfer showed (`check --confirm`).
    pub confirm: Option<crate::confirm::pairs::PairConfirm>,
}

/// Counts and a one-line verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// `clear`, `warnings` or `errors`.
    pub verdict: String,
    pub headline: String,
    pub errors: usize,
    pub warnings: usize,
    pub info: usize,
    pub inconclusive: usize,
    pub pairs: usize,
    pub bus_addr: usize,
    pub thru_host_bridge: usize,
    pub not_supported: usize,
}

/// Everything `check` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub header: Header,
    pub summary: Summary,
    /// Devices in the pairs, in address order.
    pub devices: Vec<DeviceSummary>,
    pub pairs: Vec<PairReport>,
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
        self.summary = summarize(&self.findings, &self.pairs);
    }

    /// Findings that count at their severity: predicted or confirmed.
    fn counted(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.status, Status::Predicted | Status::Confirmed))
    }

    /// 0 all clear, 1 warnings, 2 errors. Inconclusive warnings and errors
    /// count as warnings: an unreadable fact is never "all clear".
    pub fn exit_code(&self, fail_on: FailOn) -> i32 {
        let errors = self.counted().any(|f| f.severity == Severity::Error);
        if errors {
            return EXIT_ERRORS;
        }
        let warnings = self.counted().any(|f| f.severity == Severity::Warning)
            || self
                .findings
                .iter()
                .any(|f| f.status == Status::Inconclusive && f.severity != Severity::Info);
        match (warnings, fail_on) {
            (true, FailOn::Warning) => EXIT_WARNINGS,
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
    let params = acs_params::AcsParams::from_cmdline(&tree.host.cmdline.raw);
    let (view, effects) = P2pView::from_tree(tree, &params, &kernel);

    let mut candidates: Vec<NodeId> = (0..tree.nodes.len())
        .filter(|&i| dma_capable(tree, i))
        .collect();
    let mut providers: Vec<NodeId> = (0..tree.nodes.len())
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
    let mut pairs = Vec::new();
    for &p in &providers {
        for &c in &candidates {
            pairs.push(checks::pair_report(tree, &view, &kernel, p, c));
        }
    }

    let ctx = checks::Ctx {
        tree,
        kernel: &kernel,
        data: &opts.kernel_data,
        view: &view,
        effects: &effects,
        params: &params,
        pairs: &pairs,
    };
    let mut findings = checks::run_all(&ctx);
    let vendor_topology = tree
        .host
        .nvidia_topology
        .as_ref()
        .map(|t| checks::vendor::compare(tree, t));
    findings.extend(checks::vendor::check(vendor_topology.as_ref()));
    if let Some(t) = tree.host.nvidia_topology.as_ref() {
        findings.extend(checks::vendor::check_p2p_read(tree, t, &view, &kernel));
    }
    sort_findings(&mut findings);

    let mut in_pairs: BTreeSet<NodeId> = providers.iter().copied().collect();
    for p in &pairs {
        in_pairs.insert(p.client_id);
    }
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
    let header = checks::header(tree, &kernel, &params);
    let summary = summarize(&findings, &pairs);
    Diagnosis {
        header,
        summary,
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
    }
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

fn summarize(findings: &[Finding], pairs: &[PairReport]) -> Summary {
    let counted = |s: Severity| {
        findings
            .iter()
            .filter(|f| {
                f.severity == s && matches!(f.status, Status::Predicted | Status::Confirmed)
            })
            .count()
    };
    let (errors, warnings, info) = (
        counted(Severity::Error),
        counted(Severity::Warning),
        counted(Severity::Info),
    );
    let inconclusive = findings
        .iter()
        .filter(|f| f.status == Status::Inconclusive)
        .count();
    let by = |m: MapType| pairs.iter().filter(|p| p.verdict.map_type == m).count();
    let (bus, thru, ns) = (
        by(MapType::BusAddr),
        by(MapType::ThruHostBridge),
        by(MapType::NotSupported),
    );
    let verdict = if errors > 0 {
        "errors"
    } else if warnings > 0
        || findings
            .iter()
            .any(|f| f.status == Status::Inconclusive && f.severity != Severity::Info)
    {
        "warnings"
    } else {
        "clear"
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
    for c in pairs.iter().filter_map(|p| p.confirm.as_ref()) {
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
    Summary {
        verdict: verdict.to_string(),
        headline: format!("{counts}; {pair_text}{confirm_text}"),
        errors,
        warnings,
        info,
        inconclusive,
        pairs: pairs.len(),
        bus_addr: bus,
        thru_host_bridge: thru,
        not_supported: ns,
    }
}

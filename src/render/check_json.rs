//! `check --format json`: the public, versioned form of a diagnosis
//! (`schema/check.schema.json` describes it), and `rules --format json`.
//!
//! Pairs that share a path share one entry of `paths[]`; a pair is a row
//! naming its two ends and its path. The document is written as it is
//! serialized, a row at a time, so its size in memory does not grow with
//! the number of pairs.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::Serializer;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{RenderOptions, ToolBlock};
use crate::diagnose::PairConfirm;
use crate::diagnose::fix::Fix;
use crate::diagnose::matrix::ClassMatrix;
use crate::diagnose::p2pdma::KERNEL_MESSAGES_NOTE;
use crate::diagnose::p2pdma::{HostBridgeCheck, HostBridgeResult, WhitelistOutcome};
use crate::diagnose::pairs::PathBottleneck;
use crate::diagnose::select::{SelectionReport, Suppressed};
use crate::diagnose::{
    Catalog, Diagnosis, IommuMode, Pair, PairPath, PathId, ReportVerdict, RuleInfo, Severity,
    Status, VendorComparison,
};
use crate::pci::Bdf;
use crate::scan::Virtualization;
use crate::topology::Role;

/// The JSON schema version of `check --format json` (schema/check.schema.json),
/// beside the wire structs it versions.
pub const CHECK_SCHEMA_VERSION: u32 = 2;

// The wire structs below are the document, field by field in document
// order; each borrows from the Diagnosis. `schema/check.schema.json`
// describes the same fields, with `additionalProperties: false`.

/// The whole document (`check --format json`).
#[derive(Serialize)]
struct CheckJson<'a> {
    schema_version: u32,
    tool: ToolBlock,
    source: &'a str,
    host: HostJson<'a>,
    summary: SummaryJson<'a>,
    all_pairs: bool,
    all_pairs_implied: bool,
    devices: Vec<DeviceJson<'a>>,
    kernel_messages_note: &'static str,
    paths: Paths<'a>,
    pairs: Pairs<'a>,
    findings: Vec<FindingJson<'a>>,
    suppressed: &'a [Suppressed],
    selection: &'a SelectionReport,
    limitations: &'a [String],
    vendor_topology: Option<&'a VendorComparison>,
    class_matrix: Option<&'a ClassMatrix>,
}

/// `host`.
#[derive(Serialize)]
struct HostJson<'a> {
    hostname: Option<&'a str>,
    kernel_release: Option<&'a str>,
    kernel_model: String,
    kernel_assumed: bool,
    kernel_basis: &'a [String],
    cpu: Option<&'a str>,
    iommu: IommuJson<'a>,
    p2pdma: P2pdmaJson<'a>,
    acs_parameters: AcsParametersJson<'a>,
    virtualization: Option<&'a Virtualization>,
}

/// `host.iommu`.
#[derive(Serialize)]
struct IommuJson<'a> {
    kind: &'a str,
    mode: IommuMode,
    units: &'a [String],
    describe: &'a str,
}

/// `host.p2pdma`.
#[derive(Serialize)]
struct P2pdmaJson<'a> {
    config: Option<bool>,
    user_space: Option<bool>,
    describe: &'a str,
}

/// `host.acs_parameters`: the values the kernel keeps (the last of each).
#[derive(Serialize)]
struct AcsParametersJson<'a> {
    disable_acs_redir: Option<&'a str>,
    config_acs: Option<&'a str>,
}

/// `summary`.
#[derive(Serialize)]
struct SummaryJson<'a> {
    verdict: &'a ReportVerdict,
    headline: &'a str,
    errors: usize,
    warnings: usize,
    info: usize,
    inconclusive: usize,
    suppressed: usize,
    pairs: usize,
    bus_addr: usize,
    thru_host_bridge: usize,
    not_supported: usize,
}

/// `devices[]`.
#[derive(Serialize)]
struct DeviceJson<'a> {
    bdf: Bdf,
    name: &'a str,
    role: Role,
    provider: bool,
    driver: Option<&'a str>,
    block_devices: &'a [String],
    numa_node: Option<i32>,
    host_bridge: &'a str,
}

/// `findings[]`.
#[derive(Serialize)]
struct FindingJson<'a> {
    rule: &'a str,
    name: &'a str,
    severity: Severity,
    status: Status,
    subjects: &'a [Bdf],
    message: &'a str,
    fix: Option<&'a Fix>,
    evidence: &'a [String],
}

/// A path's `whitelist`: the host-bridge test.
#[derive(Serialize)]
struct WhitelistJson<'a> {
    admitted: bool,
    same_host_bridge: bool,
    checks: Vec<HostBridgeCheckJson<'a>>,
}

/// `whitelist.checks[]`: one host bridge looked up.
#[derive(Serialize)]
struct HostBridgeCheckJson<'a> {
    host_bridge: &'a str,
    first_device: Option<Bdf>,
    device_id: Option<&'a str>,
    entry: Option<EntryJson<'a>>,
    result: &'a HostBridgeResult,
}

/// The whitelist entry that matched.
#[derive(Serialize)]
struct EntryJson<'a> {
    id: String,
    name: &'a str,
    /// The first release that has it, or `unreleased`.
    since: String,
    same_host_bridge: bool,
}

fn check_json(c: &HostBridgeCheck) -> HostBridgeCheckJson<'_> {
    HostBridgeCheckJson {
        host_bridge: &c.host_bridge,
        first_device: c.first_device,
        device_id: c.device_id.as_deref(),
        entry: c.entry.as_ref().map(|e| EntryJson {
            id: e.id(),
            name: &e.name,
            since: e
                .since
                .map(|v| v.to_string())
                .unwrap_or_else(|| "unreleased".into()),
            same_host_bridge: e.same_host_bridge,
        }),
        result: &c.result,
    }
}

fn whitelist_json(w: &WhitelistOutcome) -> WhitelistJson<'_> {
    WhitelistJson {
        admitted: w.admitted,
        same_host_bridge: w.same_host_bridge,
        checks: w.checks.iter().map(check_json).collect(),
    }
}

/// A path's fields, shared by every pair on it (`paths[]`), or repeated in
/// a pair's row with `--expand-pairs`.
#[derive(Serialize)]
struct PathFields<'a> {
    map_type: &'static str,
    distance: u32,
    acs_redirect: Vec<String>,
    common_upstream: Option<String>,
    host_bridges: &'a [String],
    whitelist: Option<WhitelistJson<'a>>,
    cpu_rule: bool,
    kernel_messages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_by: Option<&'a str>,
    certain: bool,
    unknown: Vec<String>,
    path_class: &'static str,
    effective_path_class: &'static str,
    switches: usize,
    bottleneck: Option<&'a PathBottleneck>,
    bandwidth_bound: Option<f64>,
}

/// The fields of `path`, the kernel's lines as given.
fn path_fields(path: &PairPath, kernel_messages: Vec<String>) -> PathFields<'_> {
    let v = &path.verdict;
    PathFields {
        map_type: v.map_type.as_str(),
        distance: v.distance,
        acs_redirect: v.acs_redirect.iter().map(|b| b.to_string()).collect(),
        common_upstream: v.common_upstream.map(|b| b.to_string()),
        host_bridges: &v.host_bridges,
        whitelist: v.whitelist.as_ref().map(whitelist_json),
        cpu_rule: v.cpu_rule,
        kernel_messages,
        blocked_by: v.blocked_by.as_deref(),
        certain: v.certain(),
        unknown: v.unknown.iter().map(|u| u.to_string()).collect(),
        path_class: path.path_class.as_str(),
        effective_path_class: path.effective_path_class.as_str(),
        switches: path.switches,
        bottleneck: path.bottleneck.as_ref(),
        bandwidth_bound: path.bandwidth_bound,
    }
}

/// `paths[]`: each path once, its kernel lines with `{client}` and
/// `{provider}` where a pair's names go.
#[derive(Serialize)]
struct PathJson<'a> {
    id: usize,
    #[serde(flatten)]
    fields: PathFields<'a>,
}

/// `pairs[]`: a row per pair.
#[derive(Serialize)]
struct PairJson<'a> {
    provider: String,
    client: String,
    /// Right after the two ends, as schema 1 had them.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    expanded: Option<PathFields<'a>>,
    path: PathId,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm: Option<&'a PairConfirm>,
}

fn pair_json<'a>(p: Pair<'a>, expand: bool) -> PairJson<'a> {
    PairJson {
        provider: p.provider().to_string(),
        client: p.client().to_string(),
        path: p.path_id(),
        confirm: p.confirm(),
        expanded: expand.then(|| path_fields(p.path(), p.kernel_messages())),
    }
}

/// The pairs, serialized one row at a time: a million pairs are never held
/// as JSON values. Each row is one compact line.
struct Pairs<'a> {
    d: &'a Diagnosis,
    expand: bool,
}

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.d.pairs.iter().map(|p| {
            let row =
                serde_json::to_string(&pair_json(p, self.expand)).expect("a pair row serializes");
            RawValue::from_string(row).expect("serde_json wrote valid JSON")
        }))
    }
}

struct Paths<'a>(&'a Diagnosis);

impl Serialize for Paths<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.pairs.paths().iter().enumerate().map(|(id, path)| {
            PathJson {
                id,
                fields: path_fields(
                    path,
                    path.verdict
                        .kernel_lines
                        .iter()
                        .map(|l| l.template())
                        .collect(),
                ),
            }
        }))
    }
}

/// The whole document, written as it is serialized.
pub struct CheckDocument<'a> {
    pub diagnosis: &'a Diagnosis,
    /// Where the facts came from (`/`, a snapshot, a paste).
    pub source: &'a str,
    /// Every pair's row carries its path's fields and its own kernel lines
    /// (`check --expand-pairs`).
    pub expand_pairs: bool,
}

impl<'a> CheckDocument<'a> {
    fn wire(&self) -> CheckJson<'a> {
        let d = self.diagnosis;
        let h = &d.header;
        let s = &d.summary;
        CheckJson {
            schema_version: CHECK_SCHEMA_VERSION,
            tool: ToolBlock::THIS,
            source: self.source,
            host: HostJson {
                hostname: h.hostname.as_deref(),
                kernel_release: h.kernel_release.as_deref(),
                kernel_model: h.kernel_model.to_string(),
                kernel_assumed: h.kernel_assumed,
                kernel_basis: &h.kernel_basis,
                cpu: h.cpu.as_deref(),
                iommu: IommuJson {
                    kind: &h.iommu.kind,
                    mode: h.iommu.mode,
                    units: &h.iommu.units,
                    describe: &h.iommu.describe,
                },
                p2pdma: P2pdmaJson {
                    config: h.p2pdma.config,
                    user_space: h.p2pdma.user_space,
                    describe: &h.p2pdma.describe,
                },
                acs_parameters: AcsParametersJson {
                    disable_acs_redir: h.acs_parameters.disable_acs_redir.as_deref(),
                    config_acs: h.acs_parameters.config_acs.as_deref(),
                },
                virtualization: h.virtualization.as_ref(),
            },
            summary: SummaryJson {
                verdict: &s.verdict,
                headline: &s.headline,
                errors: s.errors,
                warnings: s.warnings,
                info: s.info,
                inconclusive: s.inconclusive,
                suppressed: s.suppressed,
                pairs: s.pairs,
                bus_addr: s.bus_addr,
                thru_host_bridge: s.thru_host_bridge,
                not_supported: s.not_supported,
            },
            all_pairs: d.all_pairs,
            all_pairs_implied: d.all_pairs_implied,
            devices: d
                .devices
                .iter()
                .map(|dev| DeviceJson {
                    bdf: dev.bdf,
                    name: &dev.name,
                    role: dev.role,
                    provider: dev.provider,
                    driver: dev.driver.as_deref(),
                    block_devices: &dev.block_devices,
                    numa_node: dev.numa_node,
                    host_bridge: &dev.host_bridge,
                })
                .collect(),
            kernel_messages_note: KERNEL_MESSAGES_NOTE,
            paths: Paths(d),
            pairs: Pairs {
                d,
                expand: self.expand_pairs,
            },
            findings: d
                .findings
                .iter()
                .map(|f| FindingJson {
                    rule: &f.rule,
                    name: &f.name,
                    severity: f.severity,
                    status: f.status,
                    subjects: &f.subjects,
                    message: &f.message,
                    fix: f.fix.as_ref(),
                    evidence: &f.evidence,
                })
                .collect(),
            suppressed: &d.suppressed,
            selection: &d.selection,
            limitations: &d.limitations,
            vendor_topology: d.vendor_topology.as_ref(),
            class_matrix: d.class_matrix.as_ref(),
        }
    }
}

impl Serialize for CheckDocument<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(s)
    }
}

/// The whole document as a JSON value (tests; small diagnoses).
pub fn check_value_of(d: &Diagnosis, source: &str) -> Value {
    serde_json::to_value(CheckDocument {
        diagnosis: d,
        source,
        expand_pairs: false,
    })
    .expect("the check document serializes")
}

/// Writes the diagnosis as pretty JSON.
pub fn render(d: &Diagnosis, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let doc = CheckDocument {
        diagnosis: d,
        source: &opts.source,
        expand_pairs: opts.expand_pairs,
    };
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::other)?;
    writeln!(out)?;
    out.flush()
}

/// `rules --format json`: the catalog.
pub fn render_rules(catalog: &Catalog, out: &mut dyn Write) -> io::Result<()> {
    let doc = RulesJson {
        schema_version: CHECK_SCHEMA_VERSION,
        tool: ToolBlock::THIS,
        rules: &catalog.rules,
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

/// `rules --format json` (schema/rules.schema.json): the catalog, under
/// check's schema version.
#[derive(Serialize)]
struct RulesJson<'a> {
    schema_version: u32,
    tool: ToolBlock,
    rules: &'a [RuleInfo],
}

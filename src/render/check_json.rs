//! `check --format json`: the public, versioned form of a diagnosis
//! (`schema/check.schema.json` describes it), and `rules --format json`.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::RenderOptions;
use crate::diagnose::p2pdma::{HostBridgeCheck, WhitelistOutcome};
use crate::diagnose::{CHECK_SCHEMA_VERSION, Catalog, Diagnosis, PairReport};

fn check_value(c: &HostBridgeCheck) -> Value {
    json!({
        "host_bridge": c.host_bridge,
        "first_device": c.first_device.map(|b| b.to_string()),
        "device_id": c.device_id,
        "entry": c.entry.as_ref().map(|e| json!({
            "id": e.id(),
            "name": e.name,
            "since": e.since.map(|v| v.to_string()).unwrap_or_else(|| "unreleased".into()),
            "same_host_bridge": e.same_host_bridge,
        })),
        "result": c.result,
    })
}

fn whitelist_value(w: &WhitelistOutcome) -> Value {
    json!({
        "admitted": w.admitted,
        "same_host_bridge": w.same_host_bridge,
        "checks": w.checks.iter().map(check_value).collect::<Vec<_>>(),
    })
}

fn pair_value(p: &PairReport) -> Value {
    let v = &p.verdict;
    json!({
        "provider": p.provider.to_string(),
        "client": p.client.to_string(),
        "map_type": v.map_type.as_str(),
        "distance": v.distance,
        "acs_redirect": v.acs_redirect.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
        "common_upstream": v.common_upstream.map(|b| b.to_string()),
        "host_bridges": v.host_bridges,
        "whitelist": v.whitelist.as_ref().map(whitelist_value),
        "cpu_rule": v.cpu_rule,
        "kernel_messages": v.kernel_messages,
        "kernel_messages_note": crate::diagnose::p2pdma::KERNEL_MESSAGES_NOTE,
        "blocked_by": v.blocked_by,
        "certain": v.certain(),
        "unknown": v.unknown.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
        "path_class": p.path_class.as_str(),
        "effective_path_class": p.effective_path_class.as_str(),
        "switches": p.switches,
        "bottleneck": p.bottleneck.as_ref().map(|b| json!({
            "bdf": b.bdf.to_string(),
            "link": b.link,
            "gbytes_per_s": b.gbytes_per_s,
        })),
        "bandwidth_bound": p.bandwidth_bound,
        "confirm": p.confirm,
    })
}

/// The whole document.
pub fn check_value_of(d: &Diagnosis, source: &str) -> Value {
    let h = &d.header;
    let s = &d.summary;
    json!({
        "schema_version": CHECK_SCHEMA_VERSION,
        "tool": crate::render::ToolBlock::THIS,
        "source": source,
        "host": {
            "hostname": h.hostname,
            "kernel_release": h.kernel_release,
            "kernel_model": h.kernel_model.to_string(),
            "kernel_assumed": h.kernel_assumed,
            "kernel_basis": h.kernel_basis,
            "cpu": h.cpu,
            "iommu": {
                "kind": h.iommu.kind,
                "mode": h.iommu.mode,
                "units": h.iommu.units,
                "describe": h.iommu.describe,
            },
            "p2pdma": {
                "config": h.p2pdma.config,
                "user_space": h.p2pdma.user_space,
                "describe": h.p2pdma.describe,
            },
            "acs_parameters": {
                "disable_acs_redir": h.acs_parameters.disable_acs_redir,
                "config_acs": h.acs_parameters.config_acs,
            },
            "virtualization": h.virtualization,
        },
        "summary": {
            "verdict": s.verdict,
            "headline": s.headline,
            "errors": s.errors,
            "warnings": s.warnings,
            "info": s.info,
            "inconclusive": s.inconclusive,
            "suppressed": s.suppressed,
            "pairs": s.pairs,
            "bus_addr": s.bus_addr,
            "thru_host_bridge": s.thru_host_bridge,
            "not_supported": s.not_supported,
        },
        "all_pairs": d.all_pairs,
        "all_pairs_implied": d.all_pairs_implied,
        "devices": d.devices.iter().map(|dev| json!({
            "bdf": dev.bdf.to_string(),
            "name": dev.name,
            "role": dev.role,
            "provider": dev.provider,
            "driver": dev.driver,
            "block_devices": dev.block_devices,
            "numa_node": dev.numa_node,
            "host_bridge": dev.host_bridge,
        })).collect::<Vec<_>>(),
        "pairs": d.pairs.iter().map(pair_value).collect::<Vec<_>>(),
        "findings": d.findings.iter().map(|f| json!({
            "rule": f.rule,
            "name": f.name,
            "severity": f.severity,
            "status": f.status,
            "subjects": f.subjects.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            "message": f.message,
            "fix": f.fix,
            "evidence": f.evidence,
        })).collect::<Vec<_>>(),
        "suppressed": d.suppressed,
        "selection": d.selection,
        "limitations": d.limitations,
        "vendor_topology": d.vendor_topology,
        "class_matrix": d.class_matrix,
    })
}

/// Writes the diagnosis as pretty JSON.
pub fn render(d: &Diagnosis, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &check_value_of(d, &opts.source))
        .map_err(io::Error::other)?;
    writeln!(out)
}

/// `rules --format json`: the catalog.
pub fn render_rules(catalog: &Catalog, out: &mut dyn Write) -> io::Result<()> {
    let value = json!({
        "schema_version": CHECK_SCHEMA_VERSION,
        "rules": catalog.rules,
    });
    serde_json::to_writer_pretty(&mut *out, &value).map_err(io::Error::other)?;
    writeln!(out)
}

//! `topo --format json`: the public, versioned model of the machine.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::{Render, RenderOptions, TOPO_SCHEMA_VERSION};
use crate::topology::{Node, Tree};

pub struct JsonTopo;

impl Render for JsonTopo {
    fn render(&self, tree: &Tree, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
        let value = topo_value(tree, &opts.source);
        serde_json::to_writer_pretty(&mut *out, &value).map_err(io::Error::other)?;
        writeln!(out)
    }
}

fn hex4(v: Option<u16>) -> Value {
    v.map(|v| Value::String(format!("{v:04x}")))
        .unwrap_or(Value::Null)
}

/// The whole document; `schema/topo.schema.json` describes it.
pub fn topo_value(tree: &Tree, source: &str) -> Value {
    let bdf = |id: usize| tree.node(id).bdf().to_string();
    json!({
        "schema_version": TOPO_SCHEMA_VERSION,
        "tool": { "name": "p2pdoctor", "version": env!("CARGO_PKG_VERSION") },
        "source": source,
        "host": tree.host,
        "limitations": tree.limitations,
        "host_bridges": tree.host_bridges.iter().map(|h| {
            let first = h.first_function.map(|f| tree.node(f));
            json!({
                "id": h.id,
                "domain": h.domain,
                "bus": h.bus,
                "numa_node": h.numa_node,
                "first_device": first.map(|n| n.bdf().to_string()),
                "first_device_id": first.map(|n| format!(
                    "{:04x}:{:04x}",
                    n.facts.vendor.unwrap_or(0xffff),
                    n.facts.device.unwrap_or(0xffff)
                )),
            })
        }).collect::<Vec<_>>(),
        "switches": tree.switches.iter().map(|s| json!({
            "upstream": bdf(s.upstream),
            "downstream": s.downstream.iter().map(|&d| bdf(d)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "devices": tree.nodes.iter().map(|n| device_value(tree, n)).collect::<Vec<_>>(),
        "nvme": tree.nvme,
        "kernel_log": tree.kernel_log,
    })
}

fn device_value(tree: &Tree, n: &Node) -> Value {
    let caps = &n.caps;
    let express = caps.express.as_ref();
    let acs = caps.acs.as_ref().and_then(|a| {
        a.ctrl.map(|ctrl| {
            json!({
                "cap": a.cap.0,
                "ctrl": ctrl.0,
                "cap_flags": a.cap.names(),
                "ctrl_flags": ctrl.names(),
                "redirects": ctrl.redirects(),
                "egress_vector_bits": a.egress_vector_bits,
            })
        })
    });
    let link = n.link.as_ref().map(|l| {
        json!({
            "speed_gts": l.speed_gts,
            "width": l.width,
            "max_speed_gts": l.max_speed_gts,
            "max_width": l.max_width,
            "degraded": l.degraded(),
            "source": l.source,
        })
    });
    let f = &n.facts;
    json!({
        "bdf": f.bdf.to_string(),
        "parent": n.parent.map(|p| tree.node(p).bdf().to_string()),
        "host_bridge": tree.host_bridges.get(n.host_bridge).map(|h| h.id.clone()),
        "port_type": express.map(|e| e.port_type.as_str()),
        "role": n.role,
        "role_inferred": n.role_inferred,
        "depth": n.depth,
        "switch": n.switch,
        "vendor_id": hex4(f.vendor),
        "device_id": hex4(f.device),
        "subsystem_id": caps.subsystem.map(|(v, d)| format!("{v:04x}:{d:04x}")),
        "class": f.class.map(|c| format!("{c:06x}")),
        "revision": f.revision,
        "vendor_name": f.vendor_name,
        "device_name": f.device_name,
        "driver": f.driver,
        "link": link,
        "acs": acs,
        "iommu_group": f.iommu_group,
        "iommu_group_type": f.iommu_group_type,
        "numa_node": f.numa_node,
        "p2pmem": f.p2pmem,
        "block_devices": f.block_devices,
        "bars": f.bars,
        "physfn": f.physfn.map(|b| b.to_string()),
        "config_bytes": f.config.len(),
        "bus_master": caps.bus_master(),
        "relaxed_ordering": express.map(|e| e.dev_ctl.relaxed_ordering),
        "max_payload": express.map(|e| e.dev_ctl.max_payload),
        "max_read_request": express.map(|e| e.dev_ctl.max_read_request),
        "ats_enabled": caps.ats.as_ref().map(|a| a.enabled),
        "dsn": caps.dsn.map(|d| format!("{d:016x}")),
        "aer": caps.aer.as_ref().map(|a| json!({
            "uncorrectable_status": a.uncorrectable_status,
            "correctable_status": a.correctable_status,
        })),
        "capabilities": caps.capabilities.iter()
            .map(|c| crate::pci::capability_name(c.id))
            .chain(caps.extended_capabilities.iter().map(|c| crate::pci::extended_capability_name(c.id)))
            .collect::<Vec<_>>(),
        "config_problems": caps.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    })
}

//! `topo --format json`: the public, versioned model of the machine.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Value, json};

use super::{Render, RenderOptions, TOPO_SCHEMA_VERSION};
use crate::scan::{Bar, HostFacts, Limitation, NvmeController, P2pMem};
use crate::topology::{Node, Role, Tree};

pub struct JsonTopo;

impl Render for JsonTopo {
    fn render(&self, tree: &Tree, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
        let doc = topo_document(tree, &opts.source);
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
        writeln!(out)
    }
}

/// The whole document; `schema/topo.schema.json` describes it.
#[derive(Serialize)]
pub struct TopoDocument<'a> {
    schema_version: u32,
    tool: Value,
    source: &'a str,
    host: &'a HostFacts,
    limitations: &'a [Limitation],
    host_bridges: Vec<Value>,
    switches: Vec<Value>,
    devices: Vec<DeviceJson<'a>>,
    nvme: &'a [NvmeController],
    kernel_log: &'a [String],
}

pub fn topo_document<'a>(tree: &'a Tree, source: &'a str) -> TopoDocument<'a> {
    let bdf = |id: usize| tree.node(id).bdf().to_string();
    TopoDocument {
        schema_version: TOPO_SCHEMA_VERSION,
        tool: json!({ "name": "p2pdoctor", "version": env!("CARGO_PKG_VERSION") }),
        source,
        host: &tree.host,
        limitations: &tree.limitations,
        host_bridges: tree
            .host_bridges
            .iter()
            .map(|h| {
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
            })
            .collect(),
        switches: tree
            .switches
            .iter()
            .map(|s| {
                json!({
                    "upstream": bdf(s.upstream),
                    "downstream": s.downstream.iter().map(|&d| bdf(d)).collect::<Vec<_>>(),
                })
            })
            .collect(),
        devices: tree.nodes.iter().map(|n| device_json(tree, n)).collect(),
        nvme: &tree.nvme,
        kernel_log: &tree.kernel_log,
    }
}

/// One device in `devices[]`. A struct rather than a `json!` value: it
/// serialises straight to the output, which matters on 4096-function trees.
#[derive(Serialize)]
pub struct DeviceJson<'a> {
    bdf: String,
    parent: Option<String>,
    host_bridge: Option<&'a str>,
    port_type: Option<&'static str>,
    role: Role,
    role_inferred: bool,
    depth: usize,
    switch: Option<usize>,
    vendor_id: Option<String>,
    device_id: Option<String>,
    subsystem_id: Option<String>,
    class: Option<String>,
    revision: Option<u8>,
    vendor_name: Option<&'a str>,
    device_name: Option<&'a str>,
    driver: Option<&'a str>,
    link: Option<LinkJson>,
    acs: Option<AcsJson>,
    iommu_group: Option<u32>,
    iommu_group_type: Option<&'a str>,
    numa_node: Option<i32>,
    p2pmem: Option<&'a P2pMem>,
    block_devices: &'a [String],
    bars: &'a [Bar],
    physfn: Option<String>,
    config_bytes: usize,
    bus_master: Option<bool>,
    relaxed_ordering: Option<bool>,
    max_payload: Option<u16>,
    max_read_request: Option<u16>,
    ats_enabled: Option<bool>,
    dsn: Option<String>,
    aer: Option<AerJson>,
    capabilities: Vec<&'static str>,
    config_problems: Vec<String>,
}

#[derive(Serialize)]
struct LinkJson {
    speed_gts: Option<f64>,
    width: Option<u8>,
    max_speed_gts: Option<f64>,
    max_width: Option<u8>,
    degraded: bool,
    source: &'static str,
}

#[derive(Serialize)]
struct AcsJson {
    cap: u16,
    ctrl: u16,
    cap_flags: Vec<&'static str>,
    ctrl_flags: Vec<&'static str>,
    redirects: bool,
    egress_vector_bits: u16,
}

#[derive(Serialize)]
struct AerJson {
    uncorrectable_status: u32,
    correctable_status: u32,
}

fn device_json<'a>(tree: &'a Tree, n: &'a Node) -> DeviceJson<'a> {
    let caps = &n.caps;
    let express = caps.express.as_ref();
    let f = &n.facts;
    DeviceJson {
        bdf: f.bdf.to_string(),
        parent: n.parent.map(|p| tree.node(p).bdf().to_string()),
        host_bridge: tree.host_bridges.get(n.host_bridge).map(|h| h.id.as_str()),
        port_type: express.map(|e| e.port_type.as_str()),
        role: n.role,
        role_inferred: n.role_inferred,
        depth: n.depth,
        switch: n.switch,
        vendor_id: f.vendor.map(|v| format!("{v:04x}")),
        device_id: f.device.map(|v| format!("{v:04x}")),
        subsystem_id: caps.subsystem.map(|(v, d)| format!("{v:04x}:{d:04x}")),
        class: f.class.map(|c| format!("{c:06x}")),
        revision: f.revision,
        vendor_name: f.vendor_name.as_deref(),
        device_name: f.device_name.as_deref(),
        driver: f.driver.as_deref(),
        link: n.link.as_ref().map(|l| LinkJson {
            speed_gts: l.speed_gts,
            width: l.width,
            max_speed_gts: l.max_speed_gts,
            max_width: l.max_width,
            degraded: l.degraded(),
            source: l.source,
        }),
        acs: caps.acs.as_ref().and_then(|a| {
            a.ctrl.map(|ctrl| AcsJson {
                cap: a.cap.0,
                ctrl: ctrl.0,
                cap_flags: a.cap.names(),
                ctrl_flags: ctrl.names(),
                redirects: ctrl.redirects(),
                egress_vector_bits: a.egress_vector_bits,
            })
        }),
        iommu_group: f.iommu_group,
        iommu_group_type: f.iommu_group_type.as_deref(),
        numa_node: f.numa_node,
        p2pmem: f.p2pmem.as_ref(),
        block_devices: &f.block_devices,
        bars: &f.bars,
        physfn: f.physfn.map(|b| b.to_string()),
        config_bytes: f.config.len(),
        bus_master: caps.bus_master(),
        relaxed_ordering: express.map(|e| e.dev_ctl.relaxed_ordering),
        max_payload: express.map(|e| e.dev_ctl.max_payload),
        max_read_request: express.map(|e| e.dev_ctl.max_read_request),
        ats_enabled: caps.ats.as_ref().map(|a| a.enabled),
        dsn: caps.dsn.map(|d| format!("{d:016x}")),
        aer: caps.aer.as_ref().map(|a| AerJson {
            uncorrectable_status: a.uncorrectable_status,
            correctable_status: a.correctable_status,
        }),
        capabilities: caps
            .capabilities
            .iter()
            .map(|c| crate::pci::capability_name(c.id))
            .chain(
                caps.extended_capabilities
                    .iter()
                    .map(|c| crate::pci::extended_capability_name(c.id)),
            )
            .collect(),
        config_problems: caps.problems.iter().map(|p| p.to_string()).collect(),
    }
}

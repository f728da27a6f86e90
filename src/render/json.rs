//! `topo --format json`: the public, versioned model of the machine.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Serialize, Serializer};
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::{Value, json};

use super::{Render, RenderOptions, TOPO_SCHEMA_VERSION};
use crate::scan::{Bar, HostFacts, Limitation, NvmeController, P2pMem};
use crate::topology::{Node, Role, Tree};

pub struct JsonTopo;

impl Render for JsonTopo {
    fn render(&self, tree: &Tree, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
        // The devices are nearly all of the document (megabytes on a
        // 4096-function server), so they are serialised in parallel and
        // spliced into the rest, serialised with an empty device list.
        let mut doc = topo_document(tree, &opts.source);
        doc.devices.placeholder = true;
        let mut rest = Vec::with_capacity(64 * 1024);
        serde_json::to_writer_pretty(&mut rest, &doc).map_err(io::Error::other)?;
        // Found only where the formatter put it: a raw newline never
        // occurs inside a JSON string.
        const EMPTY: &[u8] = b"\n  \"devices\": []";
        let at = rest
            .windows(EMPTY.len())
            .position(|w| w == EMPTY)
            .map(|i| i + EMPTY.len() - b"[]".len())
            .ok_or_else(|| io::Error::other("no device list in the document"))?;
        out.write_all(&rest[..at])?;
        write_devices(tree, out)?;
        out.write_all(&rest[at + b"[]".len()..])?;
        out.write_all(b"\n")
    }
}

/// Devices per piece of the device list: small enough that a few pieces
/// in flight hold little memory, large enough to keep threads busy.
const PIECE: usize = 64;

/// The `devices` array as `to_writer_pretty` writes it at that depth (a
/// value of the top-level object). Pieces of it are serialised on other
/// threads and written in order as they come, through a few recycled
/// buffers, so the document is never held whole.
fn write_devices(tree: &Tree, out: &mut dyn Write) -> io::Result<()> {
    if tree.nodes.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    let pieces: Vec<&[Node]> = tree.nodes.chunks(PIECE).collect();
    let threads = crate::threads_for(tree.nodes.len());
    if threads == 1 {
        let mut buf = Vec::new();
        for (i, nodes) in pieces.iter().enumerate() {
            buf.clear();
            device_elements(tree, nodes, i == 0, &mut buf)?;
            out.write_all(&buf)?;
        }
    } else {
        let next = AtomicUsize::new(0);
        let spare: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
        let (done, finished) = std::sync::mpsc::sync_channel(threads * 2);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (done, next, spare, pieces) = (done.clone(), &next, &spare, &pieces);
                s.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(nodes) = pieces.get(i) else { break };
                        let mut buf = spare
                            .lock()
                            .ok()
                            .and_then(|mut v| v.pop())
                            .unwrap_or_default();
                        buf.clear();
                        let piece = device_elements(tree, nodes, i == 0, &mut buf).map(|()| buf);
                        // The writer has stopped (an error): so do we.
                        if done.send((i, piece)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done);
            // Pieces come back in any order; write them in order.
            let mut waiting = BTreeMap::new();
            let mut wanted = 0;
            for (i, piece) in finished {
                waiting.insert(i, piece?);
                while let Some(buf) = waiting.remove(&wanted) {
                    out.write_all(&buf)?;
                    if let Ok(mut v) = spare.lock() {
                        v.push(buf);
                    }
                    wanted += 1;
                }
            }
            io::Result::Ok(())
        })?;
    }
    out.write_all(b"\n  ]")
}

/// Array elements two levels deep, each preceded by its separator.
fn device_elements(tree: &Tree, nodes: &[Node], first: bool, out: &mut Vec<u8>) -> io::Result<()> {
    for (i, n) in nodes.iter().enumerate() {
        out.extend_from_slice(if first && i == 0 {
            b"\n    "
        } else {
            b",\n    "
        });
        // The pretty formatter indents by its own depth: open two levels
        // (the document object, the array) on it, writing them nowhere.
        let mut formatter = PrettyFormatter::new();
        formatter.begin_object(&mut io::sink())?;
        formatter.begin_array(&mut io::sink())?;
        let mut ser = serde_json::Serializer::with_formatter(&mut *out, formatter);
        device_json(tree, n)
            .serialize(&mut ser)
            .map_err(io::Error::other)?;
    }
    Ok(())
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
    devices: Devices<'a>,
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
        devices: Devices {
            tree,
            placeholder: false,
        },
        nvme: &tree.nvme,
        kernel_log: &tree.kernel_log,
    }
}

/// `devices[]`, serialised straight from the tree; a placeholder
/// serialises as an empty list (see [`JsonTopo`]).
pub struct Devices<'a> {
    tree: &'a Tree,
    placeholder: bool,
}

impl Serialize for Devices<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let nodes = if self.placeholder {
            &[][..]
        } else {
            &self.tree.nodes[..]
        };
        s.collect_seq(nodes.iter().map(|n| device_json(self.tree, n)))
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
        vendor_id: f.vendor.map(|v| hex(v.into(), 4)),
        device_id: f.device.map(|v| hex(v.into(), 4)),
        subsystem_id: caps.subsystem.map(|(v, d)| {
            let mut id = hex(v.into(), 4);
            id.push(':');
            id.push_str(&hex(d.into(), 4));
            id
        }),
        class: f.class.map(|c| hex(c.into(), 6)),
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
        dsn: caps.dsn.map(|d| hex(d, 16)),
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

/// `value` in lowercase hex, zero-padded to at least `width` digits, as
/// `format!("{value:0width$x}")` but without the formatting machinery (a
/// device has several such fields, a large server thousands of devices).
fn hex(value: u64, width: usize) -> String {
    let digits = (value.max(1).ilog2() as usize / 4 + 1).max(width);
    (0..digits)
        .rev()
        .map(|i| char::from(b"0123456789abcdef"[(value >> (4 * i) & 0xf) as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::SystemRoot;
    use crate::scan::{ScanOptions, scan};

    /// The spliced, multi-threaded rendering is byte for byte what
    /// serde_json makes of the whole document.
    #[test]
    fn parallel_devices_splice_into_the_pretty_document() {
        let dir = tempfile::tempdir().unwrap();
        crate::fixture::build(&crate::fixture::large_server(300), dir.path()).unwrap();
        let root = SystemRoot::open(dir.path()).unwrap();
        let tree = Tree::build(scan(&root, &ScanOptions { no_names: true }));
        let opts = RenderOptions {
            color: false,
            source: "test".to_string(),
        };
        let mut spliced = Vec::new();
        JsonTopo.render(&tree, &opts, &mut spliced).unwrap();
        assert!(tree.nodes.len() > 2 * PIECE, "several pieces");
        let mut whole = serde_json::to_vec_pretty(&topo_document(&tree, "test")).unwrap();
        whole.push(b'\n');
        assert_eq!(tree.nodes.len(), 300);
        assert!(spliced == whole, "spliced rendering differs");
    }

    #[test]
    fn hex_matches_the_format_string() {
        for v in [
            0u64,
            1,
            0xf,
            0x10,
            0x1234,
            0xabcdef,
            0x1_0000_0000,
            u64::MAX,
        ] {
            for w in [1, 4, 6, 16] {
                assert_eq!(hex(v, w), format!("{v:0w$x}"), "{v:#x} {w}");
            }
        }
    }
}

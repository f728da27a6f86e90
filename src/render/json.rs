//! `topo --format json`: the public, versioned model of the machine.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Serialize, Serializer};

use super::pretty::{Pretty, WritePretty, wire_struct};
use super::{Render, RenderOptions, TOPO_SCHEMA_VERSION, ToolBlock};
use crate::pci::Bdf;
use crate::scan::{HostFacts, Limitation, NvmeController, Source};
use crate::topology::{Node, NodeId, Role, Tree};

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
        // What serde_json would write for the element (DeviceJson derives
        // Serialize for the whole document; tests keep the two equal).
        device_json(tree, n).write_pretty(&mut Pretty::new(out, 2));
    }
    Ok(())
}

/// The whole document; `schema/topo.schema.json` describes it.
#[derive(Serialize)]
pub struct TopoDocument<'a> {
    schema_version: u32,
    tool: ToolBlock,
    source: &'a str,
    host: &'a HostFacts,
    limitations: &'a [Limitation],
    host_bridges: Vec<HostBridgeJson<'a>>,
    switches: Vec<SwitchJson>,
    devices: Devices<'a>,
    nvme: &'a [NvmeController],
    kernel_log: &'a [String],
}

/// `host_bridges[]`.
#[derive(Serialize)]
struct HostBridgeJson<'a> {
    id: &'a str,
    domain: u32,
    bus: u8,
    numa_node: Option<i32>,
    /// The first function below it, which the kernel's whitelist looks up.
    first_device: Option<Bdf>,
    first_device_id: Option<IdPair>,
}

/// `switches[]`: a switch's upstream port and its downstream ports.
#[derive(Serialize)]
struct SwitchJson {
    upstream: Bdf,
    downstream: Vec<Bdf>,
}

pub fn topo_document<'a>(tree: &'a Tree, source: &'a str) -> TopoDocument<'a> {
    let bdf = |id: NodeId| tree.node(id).bdf();
    TopoDocument {
        schema_version: TOPO_SCHEMA_VERSION,
        tool: ToolBlock::THIS,
        source,
        host: &tree.host,
        limitations: &tree.limitations,
        host_bridges: tree
            .host_bridges
            .iter()
            .map(|h| {
                let first = h.first_function.map(|f| tree.node(f));
                HostBridgeJson {
                    id: &h.id,
                    domain: h.domain,
                    bus: h.bus,
                    numa_node: h.numa_node,
                    first_device: first.map(|n| n.bdf()),
                    first_device_id: first.map(|n| {
                        IdPair(
                            n.facts.vendor.unwrap_or(0xffff),
                            n.facts.device.unwrap_or(0xffff),
                        )
                    }),
                }
            })
            .collect(),
        switches: tree
            .switches
            .iter()
            .map(|s| SwitchJson {
                upstream: bdf(s.upstream),
                downstream: s.downstream.iter().map(|&d| bdf(d)).collect(),
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

wire_struct! {
    /// One device in `devices[]`. A struct rather than a `json!` value: it
    /// serialises straight to the output, which matters on 4096-function
    /// trees. Its fields are declared once, for serde and for the pretty
    /// writer of the device list's hot path (see `pretty`).
    pub struct DeviceJson<'a> {
        bdf: Bdf,
        parent: Option<Bdf>,
        host_bridge: Option<&'a str>,
        port_type: Option<&'static str>,
        role: Role,
        role_inferred: bool,
        /// A bridge the input does not hold, kept at its place (written only
        /// when true).
        #[skip_if(std::ops::Not::not)]
        missing: bool,
        depth: usize,
        switch: Option<usize>,
        vendor_id: Option<Hex>,
        device_id: Option<Hex>,
        subsystem_id: Option<IdPair>,
        class: Option<Hex>,
        revision: Option<u8>,
        vendor_name: Option<&'a str>,
        device_name: Option<&'a str>,
        driver: Option<&'a str>,
        link: Option<LinkJson>,
        acs: Option<AcsJson>,
        iommu_group: Option<u32>,
        iommu_group_type: Option<&'a str>,
        numa_node: Option<i32>,
        p2pmem: Option<P2pMemJson>,
        block_devices: &'a [String],
        bars: Vec<BarJson>,
        physfn: Option<Bdf>,
        config_bytes: usize,
        bus_master: Option<bool>,
        relaxed_ordering: Option<bool>,
        max_payload: Option<u16>,
        max_read_request: Option<u16>,
        ats_enabled: Option<bool>,
        dsn: Option<Hex>,
        aer: Option<AerJson>,
        capabilities: Vec<&'static str>,
        config_problems: Vec<String>,
        source: Source,
        unknown_registers: Vec<&'static str>,
    }
}

wire_struct! {
    /// A device's `link`: trained and maximum speed and width.
    struct LinkJson {
        speed_gts: Option<f64>,
        width: Option<u8>,
        max_speed_gts: Option<f64>,
        max_width: Option<u8>,
        degraded: bool,
        source: &'static str,
    }
}

wire_struct! {
    /// A device's `acs`: the capability and control registers.
    struct AcsJson {
        cap: u16,
        ctrl: u16,
        cap_flags: Vec<&'static str>,
        ctrl_flags: Vec<&'static str>,
        redirects: bool,
        egress_vector_bits: u16,
    }
}

wire_struct! {
    /// A device's `aer`: the error status registers.
    struct AerJson {
        uncorrectable_status: u32,
        correctable_status: u32,
    }
}

wire_struct! {
    /// One of a device's `bars`.
    struct BarJson {
        index: u8,
        start: u64,
        size: u64,
        io: bool,
        is_64: bool,
        prefetchable: bool,
    }
}

wire_struct! {
    /// A provider's `p2pmem`.
    struct P2pMemJson {
        size: Option<u64>,
        available: Option<u64>,
        published: Option<bool>,
    }
}

// Values written through serde_json by the pretty writer too.

impl WritePretty for Source {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.serde(self);
    }
}

impl WritePretty for Role {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.serde(self);
    }
}

fn device_json<'a>(tree: &'a Tree, n: &'a Node) -> DeviceJson<'a> {
    let caps = &n.caps;
    let express = caps.express.as_ref();
    let f = &n.facts;
    DeviceJson {
        bdf: f.bdf,
        parent: n.parent.map(|p| tree.node(p).bdf()),
        host_bridge: tree.host_bridges.get(n.host_bridge).map(|h| h.id.as_str()),
        port_type: express.map(|e| e.port_type.as_str()),
        role: n.role,
        role_inferred: n.role_inferred,
        missing: f.missing,
        depth: n.depth,
        switch: n.switch,
        vendor_id: f.vendor.map(|v| Hex::new(v.into(), 4)),
        device_id: f.device.map(|v| Hex::new(v.into(), 4)),
        subsystem_id: caps.subsystem.map(|(v, d)| IdPair(v, d)),
        class: f.class.map(|c| Hex::new(c.into(), 6)),
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
        p2pmem: f.p2pmem.as_ref().map(|p| P2pMemJson {
            size: p.size,
            available: p.available,
            published: p.published,
        }),
        block_devices: &f.block_devices,
        bars: f
            .bars
            .iter()
            .map(|b| BarJson {
                index: b.index,
                start: b.start,
                size: b.size,
                io: b.io,
                is_64: b.is_64,
                prefetchable: b.prefetchable,
            })
            .collect(),
        physfn: f.physfn,
        config_bytes: f.config.len(),
        bus_master: caps.bus_master(),
        relaxed_ordering: n.dev_ctl().map(|c| c.relaxed_ordering),
        max_payload: n.dev_ctl().map(|c| c.max_payload),
        max_read_request: n.dev_ctl().map(|c| c.max_read_request),
        ats_enabled: caps.ats.as_ref().map(|a| a.enabled),
        dsn: caps.dsn.map(|d| Hex::new(d, 16)),
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
        source: f.source,
        unknown_registers: f.unknown_registers.iter().map(|r| r.as_str()).collect(),
    }
}

/// A number as lowercase hex zero-padded to at least `width` digits
/// (`{value:0width$x}`), serialised as a string: IDs, class, serial number.
/// Spelled out rather than formatted: a device has several.
#[derive(Clone, Copy)]
struct Hex {
    value: u64,
    width: usize,
}

impl Hex {
    fn new(value: u64, width: usize) -> Hex {
        Hex { value, width }
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [b'0'; 16];
        let digits = (self.value.max(1).ilog2() as usize / 4 + 1).max(self.width.min(16));
        for (i, b) in buf[16 - digits..].iter_mut().rev().enumerate() {
            *b = b"0123456789abcdef"[(self.value >> (4 * i) & 0xf) as usize];
        }
        f.write_str(std::str::from_utf8(&buf[16 - digits..]).unwrap_or_default())
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl WritePretty for Hex {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.quoted(self);
    }
}

/// A subsystem ID, `vvvv:dddd`.
#[derive(Clone, Copy)]
struct IdPair(u16, u16);

impl fmt::Display for IdPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            Hex::new(self.0.into(), 4),
            Hex::new(self.1.into(), 4)
        )
    }
}

impl Serialize for IdPair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl WritePretty for IdPair {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.quoted(self);
    }
}

impl WritePretty for Bdf {
    fn write_pretty(&self, w: &mut Pretty<'_>) {
        w.quoted(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::SystemRoot;
    use crate::scan::{ScanOptions, scan};

    /// The rendering (spliced, in pieces, on threads, by `pretty`) is byte
    /// for byte what serde_json makes of the whole document.
    fn assert_renders_as_serde_json(root: &std::path::Path, what: &str) {
        let root = SystemRoot::open(root).unwrap();
        let tree = Tree::build(scan(
            &root,
            &ScanOptions {
                no_names: true,
                ..Default::default()
            },
        ));
        let opts = RenderOptions {
            color: false,
            source: "test".to_string(),
            ..Default::default()
        };
        let mut rendered = Vec::new();
        JsonTopo.render(&tree, &opts, &mut rendered).unwrap();
        let mut whole = serde_json::to_vec_pretty(&topo_document(&tree, "test")).unwrap();
        whole.push(b'\n');
        assert!(
            rendered == whole,
            "{what}: rendering differs from serde_json"
        );
    }

    #[test]
    fn large_tree_renders_as_serde_json() {
        let dir = tempfile::tempdir().unwrap();
        let spec = p2pdoctor_fixture::large_server(300);
        p2pdoctor_fixture::build(&spec, dir.path()).unwrap();
        assert!(spec.function_count().unwrap() > 2 * PIECE, "several pieces");
        assert_renders_as_serde_json(dir.path(), "large_server(300)");
    }

    #[test]
    fn every_spec_fixture_renders_as_serde_json() {
        let specs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/specs");
        for entry in std::fs::read_dir(specs).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let spec = p2pdoctor_fixture::Spec::from_toml(&text).unwrap();
            let dir = tempfile::tempdir().unwrap();
            p2pdoctor_fixture::build(&spec, dir.path()).unwrap();
            assert_renders_as_serde_json(dir.path(), &path.display().to_string());
        }
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
                assert_eq!(
                    Hex::new(v, w).to_string(),
                    format!("{v:0w$x}"),
                    "{v:#x} {w}"
                );
            }
        }
    }
}

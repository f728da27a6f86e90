//! The vendor's view beside ours: `nvidia-smi topo -m` against the path
//! classes p2pdoctor reads from the PCI tree (NVML's meanings, see
//! `topology::PathClass`). A disagreement is worth a look either way: a
//! wrong GPU-to-address mapping, a platform one of the two misreads, or a
//! virtual topology.

use serde::Serialize;

use super::{Family, Rule, RuleRef, Stage, plural};
use crate::diagnose::kernel::KernelModel;
use crate::diagnose::p2pdma::P2pView;
use crate::diagnose::{Finding, MapType, Severity, Status};
use crate::pci::Bdf;
use crate::scan::nvidia::{NvidiaTopology, p2p_status_meaning};
use crate::topology::{NodeId, PathClass, Tree};

pub const DISAGREES: RuleRef = RuleRef {
    id: "P2P803",
    name: "vendor-topology-disagrees",
};
pub const P2P_READ_DISAGREES: RuleRef = RuleRef {
    id: "P2P805",
    name: "vendor-p2p-read-disagrees",
};

/// In the device family's registry (device.rs): `diagnose()` runs
/// [`check`] and [`check_p2p_read`] through [`run`] when the input holds
/// the vendor's matrix.
pub(super) const TOPOLOGY_RULE: Rule =
    Rule::elsewhere(DISAGREES, Family::Device, Stage::VendorTopology);
pub(super) const P2P_READ_RULE: Rule =
    Rule::elsewhere(P2P_READ_DISAGREES, Family::Device, Stage::VendorTopology);

/// How a matrix column was tied to a PCI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mapping {
    /// `nvidia-smi --query-gpu=index,pci.bus_id`.
    QueryGpu,
    /// `/sys/class/infiniband/<name>/device`.
    RdmaSysfs,
    /// By NVML's order (GPUs by PCI address), or NICs by address: a guess.
    Order,
    /// Not found among the PCI functions.
    NotFound,
}

/// One column of the vendor's matrix and the function it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VendorDevice {
    /// `GPU0`, `NIC1`, `mlx4_0`.
    pub name: String,
    /// The RDMA device a NIC column stands for (`mlx5_0`).
    pub rdma: Option<String>,
    pub bdf: Option<Bdf>,
    pub mapping: Mapping,
}

/// One pair of the matrix with both views.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VendorPair {
    pub a: String,
    pub b: String,
    /// What the vendor's tool printed (`PIX`, `SYS`, `NV18`).
    pub vendor: String,
    /// p2pdoctor's class of the wiring, when both ends were found.
    pub p2pdoctor: Option<PathClass>,
    /// None where they cannot be compared (NVLink, an end not found).
    pub agree: Option<bool>,
}

/// `nvidia-smi topo -m` beside p2pdoctor's classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VendorComparison {
    pub tool: &'static str,
    pub source: String,
    pub devices: Vec<VendorDevice>,
    pub pairs: Vec<VendorPair>,
}

/// NVIDIA display and 3D controllers in address order: NVML's GPU order.
fn gpus_by_address(tree: &Tree) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = tree
        .ids()
        .filter(|&i| {
            let f = &tree.node(i).facts;
            f.vendor == Some(0x10de) && f.class.is_some_and(|c| c >> 16 == 0x03)
        })
        .collect();
    v.sort_by_key(|&i| tree.node(i).bdf());
    v
}

/// Physical functions of network and InfiniBand controllers that are not
/// SR-IOV virtual functions, in address order.
fn nics_by_address(tree: &Tree) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = tree
        .ids()
        .filter(|&i| {
            let f = &tree.node(i).facts;
            f.physfn.is_none() && f.class.is_some_and(|c| c >> 16 == 0x02)
        })
        .collect();
    v.sort_by_key(|&i| tree.node(i).bdf());
    v
}

/// GPU `k` of NVML's numbering: by `--query-gpu` when it was saved, else
/// by NVML's order (GPUs by PCI address).
fn gpu_address(
    tree: &Tree,
    topo: &NvidiaTopology,
    gpus: &[NodeId],
    k: usize,
) -> (Option<Bdf>, Mapping) {
    let listed = topo
        .gpu_addresses
        .get(&(k as u32))
        .filter(|b| tree.find(**b).is_some());
    match listed {
        Some(b) => (Some(*b), Mapping::QueryGpu),
        None => match gpus.get(k) {
            Some(&id) => (Some(tree.node(id).bdf()), Mapping::Order),
            None => (None, Mapping::NotFound),
        },
    }
}

fn index_of(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?.parse().ok()
}

/// Ties each column to a function and compares every pair below the
/// diagonal.
pub fn compare(tree: &Tree, topo: &NvidiaTopology) -> VendorComparison {
    let gpus = gpus_by_address(tree);
    let nics = nics_by_address(tree);
    let mut rdma_seen = 0usize;
    let devices: Vec<VendorDevice> = topo
        .devices
        .iter()
        .map(|name| {
            if let Some(k) = index_of(name, "GPU") {
                let (bdf, mapping) = gpu_address(tree, topo, &gpus, k);
                return VendorDevice {
                    name: name.clone(),
                    rdma: None,
                    bdf,
                    mapping,
                };
            }
            let rdma = topo.rdma_name(name).to_string();
            let nth = rdma_seen;
            rdma_seen += 1;
            let (bdf, mapping) = match topo.rdma_addresses.get(&rdma) {
                Some(b) if tree.find(*b).is_some() => (Some(*b), Mapping::RdmaSysfs),
                _ => match nics.get(nth) {
                    Some(&id) => (Some(tree.node(id).bdf()), Mapping::Order),
                    None => (None, Mapping::NotFound),
                },
            };
            VendorDevice {
                name: name.clone(),
                rdma: Some(rdma),
                bdf,
                mapping,
            }
        })
        .collect();
    let mut pairs = Vec::new();
    for i in 0..devices.len() {
        for j in 0..i {
            let Some(cell) = topo.cells.get(i).and_then(|r| r.get(j)) else {
                continue;
            };
            let ends = devices[i]
                .bdf
                .and_then(|a| tree.find(a))
                .zip(devices[j].bdf.and_then(|b| tree.find(b)));
            let ours = ends.map(|(a, b)| tree.path(a, b).class);
            // SOC is what older drivers called SYS; NV# is NVLink, which
            // the PCI tree does not show.
            let vendor = if cell == "SOC" { "SYS" } else { cell.as_str() };
            let agree = match ours {
                Some(c) if !vendor.starts_with("NV") => Some(c.as_str() == vendor),
                _ => None,
            };
            pairs.push(VendorPair {
                a: devices[j].name.clone(),
                b: devices[i].name.clone(),
                vendor: cell.clone(),
                p2pdoctor: ours,
                agree,
            });
        }
    }
    VendorComparison {
        tool: "nvidia-smi topo -m",
        source: topo.source.clone(),
        devices,
        pairs,
    }
}

fn describe(d: &VendorDevice) -> String {
    let name = match &d.rdma {
        Some(r) if *r != d.name => format!("{} ({r})", d.name),
        _ => d.name.clone(),
    };
    match d.bdf {
        Some(b) => format!("{name} = {b}"),
        None => format!("{name} = not found"),
    }
}

/// Both vendor rules, for `diagnose()` where the input holds the vendor's
/// matrix: each one's findings held to its registry entry, as
/// [`run_all`](super::run_all) holds the rest.
pub(crate) fn run(
    tree: &Tree,
    cmp: Option<&VendorComparison>,
    view: &P2pView,
    kernel: &KernelModel,
) -> Vec<Finding> {
    let mut found = super::held(&TOPOLOGY_RULE, check(cmp));
    if let Some(t) = tree.host.nvidia_topology.as_ref() {
        found.extend(super::held(
            &P2P_READ_RULE,
            check_p2p_read(tree, t, view, kernel),
        ));
    }
    found
}

fn check(cmp: Option<&VendorComparison>) -> Vec<Finding> {
    let Some(cmp) = cmp else {
        return Vec::new();
    };
    let device = |n: &str| cmp.devices.iter().find(|d| d.name == n);
    let differ: Vec<&VendorPair> = cmp
        .pairs
        .iter()
        .filter(|p| p.agree == Some(false))
        .collect();
    if differ.is_empty() {
        return Vec::new();
    }
    let guessed: Vec<&VendorDevice> = cmp
        .devices
        .iter()
        .filter(|d| d.mapping == Mapping::Order)
        .collect();
    let mut subjects = Vec::new();
    let mut evidence = Vec::new();
    for p in &differ {
        let (a, b) = (device(&p.a), device(&p.b));
        subjects.extend(a.and_then(|d| d.bdf));
        subjects.extend(b.and_then(|d| d.bdf));
        evidence.push(format!(
            "{} ↔ {}: nvidia-smi {}, p2pdoctor {}",
            a.map(describe).unwrap_or_else(|| p.a.clone()),
            b.map(describe).unwrap_or_else(|| p.b.clone()),
            p.vendor,
            p.p2pdoctor.map(|c| c.as_str()).unwrap_or("?")
        ));
    }
    let compared = cmp.pairs.iter().filter(|p| p.agree.is_some()).count();
    let mut message = format!(
        "{} and p2pdoctor read {} of {} compared differently ({}). p2pdoctor's class comes from the PCI tree it read (bridges, switches, host bridges, NUMA nodes); nvidia-smi's from NVML.",
        cmp.tool,
        differ.len(),
        plural(compared, "pair", "pairs"),
        cmp.source,
    );
    let status = if guessed.is_empty() {
        Status::Predicted
    } else {
        let names: Vec<String> = guessed
            .iter()
            .map(|d| match d.bdf {
                Some(b) => format!("{} ({b})", d.name),
                None => d.name.clone(),
            })
            .collect();
        message.push_str(&format!(
            " {} {} tied to {} PCI {} by address order, not by the tool: run nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader beside it (and keep /sys/class/infiniband) to tie them for certain.",
            names.join(", "),
            if names.len() == 1 { "was" } else { "were" },
            if names.len() == 1 { "its" } else { "their" },
            if names.len() == 1 { "address" } else { "addresses" },
        ));
        Status::Inconclusive
    };
    vec![
        DISAGREES
            .finding(Severity::Warning, status, subjects, message)
            .fix(
                "Check the mapping first (the evidence lines name each device's PCI address). If it is right, the two tools read the platform differently: p2pdoctor topo shows the bridges on each path; a virtual machine's emulated topology, a switch that hides its ports, or an NVML that does not know the CPU's root complex are the usual causes. For P2P what counts is the effective path (effective_path_class in check --format json).",
            )
            .evidence(evidence),
    ]
}

/// P2P805: `nvidia-smi topo -p2p r` against p2pdoctor's prediction for
/// each GPU pair. p2pdoctor predicts peer reads when the kernel's
/// calc_map_type_and_dist() maps the pair (bus address or through the host
/// bridge) and the root complex forwards P2P reads (rules/platforms.toml,
/// P2P111). Pairs whose verdict is not certain, and cells the tool marks
/// `U`, are not compared.
fn check_p2p_read(
    tree: &Tree,
    topo: &NvidiaTopology,
    view: &P2pView,
    kernel: &KernelModel,
) -> Vec<Finding> {
    let Some(m) = &topo.p2p_read else {
        return Vec::new();
    };
    let gpus = gpus_by_address(tree);
    let writes_only = {
        let cpu = &tree.host.cpu;
        super::platform::platforms().iter().any(|p| {
            p.forwards == "writes"
                && cpu.vendor.as_deref() == Some(p.vendor.as_str())
                && cpu.family == Some(p.family)
                && cpu.model.is_some_and(|x| p.models.contains(&x))
        })
    };
    let mapped: Vec<(Option<Bdf>, Mapping)> = m
        .devices
        .iter()
        .map(|name| match index_of(name, "GPU") {
            Some(k) => gpu_address(tree, topo, &gpus, k),
            None => (None, Mapping::NotFound),
        })
        .collect();
    let mut evidence = Vec::new();
    let mut subjects = Vec::new();
    let (mut compared, mut guessed) = (0usize, false);
    let (mut nvidia_no, mut nvidia_yes) = (0usize, 0usize);
    for i in 0..m.devices.len() {
        for j in (i + 1)..m.devices.len() {
            let cell = m.cells.get(i).and_then(|r| r.get(j)).map(String::as_str);
            let says = match cell {
                Some("OK") => true,
                Some("CNS" | "GNS" | "TNS" | "NS" | "DR") => false,
                _ => continue,
            };
            let (Some(a), Some(b)) = (mapped[i].0, mapped[j].0) else {
                continue;
            };
            let (Some(na), Some(nb)) = (tree.find(a), tree.find(b)) else {
                continue;
            };
            let (Some(pa), Some(pb)) = (view.find(a), view.find(b)) else {
                continue;
            };
            let v = view.calc_map_type_and_dist(kernel, pa, pb);
            if !v.certain() {
                continue;
            }
            compared += 1;
            let class = tree.path(na, nb).class;
            let (ours, why) = match v.map_type {
                MapType::NotSupported => (
                    false,
                    format!(
                        "no P2P: the kernel refuses ({})",
                        v.blocked_by.as_deref().unwrap_or("not_supported")
                    ),
                ),
                MapType::ThruHostBridge if writes_only => (
                    false,
                    format!(
                        "writes only: the root complex does not forward P2P reads ({}, P2P111)",
                        class.as_str()
                    ),
                ),
                t => (
                    true,
                    format!("direct P2P, {} ({})", t.as_str(), class.as_str()),
                ),
            };
            if ours == says {
                continue;
            }
            if says {
                nvidia_yes += 1;
            } else {
                nvidia_no += 1;
            }
            guessed |= mapped[i].1 == Mapping::Order || mapped[j].1 == Mapping::Order;
            subjects.extend([a, b]);
            let cell = cell.unwrap_or("?");
            evidence.push(format!(
                "{} = {a} ↔ {} = {b}: nvidia-smi {cell} ({}); p2pdoctor: {why}",
                m.devices[i],
                m.devices[j],
                p2p_status_meaning(cell),
            ));
        }
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    let mut message = format!(
        "nvidia-smi topo -p2p r and p2pdoctor disagree on peer reads for {} of {} compared ({}).",
        evidence.len(),
        plural(compared, "GPU pair", "GPU pairs"),
        m.source,
    );
    if nvidia_no > 0 {
        message.push_str(&format!(
            " Where the driver says no ({nvidia_no}) and the PCI tree allows it, the NVIDIA driver applies rules of its own that the tree cannot show: GeForce parts (GNS), chipsets it does not validate (CNS), a registry key (DR); CUDA peer access and NCCL's P2P transport follow the driver."
        ));
    }
    if nvidia_yes > 0 {
        message.push_str(&format!(
            " Where the driver says OK ({nvidia_yes}) and p2pdoctor predicts no P2P read, the driver maps peers by its own rules, not the kernel's P2PDMA: CUDA may do what the kernel refuses for NVMe or RDMA through dma-buf, but reads through a root complex that drops them, or through an IOMMU that translates, fail or corrupt."
        ));
    }
    let status = if guessed {
        message.push_str(" Some GPUs were tied to PCI addresses by NVML's order: save nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader beside it.");
        Status::Inconclusive
    } else {
        Status::Predicted
    };
    vec![
        P2P_READ_DISAGREES
            .finding(Severity::Warning, status, subjects, message)
            .fix("Trust each view for its own user: nvidia-smi for CUDA peer access and NCCL (confirm with cuda-samples p2pBandwidthLatencyTest), p2pdoctor for the kernel's P2PDMA (check --confirm). Where they disagree on the PCIe path, p2pdoctor topo shows the bridges, ACS and host bridges on it.")
            .evidence(evidence),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::nvidia::parse_topo_matrix;

    #[test]
    fn index_from_names() {
        assert_eq!(index_of("GPU12", "GPU"), Some(12));
        assert_eq!(index_of("NIC0", "GPU"), None);
        let t = parse_topo_matrix("\tGPU0\tGPU1\nGPU0\t X \tSOC\nGPU1\tSOC\t X \n").unwrap();
        assert_eq!(t.cells[1][0], "SOC");
    }
}

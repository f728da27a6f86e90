//! The devices GPU, NIC and storage owners care about, and the path class
//! between every two of them, the way `nvidia-smi topo -m` lays it out:
//! NVML's classes for the wiring, the effective class where the kernel's
//! decision sends the traffic through the root complex instead, NUMA node
//! and CPU affinity, and the names the OS gives each device.

use serde::Serialize;

use super::kernel::KernelModel;
use super::p2pdma::P2pView;
use crate::pci::Bdf;
use crate::topology::{NodeId, PathClass, Tree};

/// The kinds of device the matrix (and `--role`) knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Display and 3D controllers (class 03).
    Gpu,
    /// Network and InfiniBand controllers (class 02).
    Nic,
    /// NVMe controllers (class 01 08).
    Nvme,
    /// Processing accelerators (class 12) and co-processors (0b 40).
    Accelerator,
}

impl DeviceKind {
    /// The kind of a function by its class code; None for the rest.
    pub fn of_class(class: Option<u32>) -> Option<DeviceKind> {
        let c = class?;
        match (c >> 16, (c >> 8) & 0xff) {
            (0x03, _) => Some(DeviceKind::Gpu),
            (0x02, _) => Some(DeviceKind::Nic),
            (0x01, 0x08) => Some(DeviceKind::Nvme),
            (0x12, _) | (0x0b, 0x40) => Some(DeviceKind::Accelerator),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            DeviceKind::Gpu => "GPU",
            DeviceKind::Nic => "NIC",
            DeviceKind::Nvme => "NVME",
            DeviceKind::Accelerator => "ACC",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixDevice {
    /// `GPU0`, `NIC1`, `NVME0`, `ACC0`: numbered by PCI address within
    /// their kind (NVML numbers GPUs the same way).
    pub label: String,
    pub bdf: Bdf,
    pub kind: DeviceKind,
    /// `mlx5_0`, `ens1f0`, `card1`, `nvme0`.
    pub names: Vec<String>,
    pub numa_node: Option<i32>,
    /// `local_cpulist`.
    pub cpu_affinity: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MatrixCell {
    pub path_class: PathClass,
    pub effective_path_class: PathClass,
    /// The kernel's decision behind the effective class needed nothing
    /// that could not be read.
    pub certain: bool,
    /// The narrowest link on the path, GB/s one direction (see
    /// `PairReport::bandwidth_bound`); None on the diagonal and where a
    /// link on the path could not be read.
    pub bandwidth_bound: Option<f64>,
}

/// Every device of the kinds above (physical functions), and the classes
/// between each two.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMatrix {
    pub devices: Vec<MatrixDevice>,
    /// `cells[i][j]`, i and j indexing `devices`.
    pub cells: Vec<Vec<MatrixCell>>,
    /// Devices left out past [`MAX_DEVICES`].
    pub left_out: usize,
}

/// The matrix grows as the square: past this many devices it shows the
/// first ones by kind and address, and says how many it left out.
pub const MAX_DEVICES: usize = 64;

pub(crate) fn build(
    tree: &Tree,
    view: &P2pView,
    kernel: &KernelModel,
    roles: &[DeviceKind],
) -> Option<ClassMatrix> {
    let mut found: Vec<(DeviceKind, NodeId)> = tree
        .ids()
        .filter_map(|id| {
            let n = tree.node(id);
            if !n.role.is_endpoint() || n.facts.physfn.is_some() || n.facts.missing {
                return None;
            }
            let kind = DeviceKind::of_class(n.facts.class)?;
            (roles.is_empty() || roles.contains(&kind)).then_some((kind, id))
        })
        .collect();
    if found.len() < 2 {
        return None;
    }
    found.sort_by_key(|&(k, id)| (k, tree.node(id).bdf()));
    let left_out = found.len().saturating_sub(MAX_DEVICES);
    found.truncate(MAX_DEVICES);
    let mut counters = std::collections::BTreeMap::new();
    let devices: Vec<MatrixDevice> = found
        .iter()
        .map(|&(kind, id)| {
            let n = tree.node(id);
            let k = counters.entry(kind).or_insert(0usize);
            let label = format!("{}{k}", kind.prefix());
            *k += 1;
            MatrixDevice {
                label,
                bdf: n.bdf(),
                kind,
                names: n.facts.os_names.clone(),
                numa_node: n.facts.numa_node,
                cpu_affinity: n.facts.local_cpulist.clone(),
            }
        })
        .collect();
    // Each device's place in the P2PDMA view, looked up once.
    let in_view: Vec<Option<NodeId>> = found
        .iter()
        .map(|&(_, id)| view.find(tree.node(id).bdf()))
        .collect();
    let cells = found
        .iter()
        .enumerate()
        .map(|(i, &(_, a))| {
            found
                .iter()
                .enumerate()
                .map(|(j, &(_, b))| {
                    let physical = tree.path(a, b).class;
                    let (through, certain) = match (in_view[i], in_view[j]) {
                        (Some(pa), Some(pb)) if a != b => {
                            let v = view.calc_map_type_and_dist(kernel, pa, pb);
                            (v.needs_host_bridge(), v.certain())
                        }
                        _ => (false, true),
                    };
                    let bandwidth_bound = match super::checks::path_links(tree, a, b) {
                        (Some(l), true) if a != b => Some(l.gbytes_per_s),
                        _ => None,
                    };
                    MatrixCell {
                        path_class: physical,
                        effective_path_class: physical.effective(through),
                        certain,
                        bandwidth_bound,
                    }
                })
                .collect()
        })
        .collect();
    Some(ClassMatrix {
        devices,
        cells,
        left_out,
    })
}

//! NVMe controllers, their CMBs and namespaces, and block devices tied to
//! the PCI functions they sit on.

use serde::Serialize;

use super::device::DeviceFacts;
use crate::pci::Bdf;
use crate::root::{SystemRoot, join};

#[derive(Debug, Clone, Serialize)]
pub struct NvmeController {
    /// `nvme0`
    pub name: String,
    /// The PCI function, when the controller is on PCI (not fabrics).
    pub pci: Option<Bdf>,
    pub model: Option<String>,
    pub subsysnqn: Option<String>,
    pub transport: Option<String>,
    pub cmb: Option<Cmb>,
    /// Openable namespace block devices (multipath heads when the kernel
    /// uses native multipath), sorted.
    pub namespaces: Vec<String>,
}

/// The Controller Memory Buffer registers (NVMe base spec, CMBLOC 0x38,
/// CMBSZ 0x3C) and what drivers/nvme/host/pci.c nvme_map_cmb() makes of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmb {
    pub cmbloc: u32,
    pub cmbsz: u32,
    /// Bytes: (1 << (12 + 4 * SZU)) * SZ.
    pub size: u64,
    /// BAR holding the CMB (CMBLOC.BIR).
    pub bar: u8,
    /// Offset into that BAR: OFST * unit.
    pub offset: u64,
    pub submission_queues: bool,
    pub completion_queues: bool,
    pub lists: bool,
    pub read_data: bool,
    pub write_data: bool,
}

impl Cmb {
    pub fn decode(cmbloc: u32, cmbsz: u32) -> Cmb {
        let szu = (cmbsz >> 8) & 0xf;
        // SZU values above 6 are reserved; the shift is bounded anyway.
        let unit = 1u64 << (12 + 4 * szu.min(6));
        Cmb {
            cmbloc,
            cmbsz,
            size: unit.saturating_mul(u64::from(cmbsz >> 12)),
            bar: (cmbloc & 0x7) as u8,
            offset: unit.saturating_mul(u64::from(cmbloc >> 12)),
            submission_queues: cmbsz & 1 != 0,
            completion_queues: cmbsz & 2 != 0,
            lists: cmbsz & 4 != 0,
            read_data: cmbsz & 8 != 0,
            write_data: cmbsz & 16 != 0,
        }
    }

    /// The kernel publishes a CMB for P2P only with both WDS and RDS.
    pub fn p2p_capable(&self) -> bool {
        self.read_data && self.write_data
    }
}

/// `x0000000e`, `0x0000000e` or decimal `14`.
fn parse_register(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix('x')) {
        u32::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// The `cmb` attribute: `cmbloc : x%08x\ncmbsz  : x%08x\n`.
fn parse_cmb_attribute(text: &str) -> Option<(u32, u32)> {
    let mut loc = None;
    let mut sz = None;
    for line in text.lines() {
        let (k, v) = line.split_once(':')?;
        match k.trim() {
            "cmbloc" => loc = parse_register(v),
            "cmbsz" => sz = parse_register(v),
            _ => {}
        }
    }
    Some((loc?, sz?))
}

pub(super) fn read_nvme(root: &SystemRoot) -> Vec<NvmeController> {
    let mut out = Vec::new();
    for name in root.read_dir("sys/class/nvme").unwrap_or_default() {
        let dir = format!("sys/class/nvme/{name}");
        let Ok(canonical) = root.resolve(&dir, true) else {
            continue;
        };
        let text = |a: &str| {
            root.read_string(&join(&canonical, a))
                .ok()
                .filter(|s| !s.is_empty())
        };
        let pci = root
            .resolve(&join(&canonical, "device"), true)
            .ok()
            .and_then(|p| p.rsplit('/').next().and_then(|c| c.parse().ok()));
        let regs = match (text("cmbloc"), text("cmbsz")) {
            (Some(l), Some(s)) => parse_register(&l).zip(parse_register(&s)),
            _ => text("cmb").and_then(|t| parse_cmb_attribute(&t)),
        };
        let mut namespaces: Vec<String> = root
            .read_dir(&canonical)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| namespace_head(&n))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        out.push(NvmeController {
            pci,
            model: text("model"),
            subsysnqn: text("subsysnqn"),
            transport: text("transport"),
            cmb: regs.map(|(l, s)| Cmb::decode(l, s)),
            namespaces,
            name,
        });
    }
    out.sort_by_key(|c| natural_key(&c.name));
    out
}

/// The openable block device for a namespace entry under a controller:
/// `nvme0n1` as it is; a hidden multipath path `nvme0c1n1` → its head
/// `nvme0n1` (drivers/nvme/host/multipath.c names paths
/// nvme<subsys>c<ctrl>n<ns> and heads nvme<subsys>n<ns>).
pub fn namespace_head(name: &str) -> Option<String> {
    let rest = name.strip_prefix("nvme")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (subsys, ns) = rest.split_once('n')?;
    if !digits(ns) {
        return None;
    }
    let subsys = match subsys.split_once('c') {
        Some((s, c)) if digits(s) && digits(c) => s,
        None if digits(subsys) => subsys,
        _ => return None,
    };
    Some(format!("nvme{subsys}n{ns}"))
}

/// Each whole-disk block device with the PCI function it sits on: the
/// last PCI address in its canonical sysfs path, or for an NVMe multipath
/// head (a virtual device) the controllers whose paths lead to it.
pub(super) fn read_block_devices(root: &SystemRoot) -> Vec<(Bdf, String)> {
    let mut found = Vec::new();
    for name in root.read_dir("sys/class/block").unwrap_or_default() {
        let link = format!("sys/class/block/{name}");
        let Ok(canonical) = root.resolve(&link, true) else {
            continue;
        };
        if root.exists(&join(&canonical, "partition")) {
            continue;
        }
        let owner = canonical
            .split('/')
            .filter_map(|c| c.parse::<Bdf>().ok())
            .next_back();
        let Some(owner) = owner else { continue };
        // A hidden path device stands for its head.
        let shown = namespace_head(&name).unwrap_or(name);
        found.push((owner, shown));
    }
    found
}

/// The names the OS gives PCI functions in the classes that matter for
/// P2P: network interfaces, RDMA devices, DRM cards, NVMe controllers,
/// each tied to its function by its `device` link.
pub(super) fn read_os_names(root: &SystemRoot) -> Vec<(Bdf, String)> {
    let mut found = Vec::new();
    for class in ["net", "infiniband", "drm", "nvme"] {
        let dir = format!("sys/class/{class}");
        for name in root.read_dir(&dir).unwrap_or_default() {
            // DRM lists connectors (card1-DP-1) and render nodes beside
            // the cards.
            if class == "drm" && (!name.starts_with("card") || name.contains('-')) {
                continue;
            }
            let Some(owner) = root
                .link_name(&format!("{dir}/{name}/device"))
                .and_then(|b| b.parse::<Bdf>().ok())
            else {
                continue;
            };
            found.push((owner, name));
        }
    }
    found
}

/// Ties OS names from [`read_os_names`] to their functions.
pub(super) fn attach_os_names(devices: &mut [DeviceFacts], names: &[(Bdf, String)]) {
    for (owner, name) in names {
        if let Ok(i) = devices.binary_search_by(|d| d.bdf.cmp(owner)) {
            devices[i].os_names.push(name.clone());
        }
    }
    for d in devices.iter_mut() {
        d.os_names.sort_by_key(|n| natural_key(n));
    }
}

/// Ties block devices from [`read_block_devices`] to their functions.
pub(super) fn attach_block_devices(devices: &mut [DeviceFacts], blocks: &[(Bdf, String)]) {
    devices.sort_by_key(|d| d.bdf);
    for (owner, name) in blocks {
        if let Ok(i) = devices.binary_search_by(|d| d.bdf.cmp(owner)) {
            let list = &mut devices[i].block_devices;
            if !list.iter().any(|n| n == name) {
                list.push(name.clone());
            }
        }
    }
    for d in devices.iter_mut() {
        d.block_devices.sort_by_key(|n| natural_key(n));
    }
}

/// Sorts `nvme10` after `nvme2`.
fn natural_key(s: &str) -> (String, u64, String) {
    let head: String = s.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let rest = &s[head.len()..];
    let num: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    (
        head,
        num.parse().unwrap_or(0),
        rest[num.len()..].to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_cmb_16mib() {
        // QEMU nvme,cmb_size_mb=16: SZU=2 (1 MiB units), SZ=16, all of
        // SQS CQS LISTS RDS WDS; BIR 2.
        let c = Cmb::decode(0x2, (16 << 12) | (2 << 8) | 0x1f);
        assert_eq!(c.size, 16 << 20);
        assert_eq!(c.bar, 2);
        assert_eq!(c.offset, 0);
        assert!(c.p2p_capable());
        assert!(!Cmb::decode(0, (1 << 12) | 0x3).p2p_capable());
    }

    #[test]
    fn cmb_attribute_text() {
        assert_eq!(
            parse_cmb_attribute("cmbloc : x00000002\ncmbsz  : x0001021f\n"),
            Some((2, 0x1021f))
        );
        assert_eq!(parse_register("66079"), Some(66079));
    }

    #[test]
    fn namespace_heads() {
        assert_eq!(namespace_head("nvme0n1").as_deref(), Some("nvme0n1"));
        assert_eq!(namespace_head("nvme1c3n2").as_deref(), Some("nvme1n2"));
        assert_eq!(namespace_head("nvme0n1p1").as_deref(), None);
        assert_eq!(namespace_head("nvme0").as_deref(), None);
        assert_eq!(namespace_head("nvme-subsys0"), None);
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["nvme10n1", "nvme2n1", "nvme1n1"];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(v, vec!["nvme1n1", "nvme2n1", "nvme10n1"]);
    }
}

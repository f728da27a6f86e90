//! PCI functions from `/sys/bus/pci/devices`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use super::{Limitation, LimitationKind};
use crate::pci::Bdf;
use crate::root::{DirHandle, SystemRoot, join};

/// What sysfs says about one PCI function.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceFacts {
    pub bdf: Bdf,
    /// The canonical root-relative directory (`sys/devices/pci0000:00/...`).
    pub sysfs_path: String,
    /// The host bridge this function sits below, as sysfs names it
    /// (`pci0000:00`; `pci10000:e0` for a VMD domain).
    pub host_bridge: String,
    /// The upstream bridge, or None directly below the host bridge.
    pub parent: Option<Bdf>,
    /// Raw config space as the kernel showed it (64 bytes without root).
    #[serde(skip)]
    pub config: Vec<u8>,
    pub vendor: Option<u16>,
    pub device: Option<u16>,
    pub class: Option<u32>,
    pub revision: Option<u8>,
    pub vendor_name: Option<String>,
    pub device_name: Option<String>,
    pub driver: Option<String>,
    /// With no driver bound: the modules whose modules.alias patterns
    /// match its modalias, in the file's order (empty when bound, or when
    /// no modules.alias was found).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub driver_candidates: Vec<String>,
    pub numa_node: Option<i32>,
    pub iommu_group: Option<u32>,
    /// The group's default domain type: `DMA`, `DMA-FQ`, `identity`, ...
    pub iommu_group_type: Option<String>,
    /// The world-readable link attributes (read when config space is short).
    pub link_attributes: LinkAttributes,
    pub bars: Vec<Bar>,
    pub p2pmem: Option<P2pMem>,
    pub block_devices: Vec<String>,
    /// For an SR-IOV virtual function, its physical function.
    pub physfn: Option<Bdf>,
    /// Where `config` came from (sysfs, or which kind of lspci output).
    pub source: super::Source,
    /// Registers whose bytes in `config` stand for "not known": lspci text
    /// that lists a capability without the lines that decode it (`-v`
    /// prints no DevCtl, no ACSCtl). The tree drops these after decoding,
    /// so they read as unknown, never as zero. Empty for sysfs.
    pub unknown_registers: UnknownRegisters,
    /// What the OS calls it: network interfaces, RDMA devices, DRM cards,
    /// NVMe controllers (`ens1f0`, `mlx5_0`, `card1`, `nvme0`).
    pub os_names: Vec<String>,
    /// `local_cpulist`: the CPUs near it (read for devices that do P2P).
    pub local_cpulist: Option<String>,
    /// Not in the input: a bridge known only because the sysfs path of a
    /// function that is there passes through it (a capture that pruned
    /// it). Nothing of it was read; it keeps its place so the path stays
    /// whole and its registers count as unknown.
    pub missing: bool,
}

/// A register the analysis reads, for [`UnknownRegisters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Register {
    /// PCIe Device Control (Relaxed Ordering, MPS, MRRS) and Capabilities.
    DevCtl,
    /// PCIe Link Capabilities and Link Status.
    Link,
    /// PCIe Device Capabilities 2 and Device Control 2.
    DevCtl2,
    /// ACS Control.
    AcsCtrl,
    /// AER Uncorrectable and Correctable Error Status.
    AerStatus,
    /// ATS Control (Enable).
    AtsCtrl,
    /// The Command register (Bus Master Enable): plain `lspci` and
    /// `lspci -t` do not show it.
    Command,
    /// Subsystem Vendor and Device ID (`-nn` shows them).
    Subsystem,
    /// A bridge's primary, secondary and subordinate bus numbers (plain
    /// `lspci` shows a bridge without them), or, on a function of an
    /// `lspci -s` listing drawn on a root bus, those of the bridge the
    /// listing may have left out above it: the nesting is a guess.
    BusNumbers,
    /// The size of ACS's Egress Control Vector (lspci prints only the
    /// flags).
    AcsEgressVector,
}

impl Register {
    const ALL: [Register; 10] = [
        Register::DevCtl,
        Register::Link,
        Register::DevCtl2,
        Register::AcsCtrl,
        Register::AerStatus,
        Register::AtsCtrl,
        Register::Command,
        Register::Subsystem,
        Register::BusNumbers,
        Register::AcsEgressVector,
    ];

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The snake_case name JSON uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            Register::DevCtl => "dev_ctl",
            Register::Link => "link",
            Register::DevCtl2 => "dev_ctl2",
            Register::AcsCtrl => "acs_ctrl",
            Register::AerStatus => "aer_status",
            Register::AtsCtrl => "ats_ctrl",
            Register::Command => "command",
            Register::Subsystem => "subsystem",
            Register::BusNumbers => "bus_numbers",
            Register::AcsEgressVector => "acs_egress_vector",
        }
    }
}

/// A small set of [`Register`]s; serialised as the list of their names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnknownRegisters(u16);

impl UnknownRegisters {
    pub fn insert(&mut self, r: Register) {
        self.0 |= r.bit();
    }

    pub fn contains(&self, r: Register) -> bool {
        self.0 & r.bit() != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Register> + '_ {
        Register::ALL.into_iter().filter(|r| self.contains(*r))
    }

    /// `Link, AcsCtrl`: the registers' names, for people.
    pub fn names(&self) -> String {
        self.iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Serialize for UnknownRegisters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// `current_link_speed` and friends, parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LinkAttributes {
    pub current_speed_gts: Option<f64>,
    pub current_width: Option<u8>,
    pub max_speed_gts: Option<f64>,
    pub max_width: Option<u8>,
}

/// One BAR from the sysfs `resource` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    pub index: u8,
    pub start: u64,
    pub size: u64,
    pub io: bool,
    pub is_64: bool,
    pub prefetchable: bool,
}

/// `p2pmem/{size,available,published}` of a P2P memory provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct P2pMem {
    pub size: Option<u64>,
    pub available: Option<u64>,
    pub published: Option<bool>,
    /// `p2pmem/allocate` was seen (user-space P2PDMA, p2pmem_alloc_mmap()).
    /// None when not seen: a snapshot does not carry the file, so absence
    /// proves nothing. Not part of the topo document.
    #[serde(skip)]
    pub allocate: Option<bool>,
}

/// The text attributes pciutils' sysfs back end reads (lib/sysfs.c).
const LSPCI_ATTRIBUTES: &[&str] = &[
    "vendor",
    "device",
    "class",
    "irq",
    "revision",
    "subsystem_vendor",
    "subsystem_device",
    "label",
];

// include/linux/ioport.h
const IORESOURCE_IO: u64 = 0x100;
const IORESOURCE_MEM: u64 = 0x200;
const IORESOURCE_PREFETCH: u64 = 0x2000;
const IORESOURCE_MEM_64: u64 = 0x0010_0000;

pub(super) fn read_devices(
    root: &SystemRoot,
    limitations: &mut Vec<Limitation>,
) -> Vec<DeviceFacts> {
    let names = match root.read_dir("sys/bus/pci/devices") {
        Ok(n) => n,
        Err(e) => {
            limitations.push(Limitation {
                kind: LimitationKind::NoPciBus,
                message: format!(
                    "cannot list sys/bus/pci/devices in {} ({e}): no PCI devices were read",
                    root.describe()
                ),
            });
            return Vec::new();
        }
    };
    // The devices' links are read relative to their directory, held.
    let bus = root.open_dir("sys/bus/pci/devices").ok();
    let bus = bus.as_ref();
    // Batches are handed out in turn rather than a fixed share per thread,
    // so a thread slowed down (the NVMe or pci.ids reader runs beside
    // them) does not leave the others idle at the end.
    const BATCH: usize = 32;
    let batches: Vec<&[String]> = names.chunks(BATCH).collect();
    let next = AtomicUsize::new(0);
    let threads = crate::threads_for(names.len());
    let mut done: Vec<(usize, Vec<Result<DeviceFacts, String>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // Per thread: a group's functions are neighbours,
                    // and a shared map only adds locking.
                    let mut seen = Seen::default();
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(batch) = batches.get(i) else { break };
                        let read: Vec<_> = batch
                            .iter()
                            .map(|name| read_device(root, bus, name, &mut seen))
                            .collect();
                        done.push((i, read));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    // Back in name order (limitations are reported in it).
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut devices = Vec::with_capacity(names.len());
    let mut short_config = 0;
    for r in done.into_iter().flat_map(|(_, r)| r) {
        match r {
            Ok(d) => {
                if d.config.len() <= 64 {
                    short_config += 1;
                }
                devices.push(d);
            }
            Err(message) => limitations.push(Limitation {
                kind: LimitationKind::DeviceUnreadable,
                message,
            }),
        }
    }
    if short_config > 0 {
        limitations.push(Limitation {
            kind: LimitationKind::ConfigTruncated,
            message: format!(
                "{short_config} of {} devices show only 64 bytes of config space: capabilities (PCIe port type, ACS, AER, ATS, link registers) cannot be read. Run as root (CAP_SYS_ADMIN) for a full reading; link speed and width come from the world-readable sysfs attributes meanwhile",
                devices.len()
            ),
        });
    }
    vf_identities(root, &mut devices);
    let missing = missing_bridges(&devices, limitations);
    devices.extend(missing);
    number_copied_groups(root, &mut devices, limitations);
    super::nesting::nest_by_bus_ranges(&mut devices, limitations);
    devices.sort_by_key(|d| d.bdf);
    devices
}

/// A function's config space. On the live machine only the parts the
/// decoder reads ([`read_config_parts`]); from a capture or a recording
/// (a snapshot keeps config space whole), and wherever that fails, the
/// whole file.
fn read_config(root: &SystemRoot, dir: &DirHandle) -> Vec<u8> {
    root.is_live()
        .then(|| read_config_parts(root, dir))
        .flatten()
        .unwrap_or_else(|| root.read_at(dir, "config").unwrap_or_default())
}

/// Config space as the decoder reads it: the first 256 bytes, the
/// extended capability headers in list order and the registers past them
/// that `pci::extended_reads` names, zeros elsewhere, as long as the
/// whole. It decodes exactly as the whole does (the pci crate's property
/// test holds every decoder to that). On a live machine every 4 bytes read
/// from sysfs `config` is one config access, each taken under the
/// kernel's global `pci_lock` (drivers/pci/pci-sysfs.c `pci_read_config()`
/// loops over `pci_user_read_config_dword()`, drivers/pci/access.c): this
/// is a few dozen accesses per PCIe function instead of 1024, as lspci
/// reads only the capabilities it shows. None on any failure (the caller
/// reads the whole file then).
fn read_config_parts(root: &SystemRoot, dir: &DirHandle) -> Option<Vec<u8>> {
    let file = root.open_parts_at(dir, "config")?.ok()?;
    let size = usize::try_from(file.len()).ok()?.min(4096);
    let mut config = vec![0u8; size.max(256)];
    // Without root the kernel gives 64 bytes (128 for CardBus) whatever
    // the size: then that is all there is, as with a whole read.
    let head = file.read_into(0, &mut config[..256]).ok()?;
    if head < 256 || size <= 256 {
        config.truncate(head);
        return Some(config);
    }
    let mut failed = false;
    let ranges = crate::pci::extended_reads(|offset| {
        let at = usize::from(offset);
        let dword = config.get_mut(at..at + 4)?;
        match file.read_into(at as u64, dword) {
            Ok(4) => Some(u32::from_le_bytes([dword[0], dword[1], dword[2], dword[3]])),
            Ok(_) => None,
            Err(_) => {
                failed = true;
                None
            }
        }
    });
    if failed {
        return None;
    }
    for r in ranges {
        let part = config.get_mut(usize::from(r.start)..usize::from(r.end).min(size))?;
        file.read_into(u64::from(r.start), part).ok()?;
    }
    Some(config)
}

/// The Vendor and Device ID of each SR-IOV virtual function whose
/// registers read all ones, as the kernel sets them when it adds the VF
/// (`pci_iov_add_virtfn()` in drivers/pci/iov.c: `virtfn->vendor =
/// dev->vendor; virtfn->device = iov->vf_device`, the VF Device ID at
/// +0x1a of the PF's SR-IOV capability, read by `sriov_init()`). Derived
/// from the PF's config space, which the scan holds already: two files
/// fewer per VF, thousands on a server with SR-IOV NICs. Where the PF's
/// extended space cannot be read (a non-root scan sees 64 bytes), the
/// VF's own `vendor` and `device` attributes say it.
fn vf_identities(root: &SystemRoot, devices: &mut [DeviceFacts]) {
    let is_vf = |d: &DeviceFacts| d.vendor.is_none() && d.config.get(..2) == Some(&[0xff, 0xff]);
    if !devices.iter().any(is_vf) {
        return;
    }
    let index: HashMap<Bdf, usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.bdf, i))
        .collect();
    let mut of_pf: HashMap<Bdf, Option<(u16, u16)>> = HashMap::new();
    for i in 0..devices.len() {
        if !is_vf(&devices[i]) {
            continue;
        }
        let from_pf = devices[i].physfn.and_then(|pf| {
            *of_pf.entry(pf).or_insert_with(|| {
                let pf = &devices[*index.get(&pf)?];
                let vendor = pf.vendor.filter(|&v| v != 0xffff)?;
                let sriov = crate::pci::decode(&pf.config).sriov?;
                Some((vendor, sriov.vf_device_id))
            })
        });
        let d = &mut devices[i];
        match from_pf {
            Some((vendor, device)) => {
                d.vendor = Some(vendor);
                d.device = Some(device);
            }
            None => {
                let id = |a: &str| {
                    root.read_string(&join(&d.sysfs_path, a))
                        .ok()
                        .and_then(|s| parse_hex(&s))
                        .map(|v| v as u16)
                };
                d.vendor = id("vendor");
                d.device = id("device");
            }
        }
    }
}

/// What one device's reading tells about the next: attributes that are
/// a function of a value many devices share, read once per value.
#[derive(Default)]
struct Seen {
    /// An IOMMU group's `type`, by group number.
    group_types: HashMap<u32, Option<String>>,
    /// `local_cpulist`, by the text of `numa_node`. The kernel prints the
    /// CPUs of the device's node there (all online CPUs for node -1):
    /// `pci_dev_show_local_cpu()` in drivers/pci/pci-sysfs.c, under
    /// CONFIG_NUMA, the only configuration with a `numa_node` attribute.
    cpulists: HashMap<String, Option<String>>,
}

fn read_device(
    root: &SystemRoot,
    bus: Option<&DirHandle>,
    name: &str,
    seen: &mut Seen,
) -> Result<DeviceFacts, String> {
    let bdf: Bdf = name
        .parse()
        .map_err(|_| format!("sys/bus/pci/devices/{name}: not a PCI address; skipped"))?;
    let link = format!("sys/bus/pci/devices/{name}");
    let dir = match bus {
        Some(bus) => root.open_dir_in(bus, name),
        None => root.open_dir(&link),
    }
    .map_err(|e| format!("{link}: cannot follow the link ({e}); skipped"))?;
    // open_dir() has checked that every component exists.
    let path = dir.path();
    // A plain directory where sysfs has a link: a copy that followed the
    // links (cp -rL, tar -h). Its place comes from the bus numbers later
    // (nesting::nest_by_bus_ranges); an empty host bridge says so.
    let followed_copy = path == link;
    let (host_bridge, parent) = if followed_copy {
        (String::new(), None)
    } else if path.starts_with("sys/devices/") {
        place_in_tree(path, bdf)
            .ok_or_else(|| format!("{link}: `{path}` names no host bridge (pciDDDD:BB); skipped"))?
    } else {
        return Err(format!(
            "{link}: points at `{path}`, not at a directory under sys/devices; skipped"
        ));
    };

    let text = |a: &str| root.read_string_at(&dir, a).ok();
    if root.is_recording() {
        // Not used by the analysis (config space holds the same), but a
        // snapshot with them opens in `lspci -A linux-sysfs` too.
        for a in LSPCI_ATTRIBUTES {
            let _ = root.read_at(&dir, a);
        }
    }
    let config = read_config(root, &dir);

    let mut d = DeviceFacts {
        bdf,
        host_bridge,
        parent,
        ..Default::default()
    };
    // The identity registers sit in the first 64 bytes that everyone may
    // read; the text attributes are the fallback for a broken config file.
    if config.len() >= 0x10 {
        d.vendor = Some(u16::from_le_bytes([config[0], config[1]]));
        d.device = Some(u16::from_le_bytes([config[2], config[3]]));
        d.revision = Some(config[8]);
        d.class = Some(u32::from_le_bytes([config[9], config[10], config[11], 0]));
        if d.vendor == Some(0xffff) {
            // An SR-IOV virtual function: its Vendor and Device ID registers
            // read all ones by design. The kernel gives it the PF's vendor
            // and the VF Device ID of the PF's SR-IOV capability; they come
            // from the PF once every device is read (vf_identities).
            d.vendor = None;
            d.device = None;
        }
    } else {
        d.vendor = text("vendor").and_then(|s| parse_hex(&s)).map(|v| v as u16);
        d.device = text("device").and_then(|s| parse_hex(&s)).map(|v| v as u16);
        d.class = text("class").and_then(|s| parse_hex(&s)).map(|v| v as u32);
        d.revision = text("revision")
            .and_then(|s| parse_hex(&s))
            .map(|v| v as u8);
    }
    d.driver = root.link_name_at(&dir, "driver");
    if followed_copy && d.driver.is_none() {
        // The `driver` link became a directory; the uevent file still
        // names it (DRIVER=, drivers/base/core.c dev_uevent()).
        d.driver = text("uevent").and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DRIVER="))
                .map(str::to_string)
        });
    }
    let numa_node = text("numa_node");
    d.numa_node = numa_node
        .as_deref()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|&n| n >= 0);
    d.iommu_group = root
        .link_name_at(&dir, "iommu_group")
        .and_then(|g| g.parse().ok());
    if followed_copy && d.iommu_group.is_none() {
        // The group link became a copy of the group's directory: its
        // number is lost, its type is inside.
        d.iommu_group_type = root
            .read_string(&join(&link, "iommu_group/type"))
            .ok()
            .filter(|s| !s.is_empty());
    }
    if let Some(g) = d.iommu_group {
        d.iommu_group_type = seen
            .group_types
            .entry(g)
            .or_insert_with(|| {
                root.read_string_below("sys/kernel/iommu_groups", &g.to_string(), "type")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .clone();
    }
    if config.len() < 256 {
        d.link_attributes = LinkAttributes {
            current_speed_gts: text("current_link_speed").and_then(|s| parse_speed(&s)),
            current_width: text("current_link_width").and_then(|s| s.parse().ok()),
            max_speed_gts: text("max_link_speed").and_then(|s| parse_speed(&s)),
            max_width: text("max_link_width").and_then(|s| s.parse().ok()),
        };
    }
    // The CPUs near a device that does P2P (storage, network, display,
    // processors, accelerators), for the topology matrix's affinity.
    if d.class
        .is_some_and(|c| matches!(c >> 16, 0x01 | 0x02 | 0x03 | 0x0b | 0x12))
    {
        let read = || text("local_cpulist").filter(|s| !s.is_empty());
        d.local_cpulist = match numa_node {
            Some(node) => seen.cpulists.entry(node).or_insert_with(read).clone(),
            None => read(),
        };
    }
    d.bars = text("resource")
        .map(|s| parse_resource(&s))
        .unwrap_or_default();
    if root.exists_at(&dir, "p2pmem") {
        let p2p = join(dir.path(), "p2pmem");
        let num = |f: &str| {
            root.read_string(&join(&p2p, f))
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        };
        d.p2pmem = Some(P2pMem {
            size: num("size"),
            available: num("available"),
            published: num("published").map(|v| v != 0),
            allocate: root.exists(&join(&p2p, "allocate")).then_some(true),
        });
    }
    d.physfn = root
        .link_name_at(&dir, "physfn")
        .and_then(|s| s.parse().ok());
    d.config = config;
    d.sysfs_path = dir.into_path();
    Ok(d)
}

/// From a canonical device path, the host bridge id and the upstream
/// bridges, nearest first.
///
/// `sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0` → (`pci0000:00`,
/// [0000:00:01.0]). A VMD domain nests a host bridge below an endpoint
/// (`.../0000:00:0e.0/pci10000:e0/10000:e0:06.0`); what counts is the last
/// host bridge on the path, as with the kernel's pci_upstream_bridge().
pub fn place_in_tree(dir: &str, bdf: Bdf) -> Option<(String, Option<Bdf>)> {
    // Every address has a `.`; the check spares parsing (and the error's
    // allocation) for `sys`, `devices` and the host bridges.
    let as_bdf = |p: &str| p.contains('.').then(|| p.parse::<Bdf>().ok()).flatten();
    // From the end, without collecting the components: a hostile tree
    // nests thousands of bridges. The function's own (last) component,
    // then the nearest address above it (its parent) and the nearest host
    // bridge above that.
    let mut parts = dir.rsplit('/');
    parts.by_ref().find(|p| as_bdf(p) == Some(bdf))?;
    let mut parent = None;
    for p in parts {
        if is_host_bridge_name(p) {
            return Some((p.to_string(), parent));
        }
        if parent.is_none() {
            parent = as_bdf(p);
        }
    }
    None
}

/// Every upstream bridge on a canonical device path, nearest first, with
/// the host bridge id: what [`place_in_tree`] gives, and the bridges above
/// the parent too. Only for the rare function whose parent is not in the
/// input (a pruned capture): it walks the whole path.
fn path_chain(dir: &str, bdf: Bdf) -> Option<(String, Vec<Bdf>)> {
    let parts: Vec<&str> = dir.split('/').collect();
    let own = parts.iter().rposition(|p| as_bdf(p) == Some(bdf))?;
    let hb = parts[..own].iter().rposition(|p| is_host_bridge_name(p))?;
    let chain = parts[hb + 1..own]
        .iter()
        .rev()
        .filter_map(|p| as_bdf(p))
        .collect();
    Some((parts[hb].to_string(), chain))
}

/// A path component that is a PCI address. Every address has a `.`; the
/// check spares parsing (and the error's allocation) for `sys`, `devices`
/// and the host bridges.
fn as_bdf(p: &str) -> Option<Bdf> {
    p.contains('.').then(|| p.parse::<Bdf>().ok()).flatten()
}

/// IOMMU groups in a copy that followed links: each `iommu_group` link
/// became a copy of the group's directory, whose number is lost but whose
/// `devices/` still lists the members. Groups with the same members are
/// one group; they are numbered here in the order of their members, and a
/// note says the numbers are the copy's own.
fn number_copied_groups(
    root: &SystemRoot,
    devices: &mut [DeviceFacts],
    limitations: &mut Vec<Limitation>,
) {
    let mut groups: std::collections::BTreeMap<Vec<String>, Vec<usize>> = Default::default();
    for (i, d) in devices.iter().enumerate() {
        if !d.host_bridge.is_empty() || d.iommu_group.is_some() {
            continue; // only plain-directory copies lack the number
        }
        let dir = format!("sys/bus/pci/devices/{}/iommu_group/devices", d.bdf);
        if let Ok(mut members) = root.read_dir(&dir)
            && !members.is_empty()
        {
            members.sort();
            groups.entry(members).or_default().push(i);
        }
    }
    if groups.is_empty() {
        return;
    }
    for (n, ids) in groups.values().enumerate() {
        for &i in ids {
            devices[i].iommu_group = Some(n as u32);
        }
    }
    limitations.push(Limitation {
        kind: LimitationKind::NestingInferred,
        message: format!(
            "the IOMMU group numbers are not in a copy that followed links: its {} groups are numbered 0-{} here by their members (who shares a group is the copy's own)",
            groups.len(),
            groups.len() - 1
        ),
    });
}

/// Bridges on some function's sysfs path that the input does not hold
/// (a capture that pruned them): each becomes a [`DeviceFacts::missing`]
/// entry at its place, so the functions below keep every bridge that is
/// there above them instead of falling to the host bridge, and the gap's
/// registers count as unknown. Returns what was added, sorted.
fn missing_bridges(devices: &[DeviceFacts], limitations: &mut Vec<Limitation>) -> Vec<DeviceFacts> {
    let present: std::collections::HashSet<Bdf> = devices.iter().map(|d| d.bdf).collect();
    let mut added: std::collections::BTreeMap<Bdf, DeviceFacts> = Default::default();
    for d in devices {
        if d.host_bridge.is_empty() {
            continue; // placed by bus numbers: no path to read
        }
        if d.parent.is_none_or(|p| present.contains(&p)) {
            continue; // the common case: the parent is there
        }
        let Some((hb, chain)) = path_chain(&d.sysfs_path, d.bdf) else {
            continue;
        };
        for (i, &bridge) in chain.iter().enumerate() {
            if present.contains(&bridge) || added.contains_key(&bridge) {
                continue;
            }
            // The path up to and including the missing bridge's component.
            let own = d
                .sysfs_path
                .find(&format!("/{bridge}/"))
                .map(|at| d.sysfs_path[..at + 1 + bridge.to_string().len()].to_string());
            limitations.push(Limitation {
                kind: LimitationKind::BridgeMissing,
                message: format!(
                    "{bridge}: not in the input, but {} sits below it (its sysfs path passes through it); kept in the tree as a bridge whose registers (port type, ACS) are unknown",
                    d.bdf
                ),
            });
            added.insert(
                bridge,
                DeviceFacts {
                    bdf: bridge,
                    sysfs_path: own.unwrap_or_default(),
                    host_bridge: hb.clone(),
                    parent: chain.get(i + 1).copied(),
                    // It has functions below it: a PCI-to-PCI bridge.
                    class: Some(0x060400),
                    missing: true,
                    ..Default::default()
                },
            );
        }
    }
    added.into_values().collect()
}

/// `pci0000:00`, `pci10000:e0`.
pub fn is_host_bridge_name(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("pci") else {
        return false;
    };
    let Some((dom, bus)) = rest.split_once(':') else {
        return false;
    };
    !dom.is_empty()
        && dom.len() <= 8
        && bus.len() == 2
        && dom.bytes().all(|b| b.is_ascii_hexdigit())
        && bus.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_hex(s: &str) -> Option<u64> {
    parse_hex_word(s.trim())
}

/// `0x…` hex without surrounding white space, as
/// `u64::from_str_radix(s.trim_start_matches("0x"), 16)`, with a fast path
/// for plain digits: `resource` holds 18 numbers per device.
fn parse_hex_word(s: &str) -> Option<u64> {
    let mut s = s;
    while let Some(rest) = s.strip_prefix("0x") {
        s = rest;
    }
    if (1..=16).contains(&s.len()) {
        let fast = s.bytes().try_fold(0u64, |v, b| {
            Some(v << 4 | u64::from((b as char).to_digit(16)?))
        });
        if fast.is_some() {
            return fast;
        }
    }
    u64::from_str_radix(s, 16).ok()
}

/// The first three numbers of a `resource` line.
fn resource_line(line: &str) -> Option<(u64, u64, u64)> {
    // As the kernel prints it: `0x%016llx 0x%016llx 0x%016llx`, mostly
    // for unused BARs.
    const UNUSED: &str = "0x0000000000000000 0x0000000000000000 0x0000000000000000";
    if line == UNUSED {
        return Some((0, 0, 0));
    }
    let b = line.as_bytes();
    if b.len() == 56 && b[18] == b' ' && b[37] == b' ' {
        let nibble = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            b'A'..=b'F' => Some(d - b'A' + 10),
            _ => None,
        };
        let word = |at: usize| match &b[at..at + 18] {
            [b'0', b'x', digits @ ..] => digits
                .iter()
                .try_fold(0u64, |v, &d| Some(v << 4 | u64::from(nibble(d)?))),
            _ => None,
        };
        if let (Some(start), Some(end), Some(flags)) = (word(0), word(19), word(38)) {
            return Some((start, end, flags));
        }
    }
    fn three<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<(u64, u64, u64)> {
        let mut next = || parse_hex_word(words.next()?);
        Some((next()?, next()?, next()?))
    }
    // The byte-wise split where it splits the same (ASCII white space is
    // Unicode white space but for the vertical tab).
    if line.bytes().all(|b| b.is_ascii() && b != 0x0b) {
        three(line.split_ascii_whitespace())
    } else {
        three(line.split_whitespace())
    }
}

/// `8.0 GT/s PCIe` → 8.0; `Unknown` → None.
pub fn parse_speed(s: &str) -> Option<f64> {
    let v: f64 = s.split_whitespace().next()?.parse().ok()?;
    (v > 0.0 && v.is_finite()).then_some(v)
}

/// The `resource` file (drivers/pci/pci-sysfs.c resource_show): one line
/// per resource, `start end flags` in hex; lines 0-5 are the BARs.
pub fn parse_resource(text: &str) -> Vec<Bar> {
    text.lines()
        .take(6)
        .enumerate()
        .filter_map(|(i, line)| {
            let (start, end, flags) = resource_line(line)?;
            if (start == 0 && end == 0) || end < start {
                return None;
            }
            Some(Bar {
                index: i as u8,
                start,
                size: end - start + 1,
                io: flags & IORESOURCE_IO != 0 && flags & IORESOURCE_MEM == 0,
                is_64: flags & IORESOURCE_MEM_64 != 0,
                prefetchable: flags & IORESOURCE_PREFETCH != 0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_devices_below_bridges() {
        let b = |s: &str| s.parse::<Bdf>().unwrap();
        assert_eq!(
            place_in_tree(
                "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0",
                b("0000:01:00.0")
            ),
            Some(("pci0000:00".to_string(), Some(b("0000:00:01.0"))))
        );
        assert_eq!(
            place_in_tree("sys/devices/pci0000:00/0000:00:01.0", b("0000:00:01.0")),
            Some(("pci0000:00".to_string(), None))
        );
        assert_eq!(
            path_chain(
                "sys/devices/pci0000:5d/0000:5d:02.0/0000:5e:00.0/0000:5f:03.0/0000:60:00.0",
                b("0000:60:00.0")
            ),
            Some((
                "pci0000:5d".to_string(),
                vec![b("0000:5f:03.0"), b("0000:5e:00.0"), b("0000:5d:02.0")]
            ))
        );
        assert_eq!(
            place_in_tree(
                "sys/devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:06.0/10000:e1:00.0",
                b("10000:e1:00.0")
            ),
            Some(("pci10000:e0".to_string(), Some(b("10000:e0:06.0"))))
        );
        assert_eq!(
            place_in_tree("sys/devices/virtual/x/0000:01:00.0", b("0000:01:00.0")),
            None
        );
    }

    #[test]
    fn resource_lines() {
        let bars = parse_resource(
            "0x00000000fe000000 0x00000000fe003fff 0x0000000000140204\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
             0x0000038000000000 0x00000387ffffffff 0x000000000014220c\n\
             0x000000000000e000 0x000000000000e07f 0x0000000000040101\n\
             garbage\n",
        );
        assert_eq!(bars.len(), 3);
        assert_eq!(bars[0].size, 0x4000);
        assert!(bars[0].is_64 && !bars[0].prefetchable);
        assert_eq!(bars[1].index, 2);
        assert_eq!(bars[1].size, 32 << 30);
        assert!(bars[1].prefetchable);
        assert!(bars[2].io);
    }

    #[test]
    fn hex_fast_path_agrees_with_from_str_radix() {
        let reference = |s: &str| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok();
        for s in [
            "0x0000000000000000",
            "0x00000387ffffffff",
            "0xFFFFFFFFFFFFFFFF",
            "0x1ffffffffffffffff",
            "0x00000000000000001",
            "0x0x12",
            "0x+12",
            "+12",
            "0x",
            "",
            " 0x10\n",
            "0xg",
            "12 34",
            "é",
        ] {
            assert_eq!(parse_hex(s), reference(s), "{s:?}");
        }
        let vt = "0x1\u{b}0x2 0x3";
        assert_eq!(parse_resource(vt).len(), 1, "a vertical tab separates");
        // The fixed-width fast path, and lines that only look like it.
        let line = "0x000021e00d500000 0x000021e00d5fffff 0x000000000014220c";
        assert_eq!(
            resource_line(line),
            Some((0x21e00d500000, 0x21e00d5fffff, 0x14220c))
        );
        for odd in [
            "0x000021e00d500000 0x000021e00d5fffff 0x00000000001422+c",
            "0x000021e00d500000 0x000021e00d5fffff 0X000000000014220c",
            "0x000021e00d500000\t0x000021e00d5fffff 0x000000000014220c",
        ] {
            let reference = {
                let mut it = odd.split_whitespace().map(parse_hex);
                (|| Some((it.next()??, it.next()??, it.next()??)))()
            };
            assert_eq!(resource_line(odd), reference, "{odd:?}");
        }
    }

    #[test]
    fn link_speed_strings() {
        assert_eq!(parse_speed("16.0 GT/s PCIe"), Some(16.0));
        assert_eq!(parse_speed("2.5 GT/s PCIe"), Some(2.5));
        assert_eq!(parse_speed("Unknown"), None);
        assert_eq!(parse_speed(""), None);
    }
}

#[cfg(test)]
mod config_parts_tests {
    use super::*;
    use std::path::Path;

    /// Every config space the tests hold: the spec fixtures (built), the
    /// lab's snapshots and the CI VM captures (a real kernel's sysfs).
    fn every_config_space() -> Vec<(String, Vec<u8>)> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut roots = Vec::new();
        let built = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(fixtures.join("specs")).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let spec = p2pdoctor_fixture::Spec::from_toml(&text).unwrap();
            let dir = built.path().join(path.file_stem().unwrap());
            p2pdoctor_fixture::build(&spec, &dir).unwrap();
            roots.push(dir);
        }
        for sub in ["lab", "captures"] {
            for e in std::fs::read_dir(fixtures.join(sub)).unwrap() {
                let path = e.unwrap().path();
                if path.to_string_lossy().ends_with(".tar.gz") {
                    roots.push(path);
                }
            }
        }
        let mut out = Vec::new();
        for r in roots {
            let root = SystemRoot::open(&r).unwrap();
            for name in root.read_dir("sys/bus/pci/devices").unwrap() {
                if let Ok(c) = root.read(&format!("sys/bus/pci/devices/{name}/config")) {
                    out.push((format!("{}: {name}", r.display()), c));
                }
            }
        }
        out
    }

    #[test]
    fn config_read_in_parts_decodes_as_the_whole() {
        let spaces = every_config_space();
        let dir = tempfile::tempdir().unwrap();
        for (i, (_, c)) in spaces.iter().enumerate() {
            std::fs::create_dir_all(dir.path().join(format!("sys/{i}"))).unwrap();
            std::fs::write(dir.path().join(format!("sys/{i}/config")), c).unwrap();
        }
        let root = SystemRoot::open(dir.path()).unwrap();
        let (mut extended, mut read_bytes) = (0, 0);
        for (i, (what, whole)) in spaces.iter().enumerate() {
            let d = root.open_dir(&format!("sys/{i}")).unwrap();
            let parts = read_config_parts(&root, &d).unwrap_or_else(|| panic!("{what}"));
            assert_eq!(parts.len(), whole.len(), "{what}");
            assert_eq!(
                crate::pci::decode(&parts),
                crate::pci::decode(whole),
                "{what}"
            );
            if whole.len() == 4096 {
                // What the parts cost: 256 bytes, 4 per header, the ranges.
                let mut headers = 0;
                let ranges = crate::pci::extended_reads(|off| {
                    headers += 1;
                    let at = usize::from(off);
                    Some(u32::from_le_bytes(whole[at..at + 4].try_into().unwrap()))
                });
                let bytes: usize = ranges.iter().map(|r| usize::from(r.end - r.start)).sum();
                extended += 1;
                read_bytes += 256 + 4 * headers + bytes;
            }
        }
        // `cargo test --lib config_read_in_parts -- --nocapture` shows it.
        println!(
            "{extended} functions with 4096 bytes of config space: {read_bytes} bytes read in parts ({} per function)",
            read_bytes / extended.max(1)
        );
        assert!(extended > 100, "only {extended} PCIe functions to try");
        // A sixth or less of the 4096 bytes each, on average.
        assert!(
            read_bytes * 6 < extended * 4096,
            "{read_bytes} bytes for {extended} functions"
        );
    }

    #[test]
    fn without_root_the_first_64_bytes_are_all() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/d")).unwrap();
        std::fs::write(dir.path().join("sys/d/config"), [0x86u8; 64]).unwrap();
        let root = SystemRoot::open(dir.path()).unwrap();
        let d = root.open_dir("sys/d").unwrap();
        assert_eq!(read_config_parts(&root, &d), Some(vec![0x86; 64]));
    }
}

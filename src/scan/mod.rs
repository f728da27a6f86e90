//! Reading the machine: sysfs, procfs, the kernel config and the kernel log.
//!
//! This is the only stage that reads the machine (through a
//! [`SystemRoot`]). It knows Linux and nothing about rules: it returns
//! [`Facts`], plain values that every later stage takes as input.

pub mod boot;
mod device;
pub mod evidence;
mod host;
pub mod iommu_debugfs;
pub mod kmsg;
pub mod modalias;
mod nesting;
pub mod nvidia;
mod nvme;
pub mod pciids;
mod virt;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::pci::Bdf;
use crate::root::SystemRoot;

pub use device::{Bar, DeviceFacts, LinkAttributes, P2pMem, Register, UnknownRegisters};
pub use host::{
    AcsParams, CpuFacts, HostFacts, HostSources, Hypervisor, IommuUnit, KernelCmdline,
    parse_cmdline, render_kernel_config, split_cmdline,
};
pub use nvme::{Cmb, NvmeController};
pub use virt::Virtualization;

/// Everything the scan read, as plain values.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub host: HostFacts,
    /// One per PCI function, sorted by address.
    pub devices: Vec<DeviceFacts>,
    pub nvme: Vec<NvmeController>,
    /// Kernel-log lines about P2P, ACS, IOMMUs, AER and NVMe.
    pub kernel_log: Vec<String>,
    /// What could not be read, said once each.
    pub limitations: Vec<Limitation>,
}

/// Something the scan could not see, and what it means for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limitation {
    pub kind: LimitationKind,
    pub message: String,
}

/// Where a fact came from. A live machine and a captured tree give
/// `sysfs` (and procfs) for everything; evidence files (`--root FILE` with
/// lspci output, a ticket paste or an hwloc export) say which part of the
/// text carried it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// sysfs, procfs or the kernel config of a machine or captured tree.
    #[default]
    Sysfs,
    /// `lspci -t`/`-tv`: the tree's shape and, with `-nn`, the IDs.
    LspciTree,
    /// `lspci -v`/`-vv`/`-vvv`: decoded text, turned back into registers.
    LspciText,
    /// `lspci -x`/`-xxx`/`-xxxx` or an `lspci -F` dump: the raw bytes.
    LspciHex,
    /// `lstopo --of xml` (hwloc).
    Hwloc,
    /// Other command output in a paste (`uname -r`, `/proc/cmdline`,
    /// `lscpu`, `/proc/cpuinfo`, dmesg lines).
    Paste,
    /// A GRUB `GRUB_CMDLINE_LINUX*=` line: configured, maybe not booted.
    GrubConfig,
    /// Not in the input: inferred from other facts (the message says how).
    Inferred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitationKind {
    /// Config space cut to 64 bytes: not root (CAP_SYS_ADMIN).
    ConfigTruncated,
    /// A device's files could not be read or parsed.
    DeviceUnreadable,
    KernelConfigMissing,
    KernelLogUnreadable,
    NoPciBus,
    /// An evidence file (lspci text, a paste) lacks a fact a live reading
    /// has; the message names the command that would add it.
    EvidenceIncomplete,
    /// A line of an evidence file could not be used (the message names it).
    EvidenceLine,
    /// Two sections of an evidence file disagree about one fact.
    EvidenceConflict,
    /// Functions were placed in the tree from bus numbers, not sysfs paths.
    NestingInferred,
    /// A bridge on some function's path is not in the input: kept as a
    /// gap whose registers are unknown.
    BridgeMissing,
    /// A file that is there was not read: not a regular file (a FIFO, a
    /// device), larger than the kernel makes it, or an archive member
    /// skipped. The message names it and says why.
    FileRefused,
}

/// Options for a scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Skip the pci.ids lookup (names stay hex).
    pub no_names: bool,
    /// On the live machine, run vendor tools that are on the PATH
    /// (read-only, time-limited): `nvidia-smi topo -m`.
    pub vendor_tools: bool,
}

/// Reads everything p2pdoctor needs from `root`.
pub fn scan(root: &SystemRoot, options: &ScanOptions) -> Facts {
    if let Some(text) = root.evidence() {
        return evidence::scan(text, options);
    }
    let mut limitations = Vec::new();
    let host = host::read_host(root, &mut limitations);
    std::thread::scope(|s| {
        // NVMe controllers and block devices do not depend on the PCI
        // functions: read them beside them rather than after.
        let others = s.spawn(|| {
            (
                nvme::read_nvme(root),
                nvme::read_block_devices(root),
                nvme::read_os_names(root),
            )
        });
        // A vendor tool can take a second or more: beside the rest too.
        let vendor = s.spawn(|| nvidia::read(root, options.vendor_tools));
        // Names come from a file outside the root: index it meanwhile too.
        let ids = (!options.no_names)
            .then(|| s.spawn(|| pciids::locate().map(|p| pciids::Index::load(&p))));
        let mut devices = device::read_devices(root, &mut limitations);
        let kernel_log = kmsg::read_kernel_log(root, &mut limitations);
        let (nvme, blocks, os_names) = join(others);
        let mut host = host;
        host.nvidia_topology = join(vendor);
        if !host.iommu_units.is_empty() {
            host.iommu_debugfs = iommu_debugfs::read(root);
        }
        host.virtualization = virt::detect(root, &host, &devices);
        nvme::attach_block_devices(&mut devices, &blocks);
        nvme::attach_os_names(&mut devices, &os_names);
        host.module_aliases = modalias::attach(root, host.kernel_release.as_deref(), &mut devices);
        if let Some(index) = ids.and_then(join) {
            let names = index.names(&wanted_ids(&devices));
            name_devices(&mut devices, &names);
        }
        limitations.extend(root.notes().into_iter().map(|message| Limitation {
            kind: LimitationKind::FileRefused,
            message,
        }));
        Facts {
            host,
            devices,
            nvme,
            kernel_log,
            limitations,
        }
    })
}

/// A scoped thread's result; its panic goes on as ours.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The (vendor, device) pairs to name.
fn wanted_ids(devices: &[DeviceFacts]) -> BTreeSet<(u16, u16)> {
    devices
        .iter()
        .filter_map(|d| Some((d.vendor?, d.device?)))
        .collect()
}

fn name_devices(devices: &mut [DeviceFacts], names: &pciids::Names) {
    for d in devices {
        if let (Some(v), Some(dev)) = (d.vendor, d.device) {
            // An evidence file's own names stay where pci.ids has none.
            if let Some(n) = names.vendor(v) {
                d.vendor_name = Some(n.to_string());
            }
            if let Some(n) = names.device(v, dev) {
                d.device_name = Some(n.to_string());
            }
        }
    }
}

/// Names from pci.ids, as the live scan gives them (evidence files).
pub(crate) fn name_from_pci_ids(devices: &mut [DeviceFacts]) {
    if let Some(index) = pciids::locate().map(|p| pciids::Index::load(&p)) {
        let names = index.names(&wanted_ids(devices));
        name_devices(devices, &names);
    }
}

impl Facts {
    /// The device at `bdf`, if the scan saw it.
    pub fn device(&self, bdf: Bdf) -> Option<&DeviceFacts> {
        self.devices
            .binary_search_by(|d| d.bdf.cmp(&bdf))
            .ok()
            .map(|i| &self.devices[i])
    }
}

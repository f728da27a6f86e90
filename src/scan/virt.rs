//! Whether this kernel runs in a virtual machine, and what says so.
//!
//! A guest sees the hypervisor's PCIe topology: devices flat on an
//! emulated root bus, no switches, an emulated host bridge. Its kernel's
//! P2PDMA decisions are real for the guest, but path classes, ACS bits and
//! NUMA placement say nothing about the physical machine below
//! (NVIDIA/nccl-tests#256), so every verdict must carry that caveat.
//!
//! Evidence, strongest first: the CPUID hypervisor bit (`hypervisor` in
//! /proc/cpuinfo flags, X86_FEATURE_HYPERVISOR), the firmware's DMI
//! strings (/sys/class/dmi/id, world-readable; serial numbers are not
//! read), `/sys/hypervisor/type`, and an emulated chipset (QEMU's
//! subsystem ID 1af4:1100 on the host bridge). Paravirtual devices (virtio
//! 1af4, VMware 15ad, Hyper-V, gVNIC) support a verdict but never make one
//! alone: DPUs expose virtio functions to bare-metal hosts too.

use serde::Serialize;

use super::{DeviceFacts, HostFacts};
use crate::root::SystemRoot;

/// A virtual machine and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Virtualization {
    /// `KVM/QEMU`, `Hyper-V`, `VMware`, `Xen`, `AWS Nitro`, ... or
    /// `unknown hypervisor` when only the CPU flag says so.
    pub hypervisor: String,
    /// One line per fact that says so, with where it was read.
    pub evidence: Vec<String>,
}

/// DMI strings that name a hypervisor: (field value contains, name).
/// Matched case-insensitively against sys_vendor, product_name and
/// bios_vendor. AWS bare-metal instances also say "Amazon EC2", so that
/// one is checked apart (product_name ending in `.metal`).
const DMI: &[(&str, &str)] = &[
    ("qemu", "KVM/QEMU"),
    ("kvm", "KVM/QEMU"),
    ("seabios", "KVM/QEMU"),
    ("openstack", "KVM/QEMU (OpenStack)"),
    ("microsoft corporation", "Hyper-V"),
    ("vmware", "VMware"),
    ("xen", "Xen"),
    ("hvm domu", "Xen"),
    ("google compute engine", "Google Compute Engine"),
    ("virtualbox", "VirtualBox"),
    ("innotek", "VirtualBox"),
    ("parallels", "Parallels"),
    ("alibaba cloud ecs", "Alibaba Cloud ECS"),
    ("bochs", "Bochs"),
];

const DMI_FILES: &[&str] = &["sys_vendor", "product_name", "bios_vendor"];

/// Paravirtual PCI devices by vendor: support only.
const PARAVIRTUAL: &[(u16, &str)] = &[
    (0x1af4, "virtio (Red Hat/QEMU)"),
    (0x15ad, "VMware"),
    (0x1414, "Microsoft Hyper-V"),
    (0x5853, "Xen platform"),
    (0x1ae0, "Google gVNIC"),
];

pub(super) fn detect(
    root: &SystemRoot,
    host: &HostFacts,
    devices: &[DeviceFacts],
) -> Option<Virtualization> {
    let mut names: Vec<&str> = Vec::new();
    let mut evidence = Vec::new();
    let mut strong = false;
    if host.cpu.hypervisor_flag {
        strong = true;
        evidence.push(
            "the CPU reports the hypervisor bit (flags: hypervisor in /proc/cpuinfo)".to_string(),
        );
    }
    let dmi = |f: &str| {
        root.read_string(&format!("sys/class/dmi/id/{f}"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let product = dmi("product_name");
    for f in DMI_FILES {
        let Some(value) = dmi(f) else { continue };
        let lower = value.to_ascii_lowercase();
        // Hyper-V's vendor string is Microsoft's for real hardware too:
        // only with the "Virtual Machine" product.
        let hit = DMI.iter().find(|(needle, name)| {
            lower.contains(needle)
                && (*name != "Hyper-V"
                    || product
                        .as_deref()
                        .is_some_and(|p| p.contains("Virtual Machine")))
        });
        let hit = hit.map(|(_, n)| *n).or_else(|| {
            (lower.contains("amazon ec2")
                && !product.as_deref().is_some_and(|p| p.ends_with(".metal")))
            .then_some("AWS Nitro")
        });
        if let Some(name) = hit {
            strong = true;
            names.push(name);
            evidence.push(format!("sys/class/dmi/id/{f}: {value}"));
        }
    }
    if let Some(h) = &host.hypervisor {
        strong = true;
        let name = if h.kind == "xen" {
            "Xen"
        } else {
            h.kind.as_str()
        };
        names.push(name);
        evidence.push(format!("sys/hypervisor/type: {}", h.kind));
    }
    // QEMU's emulated chipsets carry its subsystem ID (hw/pci/pci.c).
    for d in devices
        .iter()
        .filter(|d| d.class.is_some_and(|c| c >> 8 == 0x0600))
    {
        if let Some((0x1af4, 0x1100)) = crate::pci::decode(&d.config).subsystem {
            strong = true;
            names.push("KVM/QEMU");
            evidence.push(format!(
                "{}: host bridge {:04x}:{:04x} with QEMU's subsystem ID 1af4:1100 (an emulated chipset)",
                d.bdf,
                d.vendor.unwrap_or(0),
                d.device.unwrap_or(0)
            ));
            break;
        }
    }
    for (vendor, what) in PARAVIRTUAL {
        let n = devices.iter().filter(|d| d.vendor == Some(*vendor)).count();
        if n > 0 {
            evidence.push(format!(
                "{n} {what} PCI {} (paravirtual)",
                if n == 1 { "function" } else { "functions" }
            ));
        }
    }
    if !strong {
        return None;
    }
    let hypervisor = names
        .first()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown hypervisor".to_string());
    Some(Virtualization {
        hypervisor,
        evidence,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::root::Entry;

    fn root_with(dmi: &[(&str, &str)]) -> SystemRoot {
        let mut e = BTreeMap::new();
        for d in ["sys", "sys/class", "sys/class/dmi", "sys/class/dmi/id"] {
            e.insert(d.to_string(), Entry::Dir);
        }
        for (f, v) in dmi {
            e.insert(
                format!("sys/class/dmi/id/{f}"),
                Entry::File(format!("{v}\n").into_bytes()),
            );
        }
        SystemRoot::from_entries(Path::new("test"), e)
    }

    fn detect_dmi(dmi: &[(&str, &str)]) -> Option<Virtualization> {
        detect(&root_with(dmi), &HostFacts::default(), &[])
    }

    #[test]
    fn look_alikes_on_bare_metal_are_not_guests() {
        // AWS bare-metal instances carry the EC2 vendor string too.
        assert_eq!(
            detect_dmi(&[("sys_vendor", "Amazon EC2"), ("product_name", "c5.metal")]),
            None
        );
        // Microsoft's own hardware.
        assert_eq!(
            detect_dmi(&[
                ("sys_vendor", "Microsoft Corporation"),
                ("product_name", "Surface Laptop 5")
            ]),
            None
        );
        assert_eq!(
            detect_dmi(&[
                ("sys_vendor", "Supermicro"),
                ("product_name", "SYS-421GE-TNRT")
            ]),
            None
        );
        // Paravirtual functions alone (a DPU's virtio-net) decide nothing.
        let virtio = DeviceFacts {
            vendor: Some(0x1af4),
            device: Some(0x1041),
            ..Default::default()
        };
        assert_eq!(
            detect(&root_with(&[]), &HostFacts::default(), &[virtio]),
            None
        );
    }

    #[test]
    fn guests_by_their_firmware_strings() {
        let v = detect_dmi(&[
            ("sys_vendor", "Amazon EC2"),
            ("product_name", "p5.48xlarge"),
        ])
        .unwrap();
        assert_eq!(v.hypervisor, "AWS Nitro");
        let v = detect_dmi(&[
            ("sys_vendor", "Microsoft Corporation"),
            ("product_name", "Virtual Machine"),
        ])
        .unwrap();
        assert_eq!(v.hypervisor, "Hyper-V");
        let v = detect_dmi(&[
            ("sys_vendor", "Google"),
            ("product_name", "Google Compute Engine"),
        ])
        .unwrap();
        assert_eq!(v.hypervisor, "Google Compute Engine");
        assert_eq!(
            v.evidence,
            ["sys/class/dmi/id/product_name: Google Compute Engine"]
        );
        // The CPU bit alone: a guest of a hypervisor nothing names.
        let mut host = HostFacts::default();
        host.cpu.hypervisor_flag = true;
        let v = detect(&root_with(&[]), &host, &[]).unwrap();
        assert_eq!(v.hypervisor, "unknown hypervisor");
    }
}

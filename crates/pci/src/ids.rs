//! Capability IDs and their lspci-like names, in one place.
//!
//! Standard IDs: PCI Code and ID Assignment Specification §2; extended IDs:
//! §3 of the same document. Names follow pciutils `ls-caps.c` / `ls-ecaps.c`.

// Standard (PCI-compatible) capability IDs.
/// Standard capability ID 0: the null capability (an entry with no registers).
pub const CAP_ID_NULL: u8 = 0x00;
/// Standard capability ID: Power Management.
pub const CAP_ID_PM: u8 = 0x01;
/// Standard capability ID: AGP.
pub const CAP_ID_AGP: u8 = 0x02;
/// Standard capability ID: Vital Product Data.
pub const CAP_ID_VPD: u8 = 0x03;
/// Standard capability ID: Slot ID.
pub const CAP_ID_SLOTID: u8 = 0x04;
/// Standard capability ID: MSI.
pub const CAP_ID_MSI: u8 = 0x05;
/// Standard capability ID: CompactPCI hot-swap.
pub const CAP_ID_CHSWP: u8 = 0x06;
/// Standard capability ID: PCI-X.
pub const CAP_ID_PCIX: u8 = 0x07;
/// Standard capability ID: HyperTransport.
pub const CAP_ID_HT: u8 = 0x08;
/// Standard capability ID: Vendor Specific Information.
pub const CAP_ID_VNDR: u8 = 0x09;
/// Standard capability ID: Debug port.
pub const CAP_ID_DBG: u8 = 0x0a;
/// Standard capability ID: CompactPCI central resource control.
pub const CAP_ID_CCRC: u8 = 0x0b;
/// Standard capability ID: Hot-plug capable.
pub const CAP_ID_HOTPLUG: u8 = 0x0c;
/// Subsystem ID and Subsystem Vendor ID capability (PCIe r6.0 §7.9.23): how a
/// type 1 header (bridge) reports its subsystem.
pub const CAP_ID_SSVID: u8 = 0x0d;
/// Standard capability ID: AGP3.
pub const CAP_ID_AGP3: u8 = 0x0e;
/// Standard capability ID: Secure device.
pub const CAP_ID_SECURE: u8 = 0x0f;
/// PCI Express capability (PCIe r6.0 §7.5.3).
pub const CAP_ID_EXPRESS: u8 = 0x10;
/// Standard capability ID: MSI-X.
pub const CAP_ID_MSIX: u8 = 0x11;
/// Standard capability ID: SATA HBA.
pub const CAP_ID_SATA: u8 = 0x12;
/// Standard capability ID: PCI Advanced Features.
pub const CAP_ID_AF: u8 = 0x13;
/// Standard capability ID: Enhanced Allocation (EA).
pub const CAP_ID_EA: u8 = 0x14;
/// Standard capability ID: Flattening Portal Bridge.
pub const CAP_ID_FPB: u8 = 0x15;

// Extended (PCI Express) capability IDs.
/// Extended capability ID 0: the null capability (an entry with no registers).
pub const ECAP_ID_NULL: u16 = 0x0000;
/// Advanced Error Reporting (PCIe r6.0 §7.8.4).
pub const ECAP_ID_AER: u16 = 0x0001;
/// Extended capability ID: Virtual Channel.
pub const ECAP_ID_VC: u16 = 0x0002;
/// Device Serial Number (PCIe r6.0 §7.9.3).
pub const ECAP_ID_DSN: u16 = 0x0003;
/// Extended capability ID: Power Budgeting.
pub const ECAP_ID_PB: u16 = 0x0004;
/// Extended capability ID: Root Complex Link.
pub const ECAP_ID_RCLINK: u16 = 0x0005;
/// Extended capability ID: Root Complex Internal Link.
pub const ECAP_ID_RCILINK: u16 = 0x0006;
/// Extended capability ID: Root Complex Event Collector Endpoint Association.
pub const ECAP_ID_RCEC: u16 = 0x0007;
/// Extended capability ID: Multi-Function Virtual Channel.
pub const ECAP_ID_MFVC: u16 = 0x0008;
/// Extended capability ID: Virtual Channel (the second ID, used with MFVC).
pub const ECAP_ID_VC2: u16 = 0x0009;
/// Extended capability ID: Root Complex Register Block.
pub const ECAP_ID_RCRB: u16 = 0x000a;
/// Extended capability ID: Vendor Specific Information.
pub const ECAP_ID_VNDR: u16 = 0x000b;
/// Extended capability ID: Configuration Access Correlation.
pub const ECAP_ID_CAC: u16 = 0x000c;
/// Access Control Services (PCIe r6.0 §7.7.11).
pub const ECAP_ID_ACS: u16 = 0x000d;
/// Alternative Routing-ID Interpretation (PCIe r6.0 §7.8.8).
pub const ECAP_ID_ARI: u16 = 0x000e;
/// Address Translation Services (PCIe r6.0 §10.5.1).
pub const ECAP_ID_ATS: u16 = 0x000f;
/// Single Root I/O Virtualization (PCIe r6.0 §9.3.3).
pub const ECAP_ID_SRIOV: u16 = 0x0010;
/// Extended capability ID: Multi-Root I/O Virtualization.
pub const ECAP_ID_MRIOV: u16 = 0x0011;
/// Extended capability ID: Multicast.
pub const ECAP_ID_MCAST: u16 = 0x0012;
/// Page Request Interface (PCIe r6.0 §10.5.2).
pub const ECAP_ID_PRI: u16 = 0x0013;
/// Resizable BAR (PCIe r6.0 §7.8.6).
pub const ECAP_ID_REBAR: u16 = 0x0015;
/// Extended capability ID: Dynamic Power Allocation.
pub const ECAP_ID_DPA: u16 = 0x0016;
/// Extended capability ID: Transaction Processing Hints.
pub const ECAP_ID_TPH: u16 = 0x0017;
/// Extended capability ID: Latency Tolerance Reporting.
pub const ECAP_ID_LTR: u16 = 0x0018;
/// Extended capability ID: Secondary PCI Express.
pub const ECAP_ID_SECPCI: u16 = 0x0019;
/// Extended capability ID: Protocol Multiplexing.
pub const ECAP_ID_PMUX: u16 = 0x001a;
/// Process Address Space ID (PCIe r6.0 §7.8.9).
pub const ECAP_ID_PASID: u16 = 0x001b;
/// Extended capability ID: LN Requester.
pub const ECAP_ID_LNR: u16 = 0x001c;
/// Downstream Port Containment (PCIe r6.0 §7.9.14).
pub const ECAP_ID_DPC: u16 = 0x001d;
/// Extended capability ID: L1 PM Substates.
pub const ECAP_ID_L1PM: u16 = 0x001e;
/// Extended capability ID: Precision Time Measurement.
pub const ECAP_ID_PTM: u16 = 0x001f;
/// Extended capability ID: PCI Express over M_PHY.
pub const ECAP_ID_MPHY: u16 = 0x0020;
/// Extended capability ID: FRS Queueing.
pub const ECAP_ID_FRS: u16 = 0x0021;
/// Extended capability ID: Readiness Time Reporting.
pub const ECAP_ID_RTR: u16 = 0x0022;
/// Extended capability ID: Designated Vendor-Specific.
pub const ECAP_ID_DVSEC: u16 = 0x0023;
/// Extended capability ID: Virtual Resizable BAR.
pub const ECAP_ID_VF_REBAR: u16 = 0x0024;
/// Extended capability ID: Data Link Feature.
pub const ECAP_ID_DLF: u16 = 0x0025;
/// Extended capability ID: Physical Layer 16.0 GT/s.
pub const ECAP_ID_PL_16GT: u16 = 0x0026;
/// Extended capability ID: Lane Margining at the Receiver.
pub const ECAP_ID_LMR: u16 = 0x0027;
/// Extended capability ID: Hierarchy ID.
pub const ECAP_ID_HIER_ID: u16 = 0x0028;
/// Extended capability ID: Native PCIe Enclosure Management.
pub const ECAP_ID_NPEM: u16 = 0x0029;
/// Extended capability ID: Physical Layer 32.0 GT/s.
pub const ECAP_ID_PL_32GT: u16 = 0x002a;
/// Extended capability ID: Alternate Protocol.
pub const ECAP_ID_ALT_PROTOCOL: u16 = 0x002b;
/// Extended capability ID: System Firmware Intermediary.
pub const ECAP_ID_SFI: u16 = 0x002c;
/// Extended capability ID: Data Object Exchange.
pub const ECAP_ID_DOE: u16 = 0x002e;
/// Extended capability ID: Device 3.
pub const ECAP_ID_DEV3: u16 = 0x002f;
/// Extended capability ID: Integrity and Data Encryption.
pub const ECAP_ID_IDE: u16 = 0x0030;
/// Extended capability ID: Physical Layer 64.0 GT/s.
pub const ECAP_ID_PL_64GT: u16 = 0x0031;

/// The lspci-like name of a standard capability ID ("Unknown" if unassigned).
pub fn capability_name(id: u8) -> &'static str {
    match id {
        CAP_ID_NULL => "Null",
        CAP_ID_PM => "Power Management",
        CAP_ID_AGP => "AGP",
        CAP_ID_VPD => "Vital Product Data",
        CAP_ID_SLOTID => "Slot ID",
        CAP_ID_MSI => "MSI",
        CAP_ID_CHSWP => "CompactPCI hot-swap",
        CAP_ID_PCIX => "PCI-X",
        CAP_ID_HT => "HyperTransport",
        CAP_ID_VNDR => "Vendor Specific Information",
        CAP_ID_DBG => "Debug port",
        CAP_ID_CCRC => "CompactPCI central resource control",
        CAP_ID_HOTPLUG => "Hot-plug capable",
        CAP_ID_SSVID => "Subsystem",
        CAP_ID_AGP3 => "AGP3",
        CAP_ID_SECURE => "Secure device",
        CAP_ID_EXPRESS => "Express",
        CAP_ID_MSIX => "MSI-X",
        CAP_ID_SATA => "SATA HBA",
        CAP_ID_AF => "PCI Advanced Features",
        CAP_ID_EA => "Enhanced Allocation (EA)",
        CAP_ID_FPB => "Flattening Portal Bridge",
        _ => "Unknown",
    }
}

/// The lspci-like name of an extended capability ID ("Unknown" if unassigned).
pub fn extended_capability_name(id: u16) -> &'static str {
    match id {
        ECAP_ID_NULL => "Null",
        ECAP_ID_AER => "Advanced Error Reporting",
        ECAP_ID_VC | ECAP_ID_VC2 => "Virtual Channel",
        ECAP_ID_DSN => "Device Serial Number",
        ECAP_ID_PB => "Power Budgeting",
        ECAP_ID_RCLINK => "Root Complex Link",
        ECAP_ID_RCILINK => "Root Complex Internal Link",
        ECAP_ID_RCEC => "Root Complex Event Collector Endpoint Association",
        ECAP_ID_MFVC => "Multi-Function Virtual Channel",
        ECAP_ID_RCRB => "Root Complex Register Block",
        ECAP_ID_VNDR => "Vendor Specific Information",
        ECAP_ID_CAC => "Configuration Access Correlation",
        ECAP_ID_ACS => "Access Control Services",
        ECAP_ID_ARI => "Alternative Routing-ID Interpretation (ARI)",
        ECAP_ID_ATS => "Address Translation Service (ATS)",
        ECAP_ID_SRIOV => "Single Root I/O Virtualization (SR-IOV)",
        ECAP_ID_MRIOV => "Multi-Root I/O Virtualization",
        ECAP_ID_MCAST => "Multicast",
        ECAP_ID_PRI => "Page Request Interface (PRI)",
        ECAP_ID_REBAR => "Physical Resizable BAR",
        ECAP_ID_DPA => "Dynamic Power Allocation",
        ECAP_ID_TPH => "Transaction Processing Hints",
        ECAP_ID_LTR => "Latency Tolerance Reporting",
        ECAP_ID_SECPCI => "Secondary PCI Express",
        ECAP_ID_PMUX => "Protocol Multiplexing",
        ECAP_ID_PASID => "Process Address Space ID (PASID)",
        ECAP_ID_LNR => "LN Requester",
        ECAP_ID_DPC => "Downstream Port Containment",
        ECAP_ID_L1PM => "L1 PM Substates",
        ECAP_ID_PTM => "Precision Time Measurement",
        ECAP_ID_MPHY => "PCI Express over M_PHY",
        ECAP_ID_FRS => "FRS Queueing",
        ECAP_ID_RTR => "Readiness Time Reporting",
        ECAP_ID_DVSEC => "Designated Vendor-Specific",
        ECAP_ID_VF_REBAR => "Virtual Resizable BAR",
        ECAP_ID_DLF => "Data Link Feature",
        ECAP_ID_PL_16GT => "Physical Layer 16.0 GT/s",
        ECAP_ID_LMR => "Lane Margining at the Receiver",
        ECAP_ID_HIER_ID => "Hierarchy ID",
        ECAP_ID_NPEM => "Native PCIe Enclosure Management",
        ECAP_ID_PL_32GT => "Physical Layer 32.0 GT/s",
        ECAP_ID_ALT_PROTOCOL => "Alternate Protocol",
        ECAP_ID_SFI => "System Firmware Intermediary",
        ECAP_ID_DOE => "Data Object Exchange",
        ECAP_ID_DEV3 => "Device 3",
        ECAP_ID_IDE => "Integrity and Data Encryption",
        ECAP_ID_PL_64GT => "Physical Layer 64.0 GT/s",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_lspci() {
        assert_eq!(capability_name(CAP_ID_EXPRESS), "Express");
        assert_eq!(capability_name(CAP_ID_MSI), "MSI");
        assert_eq!(capability_name(0xee), "Unknown");
        assert_eq!(
            extended_capability_name(ECAP_ID_ACS),
            "Access Control Services"
        );
        assert_eq!(
            extended_capability_name(ECAP_ID_AER),
            "Advanced Error Reporting"
        );
        assert_eq!(extended_capability_name(0x7777), "Unknown");
    }

    #[test]
    fn ids_are_the_assigned_values() {
        assert_eq!(CAP_ID_EXPRESS, 0x10);
        assert_eq!(CAP_ID_SSVID, 0x0d);
        assert_eq!(ECAP_ID_ACS, 0x000d);
        assert_eq!(ECAP_ID_AER, 0x0001);
        assert_eq!(ECAP_ID_DSN, 0x0003);
        assert_eq!(ECAP_ID_ARI, 0x000e);
        assert_eq!(ECAP_ID_ATS, 0x000f);
        assert_eq!(ECAP_ID_SRIOV, 0x0010);
        assert_eq!(ECAP_ID_PRI, 0x0013);
        assert_eq!(ECAP_ID_REBAR, 0x0015);
        assert_eq!(ECAP_ID_PASID, 0x001b);
        assert_eq!(ECAP_ID_DPC, 0x001d);
    }
}

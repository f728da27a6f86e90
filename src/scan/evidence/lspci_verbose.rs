//! `lspci -v`, `-vv`, `-vvv` (with or without `-nn`, `-D`, `-k`, `-s`): the
//! header line of each function and the decoded lines below it.
//!
//! Formats as pciutils prints them: the header line in lspci.c
//! (`show_device()` → `show_terse()`: `%s %s: %s`, ` (rev %02x)`,
//! ` (prog-if %02x [%s])`, `[%04x]`/`[%04x:%04x]` with -nn), the
//! device-level lines in lspci.c (`show_verbose()`, `show_htype1()`,
//! `show_bases()`: `Region %d: Memory at ... [size=]`), the capabilities
//! in ls-caps.c (`cap_express()`, `cap_express_dev()`, `cap_express_link()`,
//! `cap_express_dev2()`) and ls-ecaps.c (`cap_acs()`, `cap_aer()`,
//! `cap_ats()`, `cap_dsn()`, `cap_rebar()`, `cap_sriov()`).

use crate::pci::{Bdf, PortType};
use crate::scan::Bar;

/// What the text says about one capability. Fields stay None when their
/// lines are not there (`-v` prints the capability's name only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cap {
    /// `[60]` / `[100 v1]`.
    pub offset: u16,
    pub version: u8,
    pub kind: CapKind,
    pub express: ExpressText,
    /// ACSCap, ACSCtl.
    pub acs_cap: Option<u16>,
    pub acs_ctl: Option<u16>,
    /// ATSCtl Enable.
    pub ats_enabled: Option<bool>,
    /// AER UESta, CESta.
    pub ue_status: Option<u32>,
    pub ce_status: Option<u32>,
    pub dsn: Option<u64>,
    /// Resizable BAR: (BAR, current size in bytes, supported sizes in
    /// bytes).
    pub rebar: Vec<(u8, u64, Vec<u64>)>,
    /// SR-IOV: Initial VFs, Total VFs, Number of VFs; VF offset, stride,
    /// VF Device ID.
    pub sriov: Option<SriovText>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SriovText {
    pub initial: u16,
    pub total: u16,
    pub number: u16,
    pub offset: u16,
    pub stride: u16,
    pub vf_device: u16,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CapKind {
    /// A standard capability with this ID.
    Std(u8),
    /// An extended capability with this ID.
    Ext(u16),
    #[default]
    Unknown,
}

/// The PCI Express capability's registers as far as the text shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExpressText {
    pub port_type: Option<PortType>,
    pub slot: bool,
    /// DevCap MaxPayload (bytes).
    pub devcap_mps: Option<u16>,
    /// DevCtl: RlxdOrd, MaxPayload, MaxReadReq.
    pub relaxed_ordering: Option<bool>,
    pub mps: Option<u16>,
    pub mrrs: Option<u16>,
    /// LnkCap (speed code, width), LnkSta (speed code, width).
    pub lnkcap: Option<(u8, u8)>,
    pub lnksta: Option<(u8, u8)>,
    /// DevCap2 / DevCtl2 bits as lspci names them (register bit layout).
    pub devcap2: Option<u32>,
    pub devctl2: Option<u16>,
}

/// What the text says about the capability list.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Caps {
    /// No `Capabilities:` line: plain `lspci`, or `-v` of a function
    /// without capabilities (then `Status: Cap-` or `Flags:` tells).
    #[default]
    NotShown,
    /// `Capabilities: <access denied>`: lspci ran without root.
    AccessDenied,
    Listed(Vec<Cap>),
}

/// One function's block of `lspci -v...` text.
#[derive(Debug, Clone, Default)]
pub struct Verbose {
    /// Line number of the header line.
    pub line: usize,
    /// 0 for a header line alone (plain `lspci`, or above a hex dump),
    /// 1 for `-v` (a `Flags:` line), 2 for `-vv` and more (`Control:`).
    pub level: u8,
    /// Class code (24 bits) when known: `[0604]` with -nn, else the
    /// class name looked up; the prog-if from `(prog-if 02 ...)`.
    pub class: Option<u32>,
    pub class_name: String,
    /// `[vvvv:dddd]` (-nn).
    pub ids: Option<(u16, u16)>,
    /// The vendor and device name as printed.
    pub name: String,
    pub revision: Option<u8>,
    pub bus_master: Option<bool>,
    /// `Status: Cap+`.
    pub cap_list: Option<bool>,
    pub numa_node: Option<i32>,
    pub iommu_group: Option<u32>,
    /// `Subsystem: ... [vvvv:dddd]` (with -nn), from the device line or,
    /// for a bridge, the Subsystem capability line.
    pub subsystem: Option<(u16, u16)>,
    pub driver: Option<String>,
    /// `Bus: primary=, secondary=, subordinate=`.
    pub buses: Option<(u8, u8, u8)>,
    pub bars: Vec<Bar>,
    pub caps: Caps,
    /// Inside a capability (its detail lines follow).
    in_cap: bool,
}

/// The header line of a function: `00:02.0 PCI bridge [0604]: ...`,
/// `0000:00:02.0 ...` with -D. Returns the address and the text after it.
pub fn header(line: &str) -> Option<(Bdf, &str)> {
    let (addr, rest) = line.split_once(' ')?;
    // A cheap shape test first: most lines are not headers.
    let b = addr.as_bytes();
    if b.len() < 7 || b[b.len() - 2] != b'.' || b[b.len() - 5] != b':' {
        return None;
    }
    let bdf: Bdf = addr.parse().ok()?;
    // The class name and `: ` follow (`Class 0604: Device 8086:2031`
    // when pci.ids is missing); prose like "01:00.0 is the GPU" does not.
    let colon = rest.find(": ")?;
    if colon == 0 || rest[..colon].contains("  ") {
        return None;
    }
    Some((bdf, rest))
}

/// Class names as pci.ids spells them (`C` lines) for the classes the
/// analysis tells apart, so text without -nn keeps the class.
const CLASS_NAMES: &[(&str, u32)] = &[
    ("Non-Volatile memory controller", 0x0108),
    ("SATA controller", 0x0106),
    ("Serial Attached SCSI controller", 0x0107),
    ("RAID bus controller", 0x0104),
    ("SCSI storage controller", 0x0100),
    ("Mass storage controller", 0x0180),
    ("Ethernet controller", 0x0200),
    ("Network controller", 0x0280),
    ("Infiniband controller", 0x0207),
    ("Fabric controller", 0x0208),
    ("VGA compatible controller", 0x0300),
    ("3D controller", 0x0302),
    ("Display controller", 0x0380),
    ("Multimedia controller", 0x0480),
    ("Audio device", 0x0403),
    ("Memory controller", 0x0580),
    ("RAM memory", 0x0500),
    ("Host bridge", 0x0600),
    ("ISA bridge", 0x0601),
    ("PCI bridge", 0x0604),
    ("CardBus bridge", 0x0607),
    ("Bridge", 0x0680),
    ("System peripheral", 0x0880),
    ("IOMMU", 0x0806),
    ("Performance counters", 0x1101),
    ("Signal processing controller", 0x1180),
    ("Processing accelerators", 0x1200),
    ("Co-processor", 0x0b40),
    ("Serial bus controller", 0x0c80),
    ("USB controller", 0x0c03),
    ("SMBus", 0x0c05),
    ("Encryption controller", 0x1080),
    ("Non-Essential Instrumentation", 0x1300),
    ("Unassigned class", 0xff00),
];

impl Verbose {
    /// Starts a function from its header line's text after the address.
    pub fn from_header(rest: &str, line: usize) -> Verbose {
        let mut v = Verbose {
            line,
            ..Default::default()
        };
        let Some((class, mut name)) = rest.split_once(": ") else {
            return v;
        };
        let mut prog_if = None;
        if let Some(at) = name.rfind(" (prog-if ") {
            prog_if = name[at + 10..]
                .get(..2)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            name = &name[..at];
        }
        if let Some(at) = name.rfind(" (rev ") {
            v.revision = name[at + 6..]
                .strip_suffix(')')
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            name = &name[..at];
        }
        // -nn: `... [10de:20b5]` after the name, `[0302]` after the class.
        if let Some(ids) = name.strip_suffix(']').and_then(|n| n.rsplit_once('['))
            && let Some((vd, dd)) = ids.1.split_once(':')
            && vd.len() == 4
            && dd.len() == 4
            && let (Ok(vendor), Ok(device)) =
                (u16::from_str_radix(vd, 16), u16::from_str_radix(dd, 16))
        {
            v.ids = Some((vendor, device));
            name = ids.0.trim_end();
        }
        let (class_name, class_code) =
            match class.strip_suffix(']').and_then(|c| c.rsplit_once(" [")) {
                Some((n, code)) if code.len() == 4 => (n, u32::from_str_radix(code, 16).ok()),
                _ => (class, None),
            };
        // `Class 0604` when lspci has no pci.ids.
        let class_code = class_code
            .or_else(|| {
                class_name
                    .strip_prefix("Class ")
                    .and_then(|c| u32::from_str_radix(c, 16).ok())
            })
            .or_else(|| {
                CLASS_NAMES
                    .iter()
                    .find(|(n, _)| *n == class_name)
                    .map(|&(_, c)| c)
            });
        v.class = class_code.map(|c| c << 8 | u32::from(prog_if.unwrap_or(0)));
        v.class_name = class_name.to_string();
        // `Device 8086:2031` when lspci has no pci.ids.
        if v.ids.is_none()
            && let Some(ids) = name.strip_prefix("Device ")
            && let Some((a, b)) = ids.split_once(':')
            && let (Ok(vendor), Ok(device)) =
                (u16::from_str_radix(a, 16), u16::from_str_radix(b, 16))
        {
            v.ids = Some((vendor, device));
        }
        v.name = name.to_string();
        v
    }

    /// One line below the header. Returns false for a line it could not
    /// read although it looked like one of lspci's (the caller notes it).
    pub fn feed(&mut self, line: &str) -> bool {
        let t = line.trim();
        let (key, value) = match t.split_once(':') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (t, ""),
        };
        if key == "Capabilities" {
            self.in_cap = true;
            if self.level == 0 {
                self.level = 1;
            }
            return self.capability(value);
        }
        // Keys only the device level has, wherever the indentation went
        // (a paste may have turned the tabs into spaces).
        match key {
            "NUMA node" => {
                self.numa_node = value.parse().ok();
                return self.numa_node.is_some();
            }
            "IOMMU group" => {
                self.iommu_group = value.parse().ok();
                return self.iommu_group.is_some();
            }
            "Kernel driver in use" => {
                self.driver = Some(value.to_string()).filter(|d| !d.is_empty());
                return true;
            }
            "Subsystem" => {
                self.subsystem = self.subsystem.or(trailing_ids(value));
                return true;
            }
            "Kernel modules" | "Physical Slot" | "Latency" | "Interrupt" => {
                return true;
            }
            _ => {}
        }
        // Device-level lines (one tab) end a capability's detail lines.
        let device_level = line.starts_with('\t') && !line.starts_with("\t\t");
        if !self.in_cap || device_level {
            match key {
                "Control" => {
                    self.level = 2;
                    self.bus_master = flag(value, "BusMaster");
                    return true;
                }
                "Status" if !self.in_cap => {
                    self.cap_list = flag(value, "Cap");
                    return true;
                }
                "Flags" if !self.in_cap => {
                    self.level = self.level.max(1);
                    self.bus_master = Some(value.contains("bus master"));
                    if let Some(n) = value.split("NUMA node ").nth(1) {
                        self.numa_node = n.split(',').next().and_then(|n| n.trim().parse().ok());
                    }
                    return true;
                }
                "Bus" => {
                    self.buses = bus_numbers(value);
                    return self.buses.is_some();
                }
                k if k.starts_with("Region ") => {
                    let Some(index) = k[7..].parse::<u8>().ok().filter(|&i| i < 6) else {
                        return false;
                    };
                    if let Some(bar) = region(index, value) {
                        self.bars.push(bar);
                    }
                    return true;
                }
                _ if device_level => {
                    self.in_cap = false;
                    return true;
                }
                _ => {}
            }
        }
        let Some(cap) = self.current_cap() else {
            return true;
        };
        cap_detail(cap, key, value);
        true
    }

    fn current_cap(&mut self) -> Option<&mut Cap> {
        match &mut self.caps {
            Caps::Listed(v) => v.last_mut(),
            _ => None,
        }
    }

    /// `[60] Express (v2) Root Port (Slot+), MSI 00`, `[100 v1] Access
    /// Control Services`, `<access denied>`.
    fn capability(&mut self, value: &str) -> bool {
        if value.starts_with("<access denied>") {
            self.caps = Caps::AccessDenied;
            return true;
        }
        let Some(rest) = value.strip_prefix('[') else {
            return false;
        };
        let Some((pos, name)) = rest.split_once(']') else {
            return false;
        };
        let name = name.trim();
        let (off, version) = match pos.split_once(" v") {
            Some((o, v)) => (o, v.parse().unwrap_or(0)),
            None => (pos, 0),
        };
        let Ok(offset) = u16::from_str_radix(off.trim(), 16) else {
            return false;
        };
        let extended = offset >= 0x100;
        let mut cap = Cap {
            offset,
            version,
            kind: if extended {
                CapKind::Ext(ext_cap_id(name))
            } else {
                CapKind::Std(std_cap_id(name))
            },
            ..Default::default()
        };
        if cap.kind == CapKind::Std(0x10) {
            cap.express = express_header(name);
            // `Express (v1) ...`; `-v` prints no version at all.
            cap.version = name
                .split("(v")
                .nth(1)
                .and_then(|v| v.split(')').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        if cap.kind == CapKind::Std(0x0d) {
            // `Subsystem: Intel Corporation ... [8086:2031]` (ls-caps.c
            // `cap_ssvid()`): a bridge's subsystem IDs.
            self.subsystem = trailing_ids(name).or(self.subsystem);
        }
        if cap.kind == CapKind::Ext(0x03) {
            // `Device Serial Number 00-11-22-33-44-55-66-77` (ls-ecaps.c
            // `cap_dsn()`, high byte first), on the capability's own line.
            let hex: String = name
                .trim_start_matches("Device Serial Number")
                .trim()
                .split('-')
                .collect();
            cap.dsn = u64::from_str_radix(&hex, 16).ok();
        }
        match &mut self.caps {
            Caps::Listed(v) => v.push(cap),
            other => *other = Caps::Listed(vec![cap]),
        }
        true
    }
}

/// `... [8086:2031]` at the end of a name (-nn).
fn trailing_ids(s: &str) -> Option<(u16, u16)> {
    let (_, ids) = s.trim().strip_suffix(']')?.rsplit_once('[')?;
    let (v, d) = ids.split_once(':')?;
    if v.len() != 4 || d.len() != 4 {
        return None;
    }
    Some((
        u16::from_str_radix(v, 16).ok()?,
        u16::from_str_radix(d, 16).ok()?,
    ))
}

/// `Foo+` → Some(true), `Foo-` → Some(false), absent → None.
fn flag(text: &str, name: &str) -> Option<bool> {
    text.split([' ', ',', '\t']).find_map(|w| {
        let w = w.strip_prefix(name)?;
        match w {
            "+" => Some(true),
            "-" => Some(false),
            _ => None,
        }
    })
}

/// `primary=00, secondary=01, subordinate=04, sec-latency=0`.
fn bus_numbers(v: &str) -> Option<(u8, u8, u8)> {
    let field = |name: &str| {
        v.split(',')
            .find_map(|p| p.trim().strip_prefix(name))
            .and_then(|n| u8::from_str_radix(n.trim(), 16).ok())
    };
    Some((
        field("primary=")?,
        field("secondary=")?,
        field("subordinate=")?,
    ))
}

/// `[size=16K]` → bytes.
fn size_of(v: &str) -> Option<u64> {
    let s = v.split("[size=").nth(1)?.split(']').next()?;
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_shl(shift)
}

/// `Memory at 80000000 (64-bit, prefetchable) [size=16K]`,
/// `I/O ports at e000 [size=128]` (lspci.c `show_bases()`).
fn region(index: u8, v: &str) -> Option<Bar> {
    let io = v.starts_with("I/O ports at ");
    let at = v.split(" at ").nth(1)?.split_whitespace().next()?;
    let start = u64::from_str_radix(at, 16).ok()?;
    Some(Bar {
        index,
        start,
        size: size_of(v)?,
        io,
        is_64: v.contains("(64-bit"),
        prefetchable: v.contains(", prefetchable)"),
    })
}

/// Standard capability IDs by the name ls-caps.c prints.
fn std_cap_id(name: &str) -> u8 {
    const NAMES: &[(&str, u8)] = &[
        ("Power Management", 0x01),
        ("AGP", 0x02),
        ("Vital Product Data", 0x03),
        ("Slot ID", 0x04),
        ("MSI:", 0x05),
        ("CompactPCI", 0x06),
        ("PCI-X", 0x07),
        ("HyperTransport", 0x08),
        ("Vendor Specific", 0x09),
        ("Debug port", 0x0a),
        ("CompactPCI central resource", 0x0b),
        ("PCI Hot-plug", 0x0c),
        ("Subsystem", 0x0d),
        ("AGP3", 0x0e),
        ("Secure device", 0x0f),
        ("Express", 0x10),
        ("MSI-X", 0x11),
        ("SATA HBA", 0x12),
        ("PCI Advanced Features", 0x13),
        ("Enhanced Allocation", 0x14),
        ("Flattening Portal Bridge", 0x15),
    ];
    NAMES
        .iter()
        .filter(|(n, _)| name.starts_with(n))
        .max_by_key(|(n, _)| n.len())
        .map(|&(_, id)| id)
        // `#xx [..]`: lspci names an unknown ID by number.
        .or_else(|| {
            name.strip_prefix('#')
                .and_then(|h| u8::from_str_radix(h.get(..2)?, 16).ok())
        })
        // An ID no decoder reads, so the list keeps its shape.
        .unwrap_or(0x09)
}

/// Extended capability IDs by the name ls-ecaps.c prints.
fn ext_cap_id(name: &str) -> u16 {
    const NAMES: &[(&str, u16)] = &[
        ("Advanced Error Reporting", 0x01),
        ("Virtual Channel", 0x02),
        ("Device Serial Number", 0x03),
        ("Power Budgeting", 0x04),
        ("Root Complex Link", 0x05),
        ("Root Complex Internal Link", 0x06),
        ("Root Complex Event Collector", 0x07),
        ("Multi-Function Virtual Channel", 0x08),
        ("Vendor Specific Information", 0x0b),
        ("Access Control Services", 0x0d),
        ("Alternative Routing-ID Interpretation", 0x0e),
        ("Address Translation Service", 0x0f),
        ("Single Root I/O Virtualization", 0x10),
        ("Multicast", 0x12),
        ("Page Request Interface", 0x13),
        ("Physical Resizable BAR", 0x15),
        ("Dynamic Power Allocation", 0x16),
        ("Transaction Processing Hints", 0x17),
        ("Latency Tolerance Reporting", 0x18),
        ("Secondary PCI Express", 0x19),
        ("Process Address Space ID", 0x1b),
        ("Downstream Port Containment", 0x1d),
        ("L1 PM Substates", 0x1e),
        ("Precision Time Measurement", 0x1f),
        ("Designated Vendor-Specific", 0x23),
        ("VF Resizable BAR", 0x24),
        ("Data Link Feature", 0x25),
        ("Physical Layer 16.0 GT/s", 0x26),
        ("Lane Margining at the Receiver", 0x27),
        ("Physical Layer 32.0 GT/s", 0x2a),
    ];
    NAMES
        .iter()
        .filter(|(n, _)| name.starts_with(n))
        .max_by_key(|(n, _)| n.len())
        .map(|&(_, id)| id)
        .or_else(|| {
            // `Extended Capability ID 0x2b`
            name.split("ID 0x")
                .nth(1)
                .and_then(|h| u16::from_str_radix(h.get(..2)?, 16).ok())
        })
        .unwrap_or(0x0b)
}

/// `Express (v2) Root Port (Slot+), MSI 00`; `Express Endpoint, MSI 00`
/// (ls-caps.c `cap_express()`).
fn express_header(name: &str) -> ExpressText {
    // Longest names first: "Root Port" inside "Root Complex ...".
    const TYPES: &[(&str, PortType)] = &[
        (
            "Root Complex Integrated Endpoint",
            PortType::RcIntegratedEndpoint,
        ),
        ("Root Complex Event Collector", PortType::RcEventCollector),
        ("PCI-Express to PCI/PCI-X Bridge", PortType::PcieToPciBridge),
        ("PCI/PCI-X to PCI-Express Bridge", PortType::PciToPcieBridge),
        ("Legacy Endpoint", PortType::LegacyEndpoint),
        ("Root Port", PortType::RootPort),
        ("Upstream Port", PortType::UpstreamPort),
        ("Downstream Port", PortType::DownstreamPort),
        ("Endpoint", PortType::Endpoint),
    ];
    let port_type = TYPES
        .iter()
        .find(|(n, _)| name.contains(n))
        .map(|&(_, t)| t)
        .or_else(|| {
            // `Express (v2) Unknown type 3`
            name.split("Unknown type ")
                .nth(1)
                .and_then(|c| c.split(|ch: char| !ch.is_ascii_hexdigit()).next())
                .and_then(|c| u8::from_str_radix(c, 16).ok())
                .map(PortType::from_code)
        });
    ExpressText {
        port_type,
        slot: name.contains("(Slot+)"),
        ..Default::default()
    }
}

/// `Speed 16GT/s (ok), Width x16 (ok)` → (speed code, width).
fn speed_width(v: &str) -> Option<(u8, u8)> {
    let speed = v.split("Speed ").nth(1)?;
    let speed = speed.split(['G', ',', ' ']).next()?;
    let code = match speed {
        "2.5" => 1,
        "5" => 2,
        "8" => 3,
        "16" => 4,
        "32" => 5,
        "64" => 6,
        _ => 0,
    };
    let width = v.split("Width x").nth(1)?;
    let width: u8 = width
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((code, width))
}

/// `MaxPayload 256 bytes`, `MaxReadReq 512 bytes`.
fn bytes_after(v: &str, key: &str) -> Option<u16> {
    v.split(key).nth(1)?.split_whitespace().next()?.parse().ok()
}

/// The seven ACS bits in register order (ls-ecaps.c `cap_acs()`).
const ACS_BITS: [&str; 7] = [
    "SrcValid",
    "TransBlk",
    "ReqRedir",
    "CmpltRedir",
    "UpstreamFwd",
    "EgressCtrl",
    "DirectTrans",
];

/// AER Uncorrectable Error Status bits by lspci's names (ls-ecaps.c
/// `cap_aer()`, PCI_ERR_UNC_*).
const UE_BITS: &[(&str, u8)] = &[
    ("DLP", 4),
    ("SDES", 5),
    ("TLP", 12),
    ("FCP", 13),
    ("CmpltTO", 14),
    ("CmpltAbrt", 15),
    ("UnxCmplt", 16),
    ("RxOF", 17),
    ("MalfTLP", 18),
    ("ECRC", 19),
    ("UnsupReq", 20),
    ("ACSViol", 21),
    ("UncorrIntErr", 22),
    ("BlockedTLP", 23),
    ("AtomicOpBlocked", 24),
    ("TLPBlockedErr", 25),
    ("PoisonTLPBlocked", 26),
];

/// AER Correctable Error Status bits (PCI_ERR_COR_*).
const CE_BITS: &[(&str, u8)] = &[
    ("RxErr", 0),
    ("BadTLP", 6),
    ("BadDLLP", 7),
    ("Rollover", 8),
    ("Timeout", 12),
    ("AdvNonFatalErr", 13),
    ("CorrIntErr", 14),
    ("HeaderOF", 15),
];

/// A register from `Name+`/`Name-` words; None when none of the names
/// appear (a line that is not what it claims).
fn bits(v: &str, names: &[(&str, u8)]) -> Option<u32> {
    let mut seen = false;
    let mut out = 0u32;
    for (name, bit) in names {
        match flag(v, name) {
            Some(true) => {
                seen = true;
                out |= 1 << bit;
            }
            Some(false) => seen = true,
            None => {}
        }
    }
    seen.then_some(out)
}

fn cap_detail(cap: &mut Cap, key: &str, value: &str) {
    let e = &mut cap.express;
    match key {
        "DevCap" => e.devcap_mps = bytes_after(value, "MaxPayload "),
        "DevCtl" => {
            // DevCtl spans three lines: the flags, then `RlxdOrd+ ...`,
            // then `MaxPayload ... MaxReadReq ...`, continuation lines
            // with no key of their own (see `continuation`).
            e.relaxed_ordering = flag(value, "RlxdOrd").or(e.relaxed_ordering);
        }
        "LnkCap" => e.lnkcap = speed_width(value),
        "LnkSta" => e.lnksta = speed_width(value),
        "DevCap2" => e.devcap2 = Some(devcap2_bits(value)),
        "DevCtl2" => e.devctl2 = Some(devctl2_bits(value) as u16),
        "ACSCap" => cap.acs_cap = acs_bits(value),
        "ACSCtl" => cap.acs_ctl = acs_bits(value),
        "ATSCtl" => cap.ats_enabled = flag(value, "Enable"),
        "UESta" => cap.ue_status = bits(value, UE_BITS),
        "CESta" => cap.ce_status = bits(value, CE_BITS),
        "Serial Number" => {
            // `Serial Number 00-11-22-33-44-55-66-77` (bytes high first).
            let hex: String = value.split('-').collect();
            cap.dsn = u64::from_str_radix(&hex, 16).ok();
        }
        _ => continuation(cap, key, value),
    }
}

/// Lines without a key of their own: DevCtl's second and third lines,
/// DevCap2/DevCtl2 continuations, the DSN (`Device Serial Number xx-..`
/// sits on the capability line), Resizable BAR and SR-IOV lines.
fn continuation(cap: &mut Cap, key: &str, value: &str) {
    let line = if value.is_empty() {
        key.to_string()
    } else {
        format!("{key}: {value}")
    };
    let e = &mut cap.express;
    if line.contains("MaxReadReq") {
        e.mps = bytes_after(&line, "MaxPayload ");
        e.mrrs = bytes_after(&line, "MaxReadReq ");
    } else if let Some(ro) = flag(&line, "RlxdOrd") {
        e.relaxed_ordering = Some(ro);
    } else if line.contains("AtomicOpsCap") || line.contains("10BitTagComp") {
        e.devcap2 = Some(e.devcap2.unwrap_or(0) | devcap2_bits(&line));
    } else if line.contains("AtomicOpsCtl") {
        e.devctl2 = Some(e.devctl2.unwrap_or(0) | devctl2_bits(&line) as u16);
    } else if let Some(rest) = line.strip_prefix("BAR ") {
        // ls-ecaps.c `cap_rebar()`: `BAR 1: current size: 128GB,
        // supported: 64MB 128MB ...`
        let index = rest
            .split(':')
            .next()
            .and_then(|i| i.trim().parse::<u8>().ok());
        let current = rest.split("current size: ").nth(1).and_then(|s| {
            let s = s.split(',').next()?.trim();
            size_with_unit(s)
        });
        let supported = rest
            .split("supported: ")
            .nth(1)
            .map(|l| l.split_whitespace().filter_map(size_with_unit).collect())
            .unwrap_or_default();
        if let (Some(i), Some(c)) = (index, current) {
            cap.rebar.push((i, c, supported));
        }
    } else if line.starts_with("IOVCap") || line.starts_with("Initial VFs") {
        let n = |k: &str| -> Option<u16> {
            line.split(k).nth(1)?.split(',').next()?.trim().parse().ok()
        };
        let s = cap.sriov.get_or_insert_with(SriovText::default);
        if let (Some(i), Some(t), Some(nv)) =
            (n("Initial VFs: "), n("Total VFs: "), n("Number of VFs: "))
        {
            s.initial = i;
            s.total = t;
            s.number = nv;
        }
    } else if line.starts_with("VF offset") {
        let n = |k: &str| -> Option<u16> {
            line.split(k).nth(1)?.split(',').next()?.trim().parse().ok()
        };
        let s = cap.sriov.get_or_insert_with(SriovText::default);
        s.offset = n("VF offset: ").unwrap_or(0);
        s.stride = n("stride: ").unwrap_or(0);
        s.vf_device = line
            .split("Device ID: ")
            .nth(1)
            .and_then(|h| u16::from_str_radix(h.trim(), 16).ok())
            .unwrap_or(0);
    }
}

/// `128GB`, `16MB`, `1TB` (ls-ecaps.c prints sizes this way).
fn size_with_unit(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let shift = match unit {
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        "EB" => 60,
        "PB" => 50,
        _ => return None,
    };
    n.checked_shl(shift)
}

fn acs_bits(v: &str) -> Option<u16> {
    let mut out = 0u16;
    for (i, name) in ACS_BITS.iter().enumerate() {
        match flag(v, name) {
            Some(true) => out |= 1 << i,
            Some(false) => {}
            // All seven are printed; a line without one is not ACS's.
            None => return None,
        }
    }
    Some(out)
}

/// The DevCap2 bits the analysis reads (express.rs `decode_dev_cap2`).
fn devcap2_bits(v: &str) -> u32 {
    let mut out = 0;
    let mut set = |on: Option<bool>, bit: u32| {
        if on == Some(true) {
            out |= 1 << bit;
        }
    };
    set(flag(v, "LTR"), 11);
    set(flag(v, "10BitTagComp"), 16);
    set(flag(v, "10BitTagReq"), 17);
    if let Some(a) = v.split("AtomicOpsCap:").nth(1) {
        set(flag(a, "Routing"), 6);
        set(flag(a, "32bit"), 7);
        set(flag(a, "64bit"), 8);
        set(flag(a, "128bitCAS"), 9);
    }
    out
}

/// The DevCtl2 bits the analysis reads (express.rs `decode_dev_ctl2`).
fn devctl2_bits(v: &str) -> u32 {
    let mut out = 0;
    let mut set = |on: Option<bool>, bit: u32| {
        if on == Some(true) {
            out |= 1 << bit;
        }
    };
    let (before, atomics) = match v.split_once("AtomicOpsCtl:") {
        Some((b, a)) => (b, Some(a)),
        None => (v, None),
    };
    set(flag(before, "LTR"), 10);
    set(flag(before, "10BitTagReq"), 12);
    if let Some(a) = atomics {
        set(flag(a, "ReqEn"), 6);
        set(flag(a, "EgressBlck"), 7);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines() {
        let (bdf, rest) = header(
            "0000:00:02.0 PCI bridge [0604]: Intel Corporation Sky Lake-E PCI Express Root Port B [8086:2031] (rev 04) (prog-if 00 [Normal decode])",
        )
        .unwrap();
        assert_eq!(bdf.to_string(), "0000:00:02.0");
        let v = Verbose::from_header(rest, 1);
        assert_eq!(v.class, Some(0x060400));
        assert_eq!(v.ids, Some((0x8086, 0x2031)));
        assert_eq!(v.revision, Some(4));
        assert_eq!(
            v.name,
            "Intel Corporation Sky Lake-E PCI Express Root Port B"
        );
        let (_, rest) = header("01:00.0 Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD Controller PM173X (prog-if 02 [NVM Express])").unwrap();
        let v = Verbose::from_header(rest, 1);
        assert_eq!(v.class, Some(0x010802));
        assert_eq!(v.ids, None);
        assert!(header("01:00.0 is the GPU").is_none());
        assert!(header("Speed 8GT/s, Width x4").is_none());
    }

    #[test]
    fn detail_lines() {
        let mut v = Verbose::default();
        for l in [
            "\tControl: I/O- Mem+ BusMaster+ SpecCycle-",
            "\tStatus: Cap+ 66MHz- UDF-",
            "\tNUMA node: 1",
            "\tIOMMU group: 12",
            "\tBus: primary=00, secondary=05, subordinate=0a, sec-latency=0",
            "\tRegion 0: Memory at 2c2000000000 (64-bit, prefetchable) [size=32M]",
            "\tCapabilities: [60] Express (v2) Downstream Port (Slot+), MSI 00",
            "\t\tDevCap:\tMaxPayload 512 bytes, PhantFunc 0",
            "\t\tDevCtl:\tCorrErr- NonFatalErr- FatalErr- UnsupReq-",
            "\t\t\tRlxdOrd+ ExtTag+ PhantFunc- AuxPwr- NoSnoop+",
            "\t\t\tMaxPayload 256 bytes, MaxReadReq 512 bytes",
            "\t\tLnkCap:\tPort #8, Speed 8GT/s, Width x4, ASPM L0s L1",
            "\t\tLnkSta:\tSpeed 2.5GT/s (downgraded), Width x1 (downgraded)",
            "\tCapabilities: [100 v1] Access Control Services",
            "\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl+ DirectTrans+",
            "\t\tACSCtl:\tSrcValid- TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd- EgressCtrl- DirectTrans-",
            "\tKernel driver in use: pcieport",
        ] {
            assert!(v.feed(l), "{l}");
        }
        assert_eq!(v.bus_master, Some(true));
        assert_eq!(v.cap_list, Some(true));
        assert_eq!(v.numa_node, Some(1));
        assert_eq!(v.iommu_group, Some(12));
        assert_eq!(v.buses, Some((0, 5, 0x0a)));
        assert_eq!(v.bars[0].size, 32 << 20);
        assert_eq!(v.driver.as_deref(), Some("pcieport"));
        let Caps::Listed(caps) = &v.caps else {
            panic!()
        };
        let e = caps[0].express;
        assert_eq!(e.port_type, Some(PortType::DownstreamPort));
        assert_eq!(
            (e.mps, e.mrrs, e.relaxed_ordering),
            (Some(256), Some(512), Some(true))
        );
        assert_eq!(e.lnkcap, Some((3, 4)));
        assert_eq!(e.lnksta, Some((1, 1)));
        assert_eq!(caps[1].offset, 0x100);
        assert_eq!(caps[1].acs_cap, Some(0x7f));
        assert_eq!(caps[1].acs_ctl, Some(0x0c));
    }
}

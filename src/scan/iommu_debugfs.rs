//! The IOMMU driver's own per-device translation state, from debugfs
//! (root only, `CONFIG_INTEL_IOMMU_DEBUGFS`), where sysfs only says what a
//! group's default domain type is (`/sys/kernel/iommu_groups/N/type`,
//! Linux 5.11+) and older kernels say nothing.
//!
//! Intel VT-d: `iommu/intel/dmar_translation_struct`
//! (drivers/iommu/intel/debugfs.c, `dmar_translation_struct_show()`)
//! walks every present context entry of every DMAR unit:
//!
//! ```text
//! (columns separated by tabs)
//! IOMMU dmar0: Root Table Address: 0x1087ab000
//! B.D.F  Root_entry        Context_entry        PASID  PASID_table_entry
//! 00:02.0  0x0000000000000000:0x000000010c6f2001  0x0000000000000102:0x0000000104b08009  -1      0x0000000000000000:0x0000000000000000:0x0000000000000000
//! ```
//!
//! (`print_tbl_walk()`: `%02x:%02x.%x\t0x%016llx:0x%016llx\t0x%016llx:0x%016llx\t%-6d\t0x%016llx:0x%016llx:0x%016llx`,
//! root hi:lo, context hi:lo, PASID, PASID entry val[2]:val[1]:val[0]), or
//! `DMA Remapping is not enabled on dmar1` for a unit that does not
//! translate. A legacy-mode unit prints PASID -1, and the context entry's
//! Translation Type (lo bits 3:2, VT-d spec §9.3) tells: 00 and 01
//! translate through second-level page tables (01 also admits ATS-
//! translated requests), 10 is pass-through. A scalable-mode unit prints one
//! line per present PASID; PASID 0 (RID_PASID) carries the DMA without a
//! PASID, and its PASID entry's PGTT (val[0] bits 8:6, §9.6) tells: 001
//! first-stage, 010 second-stage, 011 nested (all translate), 100
//! pass-through.
//!
//! Not read: `domain_translation_struct`, which dumps every mapped IOVA
//! page of every device while holding the driver's lock with interrupts
//! off (megabytes on a GPU server); the context entries above already say
//! whether a device translates. AMD's debugfs (`iommu/amd/iommuNN/`,
//! Linux 6.14+) shows a device table entry or register only after its
//! number is written to `devid`/`mmio`: a read-only doctor writes nothing,
//! so AMD machines rest on the group type in sysfs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::pci::Bdf;
use crate::root::SystemRoot;

pub const INTEL_DMAR_FILE: &str = "sys/kernel/debug/iommu/intel/dmar_translation_struct";

/// What the driver set up for a device's DMA without a PASID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DmaTranslation {
    /// Pass-through: DMA addresses are physical addresses.
    Identity,
    /// Through page tables (second-level, first-level or nested).
    Translated,
    /// A value this reader does not know (reserved, or a newer format).
    Unknown,
}

/// One device's line(s) in `dmar_translation_struct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceTranslation {
    pub bdf: Bdf,
    /// `dmar0`.
    pub unit: String,
    pub translation: DmaTranslation,
    /// `legacy context TT=10 (pass-through), domain 2`.
    pub detail: String,
}

/// What the driver's debugfs said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IommuDebugfs {
    /// The file it came from.
    pub source: String,
    pub devices: Vec<DeviceTranslation>,
    /// Units that print `DMA Remapping is not enabled on <unit>`.
    pub units_not_translating: Vec<String>,
    /// Lines that looked like a device line but did not parse.
    pub unparsed_lines: usize,
}

impl IommuDebugfs {
    pub fn device(&self, bdf: Bdf) -> Option<&DeviceTranslation> {
        self.devices.iter().find(|d| d.bdf == bdf)
    }
}

/// Reads the Intel driver's table where debugfs is mounted and readable
/// (root), or where a capture holds it. None elsewhere.
pub fn read(root: &SystemRoot) -> Option<IommuDebugfs> {
    let text = root.read_string(INTEL_DMAR_FILE).ok()?;
    let mut segments: BTreeMap<String, u32> = BTreeMap::new();
    for unit in root.read_dir("sys/class/iommu").unwrap_or_default() {
        let domains: Vec<u32> = root
            .read_dir(&format!("sys/class/iommu/{unit}/devices"))
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.parse::<Bdf>().ok())
            .map(|b| b.domain)
            .collect();
        if let Some(&d) = domains.first()
            && domains.iter().all(|&x| x == d)
        {
            segments.insert(unit, d);
        }
    }
    let mut parsed = parse_intel_dmar(&text, |unit| segments.get(unit).copied().unwrap_or(0));
    parsed.source = format!("/{INTEL_DMAR_FILE}");
    Some(parsed)
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().strip_prefix("0x")?, 16).ok()
}

/// `hi:lo` as two numbers.
fn pair(s: &str) -> Option<(u64, u64)> {
    let (hi, lo) = s.split_once(':')?;
    Some((hex(hi)?, hex(lo)?))
}

/// Parses `dmar_translation_struct`; `segment` gives a unit's PCI segment
/// (the file prints bus:dev.fn only). Never panics: what does not parse is
/// counted in `unparsed_lines`.
pub fn parse_intel_dmar(text: &str, segment: impl Fn(&str) -> u32) -> IommuDebugfs {
    let mut out = IommuDebugfs::default();
    let mut unit = String::new();
    let mut found: BTreeMap<Bdf, DeviceTranslation> = BTreeMap::new();
    for line in text.lines() {
        let t = line.trim_end_matches('\r');
        if let Some(rest) = t.strip_prefix("IOMMU ")
            && let Some((name, _)) = rest.split_once(": Root Table Address")
        {
            unit = name.trim().to_string();
            continue;
        }
        if let Some(name) = t.strip_prefix("DMA Remapping is not enabled on ") {
            out.units_not_translating.push(name.trim().to_string());
            continue;
        }
        let fields: Vec<&str> = t
            .split('\t')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        let Some(first) = fields.first() else {
            continue;
        };
        // 00:02.0
        let Some((bus, devfn)) = first.split_once(':') else {
            continue;
        };
        let Some((dev, func)) = devfn.split_once('.') else {
            continue;
        };
        let (Ok(bus), Ok(dev), Ok(func)) = (
            u8::from_str_radix(bus, 16),
            u8::from_str_radix(dev, 16),
            u8::from_str_radix(func, 16),
        ) else {
            continue;
        };
        if dev > 0x1f || func > 7 || fields.len() < 5 {
            out.unparsed_lines += 1;
            continue;
        }
        let (Some((ctx_hi, ctx_lo)), Ok(pasid)) = (pair(fields[2]), fields[3].parse::<i64>())
        else {
            out.unparsed_lines += 1;
            continue;
        };
        let pasid_val0 = fields[4].rsplit(':').next().and_then(hex);
        let bdf = Bdf {
            domain: segment(&unit),
            bus,
            device: dev,
            function: func,
        };
        let (translation, detail) = if pasid < 0 {
            // Legacy mode: the context entry decides.
            let tt = (ctx_lo >> 2) & 3;
            let did = (ctx_hi >> 8) & 0xffff;
            let (tr, what) = match tt {
                0 => (DmaTranslation::Translated, "translated"),
                1 => (DmaTranslation::Translated, "translated, ATS allowed"),
                2 => (DmaTranslation::Identity, "pass-through"),
                _ => (DmaTranslation::Unknown, "reserved"),
            };
            (
                tr,
                format!("legacy context entry TT={tt:02b} ({what}), domain {did}"),
            )
        } else if pasid == 0 {
            let Some(val0) = pasid_val0 else {
                out.unparsed_lines += 1;
                continue;
            };
            let pgtt = (val0 >> 6) & 7;
            let (tr, what) = match pgtt {
                1 => (DmaTranslation::Translated, "first-stage"),
                2 => (DmaTranslation::Translated, "second-stage"),
                3 => (DmaTranslation::Translated, "nested"),
                4 => (DmaTranslation::Identity, "pass-through"),
                _ => (DmaTranslation::Unknown, "reserved"),
            };
            (
                tr,
                format!("scalable-mode PASID 0 entry PGTT={pgtt:03b} ({what})"),
            )
        } else {
            // Another PASID: not the device's DMA without a PASID.
            continue;
        };
        found.insert(
            bdf,
            DeviceTranslation {
                bdf,
                unit: unit.clone(),
                translation,
                detail,
            },
        );
    }
    out.devices = found.into_values().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines in the exact format of print_tbl_walk() (drivers/iommu/intel/
    /// debugfs.c): a legacy-mode unit with a translated GPU (TT=00, domain
    /// 1), an identity NIC (TT=10, domain 2) and an ATS device (TT=01); a
    /// scalable-mode unit with PASID 0 pass-through and second-stage
    /// entries and a PASID 1 entry that must not count; a unit off.
    const DMAR: &str = "IOMMU dmar0: Root Table Address: 0x1087ab000
B.D.F\tRoot_entry\t\t\t\tContext_entry\t\t\t\tPASID\tPASID_table_entry
17:00.0\t0x0000000000000000:0x000000010c6f2001\t0x0000000000000102:0x0000000104b08001\t-1    \t0x0000000000000000:0x0000000000000000:0x0000000000000000
18:00.0\t0x0000000000000000:0x000000010c6f3001\t0x0000000000000202:0x0000000000000009\t-1    \t0x0000000000000000:0x0000000000000000:0x0000000000000000
19:00.0\t0x0000000000000000:0x000000010c6f4001\t0x0000000000000302:0x0000000104b08005\t-1    \t0x0000000000000000:0x0000000000000000:0x0000000000000000

IOMMU dmar1: Root Table Address: 0x1087ac000
B.D.F\tRoot_entry\t\t\t\tContext_entry\t\t\t\tPASID\tPASID_table_entry
3a:00.0\t0x000000010c6f5001:0x000000010c6f6001\t0x0000000000000000:0x0000000104c00205\t0     \t0x0000000000000000:0x0000000000000001:0x0000000000000109
3b:00.0\t0x000000010c6f5001:0x000000010c6f6001\t0x0000000000000000:0x0000000104c01205\t0     \t0x0000000000000000:0x0000000000000002:0x0000000104d00089
3b:00.0\t0x000000010c6f5001:0x000000010c6f6001\t0x0000000000000000:0x0000000104c01205\t1     \t0x0000000000000000:0x0000000000000003:0x0000000000000109

DMA Remapping is not enabled on dmar2
";

    #[test]
    fn reads_legacy_and_scalable_entries() {
        let d = parse_intel_dmar(DMAR, |u| if u == "dmar1" { 1 } else { 0 });
        let at = |s: &str| d.device(s.parse().unwrap()).unwrap();
        assert_eq!(at("0000:17:00.0").translation, DmaTranslation::Translated);
        assert!(
            at("0000:17:00.0").detail.contains("domain 1"),
            "{}",
            at("0000:17:00.0").detail
        );
        assert_eq!(at("0000:18:00.0").translation, DmaTranslation::Identity);
        assert_eq!(at("0000:18:00.0").unit, "dmar0");
        assert!(at("0000:19:00.0").detail.contains("ATS"));
        // Scalable mode, segment 1: PASID 0 decides, PASID 1 does not.
        assert_eq!(at("0001:3a:00.0").translation, DmaTranslation::Identity);
        assert_eq!(at("0001:3b:00.0").translation, DmaTranslation::Translated);
        assert!(at("0001:3b:00.0").detail.contains("second-stage"));
        assert_eq!(d.devices.len(), 5);
        assert_eq!(d.units_not_translating, ["dmar2"]);
        assert_eq!(d.unparsed_lines, 0);
    }

    #[test]
    fn garbage_is_counted_not_a_panic() {
        let d = parse_intel_dmar(
            "IOMMU : Root Table Address\n00:1f.7\tjunk\n00:1f.7\t0x1:0x2\tzz:yy\t-1\tq\nff:ff.f\t\t\t\n00:00.0\t0x0:0x0\t0x0:0x3\t0\tnothex\n\u{0}\n",
            |_| 0,
        );
        assert!(d.devices.is_empty());
        assert!(d.unparsed_lines >= 3, "{d:?}");
        for junk in ["", ":", "0:0.0", "IOMMU x", "00:00.0\t0x:0x\t0x:0x\t-1\t0x"] {
            let _ = parse_intel_dmar(junk, |_| 0);
        }
        // A truncated last line (a read cut at its limit) is not a device.
        let cut = &DMAR[..DMAR.find("18:00.0").unwrap() + 30];
        let d = parse_intel_dmar(cut, |_| 0);
        assert_eq!(d.devices.len(), 1);
    }
}

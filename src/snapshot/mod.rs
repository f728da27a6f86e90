//! `p2pdoctor snapshot`: capture exactly what the analysis reads.
//!
//! The scan runs over a recording root; what it read (files, the symlinks
//! it followed, the directories it listed) goes into a gzip tar laid out
//! like the live filesystem, so `--root FILE` analyses it the same way on
//! any machine. A few files are cut down to what is used (the kernel
//! config, /proc/cpuinfo), and the kernel-log lines are added.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

mod redact;

pub use redact::{Redacted, Redaction};

use crate::root::{Entry, KERNEL_LOG_FILE, MANIFEST_FILE, SystemRoot};
use crate::scan::{self, ScanOptions};

pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// What a snapshot holds, for the manifest and `--help`.
pub const CONTENTS: &[&str] = &[
    "sys/bus/pci/devices and sys/devices/pci*: per PCI function the raw config space, resource (BARs), vendor/device/class/revision/subsystem/irq/label (so lspci -A linux-sysfs reads the snapshot too), numa_node, link speed/width attributes, p2pmem/{size,available,published}, and the driver, iommu_group and physfn links",
    "sys/kernel/iommu_groups/*/type: the IOMMU default domain type of each group in use",
    "sys/class/iommu: the IOMMU unit names, and the devices of each unit",
    "sys/kernel/debug/iommu/intel/dmar_translation_struct (root, where debugfs is mounted): the Intel IOMMU driver's root and context entries per device (whether it translates or passes through)",
    "sys/class/nvme/*: controller model, subsysnqn, transport, CMB registers (cmb, cmbloc, cmbsz) and namespace names",
    "sys/class/block: the links from block devices to the devices they sit on",
    "proc/cmdline: the kernel command line, whole (it may hold anything its owner put there)",
    "proc/cpuinfo: only the processor, vendor_id, cpu family, model, model name and physical id lines",
    "proc/sys/kernel/osrelease and proc/sys/kernel/hostname",
    "the kernel config: only lines for PCI P2PDMA, ATS, IOV, AER, DPC, IOMMUs, ZONE_DEVICE, NVMe, VMD and io_uring",
    "p2pdoctor-kernel.log: kernel-log lines mentioning p2p, ACS, DMAR, AMD-Vi, IOMMU, AER, DPC, nvme or pcieport (at most 5000)",
];

/// A finished capture.
pub struct Snapshot {
    pub archive: Vec<u8>,
    pub files: usize,
    pub devices: usize,
    pub source: String,
    pub limitations: Vec<String>,
    /// What `--redact` took out (None without it).
    pub redacted: Option<Vec<Redaction>>,
}

/// The manifest a snapshot carries (`p2pdoctor-manifest.json`), in the
/// order it is written; schema/snapshot.schema.json describes it (bump
/// [`SNAPSHOT_SCHEMA_VERSION`] and the schema together).
#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    schema_version: u32,
    tool: crate::render::ToolBlock,
    created: String,
    hostname: Option<String>,
    kernel_release: &'a Option<String>,
    source: String,
    running_as_root: bool,
    devices: usize,
    files: usize,
    contents: &'static [&'static str],
    limitations: &'a [String],
    /// null: not redacted; a list (maybe empty): what --redact replaced.
    redacted: Option<&'a Vec<redact::Redaction>>,
}

/// Scans `root` while recording and packs what was read; with `redact`,
/// identifying values are replaced first (see [`redact`](redact::redact)).
pub fn capture(root: SystemRoot, redact: bool) -> Result<Snapshot> {
    let root = root.record();
    // Names come from the analysing machine's pci.ids, not the snapshot.
    // Vendor tools' views are kept for whoever reads the snapshot.
    let options = ScanOptions {
        no_names: true,
        vendor_tools: true,
    };
    let facts = scan::scan(&root, &options);
    let mut entries = root.recorded();
    trim(&mut entries, &facts);
    entries.insert(
        KERNEL_LOG_FILE.to_string(),
        Entry::File(
            facts
                .kernel_log
                .iter()
                .flat_map(|l| [l.as_bytes(), b"\n"])
                .flatten()
                .copied()
                .collect(),
        ),
    );
    let redacted = redact.then(|| redact::redact(&mut entries));
    let hostname = match &redacted {
        Some(r) => r.host_name.clone(),
        None => facts.host.hostname.clone(),
    };
    let limitations: Vec<String> = facts
        .limitations
        .iter()
        .map(|l| l.message.clone())
        .collect();
    let manifest = Manifest {
        format: "p2pdoctor-snapshot",
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        tool: crate::render::ToolBlock::THIS,
        created: rfc3339_now(),
        hostname,
        kernel_release: &facts.host.kernel_release,
        source: root.describe(),
        running_as_root: rustix::process::geteuid().is_root(),
        devices: facts.devices.len(),
        files: entries.len(),
        contents: CONTENTS,
        limitations: &limitations,
        redacted: redacted.as_ref().map(|r| &r.kinds),
    };
    entries.insert(
        MANIFEST_FILE.to_string(),
        Entry::File(serde_json::to_vec_pretty(&manifest)?),
    );
    let files = entries.len();
    let archive = pack(&entries).context("cannot build the snapshot archive")?;
    Ok(Snapshot {
        archive,
        files,
        devices: facts.devices.len(),
        source: root.describe(),
        limitations,
        redacted: redacted.map(|r| r.kinds),
    })
}

/// Cuts files down to the lines the analysis uses.
fn trim(entries: &mut BTreeMap<String, Entry>, facts: &scan::Facts) {
    if let Some(source) = &facts.host.kernel_config_source {
        let text = scan::render_kernel_config(&facts.host.kernel_config);
        let bytes = if source.ends_with(".gz") {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = gz.write_all(text.as_bytes());
            gz.finish().unwrap_or_default()
        } else {
            text.into_bytes()
        };
        entries.insert(source.clone(), Entry::File(bytes));
    }
    // modules.alias: only the lines that named a driver for an unbound
    // function here (the whole file is a megabyte of other buses').
    if let Some(source) = &facts.host.module_aliases.source {
        let text = facts.host.module_aliases.render();
        entries.insert(source.clone(), Entry::File(text.into_bytes()));
    }
    // Boot tools (grubby, update-grub): that they exist, not their bytes.
    for (path, entry) in entries.iter_mut() {
        if scan::boot::is_tool(path) {
            *entry = Entry::File(Vec::new());
        }
    }
    if let Some(Entry::File(b)) = entries.get_mut("proc/cpuinfo") {
        let keep = [
            "processor",
            "vendor_id",
            "cpu family",
            "model",
            "model name",
            "physical id",
        ];
        let text: String = String::from_utf8_lossy(b)
            .lines()
            .filter_map(|l| {
                let key = l.split_once(':').map(|(k, _)| k.trim());
                if l.trim().is_empty() || key.is_some_and(|k| keep.contains(&k)) {
                    return Some(format!("{l}\n"));
                }
                // Of the flags only the hypervisor bit is read (a virtual
                // machine, scan::virt); the rest stays out.
                (key == Some("flags") && l.split_whitespace().any(|f| f == "hypervisor"))
                    .then(|| "flags\t\t: hypervisor\n".to_string())
            })
            .collect();
        *b = text.into_bytes();
    }
}

/// Packs entries into a gzip tar: fixed owners, modes and times, so the
/// same machine gives the same bytes apart from the manifest's date.
fn pack(entries: &BTreeMap<String, Entry>) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, entry) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match entry {
            Entry::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, path, target)?;
            }
            Entry::File(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o444);
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, path, &bytes[..])?;
            }
        }
    }
    tar.into_inner()?.finish()
}

/// Now, as `2026-11-21T01:02:03Z`.
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Unix seconds to a UTC date (Howard Hinnant's civil_from_days).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_222_923), "2026-11-21T01:02:03Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}

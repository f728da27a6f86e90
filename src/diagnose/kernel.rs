//! What the running kernel knows: its version, the P2PDMA host-bridge
//! whitelist that applies to it, and the versions that changed the decision.
//!
//! The table itself is data (`rules/kernel.toml`), embedded at build time;
//! this module only reads it and picks the entries for a release.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The embedded `rules/kernel.toml`.
pub const KERNEL_DATA: &str = include_str!("../../rules/kernel.toml");

/// A kernel version, as far as `uname -r` spells it (`7.2.12+deb13-amd64`
/// is 7.2.12; `6.8.0-45-generic` is 6.8.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses the leading `major.minor[.patch]` of a release string.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let mut nums = [0u32; 3];
        let mut count = 0;
        for (i, part) in release.split('.').take(3).enumerate() {
            let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                break;
            }
            nums[i] = digits.parse().ok()?;
            count += 1;
            if digits.len() != part.len() {
                break; // `12+deb13-amd64`: the rest is a local suffix
            }
        }
        (count >= 2).then(|| KernelVersion::new(nums[0], nums[1], nums[2]))
    }

    /// Compares major.minor only: table versions name a release series.
    pub fn series_cmp(&self, other: &KernelVersion) -> Ordering {
        (self.major, self.minor).cmp(&(other.major, other.minor))
    }

    /// True when this kernel is at least the series `since`.
    pub fn at_least(&self, since: &KernelVersion) -> bool {
        self.series_cmp(since) != Ordering::Less
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.patch != 0 {
            write!(f, ".{}", self.patch)?;
        }
        Ok(())
    }
}

/// A device ID in a whitelist entry: one ID or the kernel's PCI_ANY_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DeviceMatch {
    Id(u16),
    Any,
}

impl DeviceMatch {
    pub fn matches(&self, device: u16) -> bool {
        match self {
            DeviceMatch::Id(d) => *d == device,
            DeviceMatch::Any => true,
        }
    }
}

impl fmt::Display for DeviceMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceMatch::Id(d) => write!(f, "{d:04x}"),
            DeviceMatch::Any => f.write_str("*"),
        }
    }
}

/// One entry of the kernel's `pci_p2pdma_whitelist[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhitelistEntry {
    pub vendor: u16,
    pub device: DeviceMatch,
    /// REQ_SAME_HOST_BRIDGE: admits only traffic within one host bridge.
    pub same_host_bridge: bool,
    pub name: String,
    /// The first mainline release; None: only in linux-next ("unreleased").
    pub since: Option<KernelVersion>,
    /// Stable point releases it was backported to.
    pub stable: Vec<KernelVersion>,
    pub until: Option<KernelVersion>,
    pub approximate: bool,
    pub note: Option<String>,
}

impl WhitelistEntry {
    /// `8086:2020`, `1ae0:*`.
    pub fn id(&self) -> String {
        format!("{:04x}:{}", self.vendor, self.device)
    }

    fn applies_to(&self, v: &KernelVersion) -> bool {
        let Some(since) = self.since else {
            return false; // only in linux-next: no release has it
        };
        let arrived = v.at_least(&since) || in_stable(v, &self.stable);
        arrived && self.until.is_none_or(|u| !v.at_least(&u))
    }
}

/// `v` is a stable point release at or after one of `stable` of its own
/// series (7.1.3 listed: 7.1.3 and 7.1.9 have it, 7.1.2 not).
fn in_stable(v: &KernelVersion, stable: &[KernelVersion]) -> bool {
    stable
        .iter()
        .any(|s| s.major == v.major && s.minor == v.minor && v.patch >= s.patch)
}

/// The kernel versions that changed the P2PDMA decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Features {
    pub user_space_p2pdma: KernelVersion,
    pub root_complex_whitelist: KernelVersion,
    pub host_bridge_fallback: KernelVersion,
    pub cpu_supports_p2pdma: KernelVersion,
    pub whitelist_warning: KernelVersion,
    pub acs_list_128: KernelVersion,
    pub whitelist_root_port_first_device: KernelVersion,
    pub config_acs: KernelVersion,
    pub cmb_alignment_skip: KernelVersion,
    pub cmb_alignment_skip_stable: Vec<KernelVersion>,
    pub pool_less_providers: KernelVersion,
    pub newest: KernelVersion,
}

/// The whole table, for every kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelData {
    pub features: Features,
    pub whitelist: Vec<WhitelistEntry>,
}

/// Why `rules/kernel.toml` (or a replacement given on the command line)
/// could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KernelDataError {
    #[error("kernel table is not valid TOML or has a wrong field: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("kernel table: `{0}` is not a kernel version such as 6.2")]
    Version(String),
    #[error("kernel table: device `{0}` must be a number or \"any\"")]
    Device(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    features: RawFeatures,
    whitelist: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeatures {
    user_space_p2pdma: String,
    root_complex_whitelist: String,
    host_bridge_fallback: String,
    cpu_supports_p2pdma: String,
    whitelist_warning: String,
    acs_list_128: String,
    whitelist_root_port_first_device: String,
    config_acs: String,
    cmb_alignment_skip: String,
    #[serde(default)]
    cmb_alignment_skip_stable: Vec<String>,
    pool_less_providers: String,
    newest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    vendor: u16,
    device: toml::Value,
    #[serde(default)]
    same_host_bridge: bool,
    name: String,
    since: String,
    #[serde(default)]
    stable: Vec<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    approximate: bool,
    #[serde(default)]
    note: Option<String>,
}

fn version(s: &str) -> Result<KernelVersion, KernelDataError> {
    KernelVersion::parse(s).ok_or_else(|| KernelDataError::Version(s.to_string()))
}

impl KernelData {
    /// The embedded table.
    pub fn embedded() -> KernelData {
        // The embedded file is checked by a unit test; failing here is a
        // build defect, not bad input.
        KernelData::parse(KERNEL_DATA).expect("rules/kernel.toml is valid")
    }

    pub fn parse(text: &str) -> Result<KernelData, KernelDataError> {
        let raw: RawData = toml::from_str(text)?;
        let f = raw.features;
        let versions = |list: &[String]| -> Result<Vec<KernelVersion>, KernelDataError> {
            list.iter().map(|s| version(s)).collect()
        };
        let features = Features {
            user_space_p2pdma: version(&f.user_space_p2pdma)?,
            root_complex_whitelist: version(&f.root_complex_whitelist)?,
            host_bridge_fallback: version(&f.host_bridge_fallback)?,
            cpu_supports_p2pdma: version(&f.cpu_supports_p2pdma)?,
            whitelist_warning: version(&f.whitelist_warning)?,
            acs_list_128: version(&f.acs_list_128)?,
            whitelist_root_port_first_device: version(&f.whitelist_root_port_first_device)?,
            config_acs: version(&f.config_acs)?,
            cmb_alignment_skip: version(&f.cmb_alignment_skip)?,
            cmb_alignment_skip_stable: versions(&f.cmb_alignment_skip_stable)?,
            pool_less_providers: version(&f.pool_less_providers)?,
            newest: version(&f.newest)?,
        };
        let mut whitelist = Vec::with_capacity(raw.whitelist.len());
        for e in raw.whitelist {
            let device = match &e.device {
                toml::Value::Integer(i) => u16::try_from(*i)
                    .map(DeviceMatch::Id)
                    .map_err(|_| KernelDataError::Device(i.to_string()))?,
                toml::Value::String(s) if s == "any" => DeviceMatch::Any,
                other => return Err(KernelDataError::Device(other.to_string())),
            };
            whitelist.push(WhitelistEntry {
                vendor: e.vendor,
                device,
                same_host_bridge: e.same_host_bridge,
                name: e.name,
                since: match e.since.as_str() {
                    "unreleased" => None,
                    other => Some(version(other)?),
                },
                stable: versions(&e.stable)?,
                until: e.until.as_deref().map(version).transpose()?,
                approximate: e.approximate,
                note: e.note,
            });
        }
        Ok(KernelData {
            features,
            whitelist,
        })
    }

    /// What the kernel with `release` does; an unknown or unparsable
    /// release is taken as the newest kernel in the table.
    pub fn for_release(&self, release: Option<&str>) -> KernelModel {
        let parsed = release.and_then(KernelVersion::parse);
        let version = parsed.unwrap_or(self.features.newest);
        let f = &self.features;
        KernelModel {
            release: release.map(str::to_string),
            version,
            assumed: parsed.is_none(),
            whitelist: self
                .whitelist
                .iter()
                .filter(|e| e.applies_to(&version))
                .cloned()
                .collect(),
            user_space_p2pdma: version.at_least(&f.user_space_p2pdma),
            root_complex_whitelist: version.at_least(&f.root_complex_whitelist),
            host_bridge_fallback: version.at_least(&f.host_bridge_fallback),
            cpu_rule: version.at_least(&f.cpu_supports_p2pdma),
            whitelist_warning: version.at_least(&f.whitelist_warning),
            acs_list_128: version.at_least(&f.acs_list_128),
            root_port_first_device: version.at_least(&f.whitelist_root_port_first_device),
            config_acs: version.at_least(&f.config_acs),
            cmb_alignment_skip: version.at_least(&f.cmb_alignment_skip)
                || in_stable(&version, &f.cmb_alignment_skip_stable),
            pool_less_providers: version.at_least(&f.pool_less_providers),
            basis: vec![match (parsed, release) {
                (Some(v), Some(r)) if v.patch != 0 => format!(
                    "release string {r}: series {}.{}, stable point release {} (used for stable backports)",
                    v.major, v.minor, v.patch
                ),
                (Some(v), Some(r)) => format!(
                    "release string {r}: series {}.{} (no stable number: stable backports cannot be told)",
                    v.major, v.minor
                ),
                _ => format!("release unknown: the newest kernel in the table ({version}) assumed"),
            }],
            features: f.clone(),
        }
    }
}

/// The P2PDMA behaviour of one kernel release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelModel {
    pub release: Option<String>,
    pub version: KernelVersion,
    /// The release was unknown and the newest kernel was assumed.
    pub assumed: bool,
    /// The whitelist entries this kernel has, in the kernel's order.
    pub whitelist: Vec<WhitelistEntry>,
    pub user_space_p2pdma: bool,
    /// 5.2+: root_complex_whitelist() (AMD 0x1450) admits pairs without a
    /// common upstream bridge.
    pub root_complex_whitelist: bool,
    /// 5.4+: ACS redirect falls back to the host-bridge test (map types);
    /// before, it refused the pair outright.
    pub host_bridge_fallback: bool,
    /// cpu_supports_p2pdma() exists (AMD family >= 0x17 admits any host bridge).
    pub cpu_rule: bool,
    /// 5.14+: "Host bridge not in P2PDMA whitelist" is logged.
    pub whitelist_warning: bool,
    /// 5.14+: the ACS list lives in a 128-byte buffer (cut when long).
    pub acs_list_128: bool,
    /// pci_host_bridge_dev() accepts a Root Port that is not devfn 00.0.
    pub root_port_first_device: bool,
    /// pci=config_acs= is understood.
    pub config_acs: bool,
    /// nvme_map_cmb() skips a misaligned CMB silently (6.15, 6.12.23).
    pub cmb_alignment_skip: bool,
    /// 6.19+: providers without a p2pmem pool exist (vfio-pci dma-buf).
    pub pool_less_providers: bool,
    /// What the model was chosen from, for people (release string, live
    /// evidence that overrode a gate).
    pub basis: Vec<String>,
    pub features: Features,
}

impl KernelModel {
    /// The newest kernel of the embedded table (for tests and what-ifs).
    pub fn newest() -> KernelModel {
        KernelData::embedded().for_release(None)
    }

    /// Evidence of the running kernel beats its version number: a
    /// `p2pmem/allocate` file exists only where the kernel has user-space
    /// P2PDMA (p2pmem_alloc_mmap(), 6.2 upstream, earlier in distribution
    /// kernels that backported it).
    pub fn with_live_evidence(mut self, allocate_file: Option<bool>) -> KernelModel {
        if allocate_file == Some(true) && !self.user_space_p2pdma {
            self.user_space_p2pdma = true;
            self.basis.push(format!(
                "p2pmem/allocate exists: this kernel has user-space P2PDMA although {} < {} (a backport)",
                self.version, self.features.user_space_p2pdma
            ));
        } else if allocate_file == Some(false) && self.user_space_p2pdma {
            self.basis.push(
                "a p2pmem/ directory without allocate: this kernel lacks user-space P2PDMA whatever its version says"
                    .to_string(),
            );
            self.user_space_p2pdma = false;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_strings() {
        assert_eq!(
            KernelVersion::parse("7.2.12+deb13-amd64"),
            Some(KernelVersion::new(7, 2, 12))
        );
        assert_eq!(
            KernelVersion::parse("6.8.0-45-generic"),
            Some(KernelVersion::new(6, 8, 0))
        );
        assert_eq!(
            KernelVersion::parse("6.2"),
            Some(KernelVersion::new(6, 2, 0))
        );
        assert_eq!(
            KernelVersion::parse("6.12-rc3"),
            Some(KernelVersion::new(6, 12, 0))
        );
        assert_eq!(KernelVersion::parse("linux"), None);
        assert_eq!(KernelVersion::parse("6"), None);
        assert!(KernelVersion::new(6, 10, 0).at_least(&KernelVersion::new(6, 2, 0)));
        assert!(!KernelVersion::new(6, 1, 99).at_least(&KernelVersion::new(6, 2, 0)));
    }

    #[test]
    fn embedded_table_is_valid_and_ordered_like_the_kernel() {
        let data = KernelData::embedded();
        assert!(data.whitelist.len() >= 30);
        let newest = data.for_release(None);
        assert!(newest.assumed);
        // The recent kernel's table, in order, as drivers/pci/p2pdma.c lists it.
        let ids: Vec<String> = newest.whitelist.iter().map(|e| e.id()).collect();
        assert_eq!(ids[0], "8086:3c00");
        assert!(ids.contains(&"1ae0:*".to_string()));
        assert_eq!(ids.last().map(String::as_str), Some("10de:2f98"));
        // The whole table, linux-next entries included, ends like the
        // kernel's with Zhaoxin (f7c220404700, unreleased).
        assert_eq!(
            data.whitelist.last().map(|e| e.id()).as_deref(),
            Some("1d17:1008")
        );
        assert!(data.whitelist.last().is_some_and(|e| e.since.is_none()));
        assert!(
            !ids.contains(&"1022:1450".to_string()),
            "AMD IDs left with the CPU rule"
        );
        let same: Vec<String> = newest
            .whitelist
            .iter()
            .filter(|e| e.same_host_bridge)
            .map(|e| e.id())
            .collect();
        assert_eq!(same, ["8086:3c00", "8086:3c01", "8086:2f00", "8086:2f01",]);
    }

    #[test]
    fn entries_follow_the_release() {
        let data = KernelData::embedded();
        let has = |rel: &str, id: &str| {
            data.for_release(Some(rel))
                .whitelist
                .iter()
                .any(|e| e.id() == id)
        };
        assert!(has("5.4.0", "8086:3c00"));
        assert!(!has("5.3.0", "8086:3c00"));
        assert!(has("5.4.0", "1022:1450"));
        assert!(has("5.8.0", "1022:1450"));
        // dea286bb71ba (5.9) replaced the AMD IDs with the CPU rule.
        assert!(!has("5.9.0", "1022:1450"));
        assert!(!has("5.9.0", "1022:15d0"));
        assert!(!has("6.2.0", "1022:1450"));
        assert!(!has("7.0.5", "8086:0b25"));
        // 0ba76b19fd4c: mainline 7.2, stable 7.1.3.
        assert!(!has("7.1.2", "8086:0b25"));
        assert!(!has("7.1", "8086:0b25"));
        assert!(has("7.1.3", "8086:0b25"));
        assert!(has("7.1.9+deb13-amd64", "8086:4948"));
        assert!(has("7.2.0", "8086:0b25"));
        // Zhaoxin: linux-next only.
        assert!(!has("7.2.12+deb13-amd64", "1d17:1008"));
        assert!(!has("7.3.1", "1d17:1008"));
        assert!(!has("9.9.9", "1d17:1003"));
        let m = data.for_release(Some("6.1.0-13-amd64"));
        assert!(!m.user_space_p2pdma && m.cpu_rule && !m.config_acs && !m.assumed);
        assert!(data.for_release(Some("6.2.0")).user_space_p2pdma);
        // The gates the issue found wrong, at their commits' releases.
        assert!(!data.for_release(Some("5.8.18")).cpu_rule);
        assert!(data.for_release(Some("5.9.0")).cpu_rule);
        assert!(!data.for_release(Some("5.18.19")).root_port_first_device);
        assert!(data.for_release(Some("5.19.0")).root_port_first_device);
        let m = data.for_release(Some("5.3.18"));
        assert!(m.root_complex_whitelist && !m.host_bridge_fallback);
        let m = data.for_release(Some("5.13.0"));
        assert!(m.host_bridge_fallback && !m.whitelist_warning && !m.acs_list_128);
        assert!(data.for_release(Some("5.14.0")).acs_list_128);
        assert!(!data.for_release(Some("5.1.0")).root_complex_whitelist);
        // CMB alignment skip: 6.15, and 6.12.23 by stable.
        assert!(!data.for_release(Some("6.12.22")).cmb_alignment_skip);
        assert!(data.for_release(Some("6.12.23")).cmb_alignment_skip);
        assert!(!data.for_release(Some("6.14.0")).cmb_alignment_skip);
        assert!(data.for_release(Some("6.15.0")).cmb_alignment_skip);
        // Live evidence beats the version.
        let m = data
            .for_release(Some("5.14.0-284.el9.x86_64"))
            .with_live_evidence(Some(true));
        assert!(m.user_space_p2pdma);
        assert!(m.basis.iter().any(|b| b.contains("backport")));
    }

    #[test]
    fn rejects_a_bad_table() {
        assert!(KernelData::parse("[features]\n").is_err());
        let bad = KERNEL_DATA.replace("device = \"any\"", "device = \"some\"");
        assert!(matches!(
            KernelData::parse(&bad),
            Err(KernelDataError::Device(_))
        ));
    }
}

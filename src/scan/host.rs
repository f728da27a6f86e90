//! Host facts: kernel release and command line, CPU, kernel config, IOMMUs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Limitation, LimitationKind};
use crate::root::SystemRoot;

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostFacts {
    pub hostname: Option<String>,
    pub kernel_release: Option<String>,
    pub cmdline: KernelCmdline,
    pub cpu: CpuFacts,
    /// `CONFIG_PCI_P2PDMA`: Some(true) for `y`, Some(false) when not set,
    /// None when no kernel config could be found.
    pub p2pdma_config: Option<bool>,
    /// The kernel-config lines that matter here (PCI, IOMMU, NVMe, P2P).
    pub kernel_config: BTreeMap<String, String>,
    /// Where the kernel config was read from.
    pub kernel_config_source: Option<String>,
    /// IOMMU units the kernel registered (`/sys/class/iommu`).
    pub iommu_units: Vec<IommuUnit>,
    /// Where each host fact came from; None where the input had none.
    pub sources: HostSources,
    /// `nvidia-smi topo -m`, when the tool ran or a capture holds it
    /// (`check` shows it beside its own classes; absent from topo's JSON
    /// when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvidia_topology: Option<super::nvidia::NvidiaTopology>,
    /// The IOMMU driver's per-device translation state from debugfs
    /// (Intel VT-d, root only), when it could be read.
    #[serde(skip)]
    pub iommu_debugfs: Option<super::iommu_debugfs::IommuDebugfs>,
    /// The hypervisor this kernel runs under, when it says so
    /// (`/sys/hypervisor/type`, `/proc/xen`).
    pub hypervisor: Option<Hypervisor>,
    /// A virtual machine, and what says so (None on bare metal or when
    /// nothing tells).
    pub virtualization: Option<super::virt::Virtualization>,
    /// The boot-loader files found (which tool makes a kernel parameter
    /// persistent). Kept out of topo's JSON; check's fixes carry it.
    #[serde(skip)]
    pub boot: super::boot::BootFacts,
    /// The modules.alias lines that matched an unbound function.
    #[serde(skip)]
    pub module_aliases: super::modalias::ModuleAliases,
}

/// What `/sys/hypervisor` and `/proc/xen` tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hypervisor {
    /// `/sys/hypervisor/type`: `xen`, ...
    pub kind: String,
    /// `/sys/hypervisor/guest_type` (Xen, 4.15+): `PV`, `PVH` or `HVM`.
    pub guest_type: Option<String>,
    /// `/proc/xen/capabilities` says `control_d` (the control domain, dom0).
    pub control_domain: Option<bool>,
    /// `/proc/xen` exists (xenfs mounted or the directory present).
    pub proc_xen: bool,
}

impl Hypervisor {
    /// Why DMA through this kernel's DMA ops cannot carry P2P memory:
    /// Xen PV domains (dom0 included) use the xen-swiotlb dma_map_ops,
    /// which dma_pci_p2pdma_supported() rejects; a PVH dom0 does too.
    /// None when the ops are the normal ones (HVM guests) or unknown.
    pub fn p2p_dma_blocker(&self) -> Option<String> {
        if self.kind != "xen" {
            return None;
        }
        let dom0 = self.control_domain == Some(true);
        match self.guest_type.as_deref() {
            Some("PV") => Some(format!(
                "Xen PV {} uses the xen-swiotlb DMA ops, which dma_pci_p2pdma_supported() rejects",
                if dom0 { "dom0" } else { "domain" }
            )),
            Some("PVH") if dom0 => Some(
                "a Xen PVH dom0 maps DMA through xen-swiotlb, which dma_pci_p2pdma_supported() rejects"
                    .to_string(),
            ),
            Some(_) => None,
            // No guest_type file (old kernel): a control domain is PV.
            None if dom0 => Some(
                "a Xen dom0 (control_d in /proc/xen/capabilities) uses the xen-swiotlb DMA ops, which dma_pci_p2pdma_supported() rejects"
                    .to_string(),
            ),
            None => None,
        }
    }
}

/// The provenance of each host fact (see [`super::Source`]): all `sysfs`
/// for a machine or captured tree; for an evidence file, what the paste
/// carried, `inferred` for what was deduced, None for what is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostSources {
    pub kernel_release: Option<super::Source>,
    pub cmdline: Option<super::Source>,
    pub cpu: Option<super::Source>,
    pub kernel_config: Option<super::Source>,
    pub iommu_units: Option<super::Source>,
    pub kernel_log: Option<super::Source>,
    /// The p2pmem/ directories (whether a device exposes one is known).
    pub p2pmem: Option<super::Source>,
}

/// The kernel command line and the parameters that change P2P behaviour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KernelCmdline {
    pub raw: String,
    /// `iommu=` (e.g. `pt`, `off`, `nopt`).
    pub iommu: Option<String>,
    /// `intel_iommu=` (e.g. `on`, `off`, `sm_on`).
    pub intel_iommu: Option<String>,
    /// `amd_iommu=` (e.g. `off`, `pgtbl_v2`).
    pub amd_iommu: Option<String>,
    /// `iommu.passthrough=` (1 is identity by default).
    pub iommu_passthrough: Option<String>,
    /// Device specifications of the last `pci=disable_acs_redir=`, in order
    /// (the kernel keeps only the last occurrence).
    pub disable_acs_redir: Vec<String>,
    /// Entries of the last `pci=config_acs=`, in order.
    pub config_acs: Vec<String>,
    /// The two ACS parameters as the kernel kept them, with every value
    /// given (diagnose matches them against devices; not in topo's JSON,
    /// which lists the entries above).
    #[serde(skip)]
    pub acs: AcsParams,
}

/// The kernel parameters that change ACS, `pci=disable_acs_redir=` and
/// `pci=config_acs=`, as drivers/pci/pci.c `pci_setup()` keeps them: it
/// splits the `pci=` value on `,` and keeps only the *last*
/// `disable_acs_redir=` / `config_acs=` it sees (a later one replaces an
/// earlier one; they do not add up).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcsParams {
    /// The value of the last `disable_acs_redir=` option.
    pub disable_acs_redir: Option<String>,
    /// The value of the last `config_acs=` option.
    pub config_acs: Option<String>,
    /// Every `disable_acs_redir=` value given, in order (only the last counts).
    pub disable_acs_redir_all: Vec<String>,
    /// Every `config_acs=` value given, in order (only the last counts).
    pub config_acs_all: Vec<String>,
}

impl AcsParams {
    pub fn is_empty(&self) -> bool {
        self.disable_acs_redir.is_none() && self.config_acs.is_none()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuFacts {
    /// `vendor_id` of the first CPU: `GenuineIntel`, `AuthenticAMD`, ...
    pub vendor: Option<String>,
    /// `cpu family`, which the kernel's `cpu_supports_p2pdma()` compares.
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub model_name: Option<String>,
    /// Distinct `physical id` values.
    pub sockets: Option<u32>,
    /// `hypervisor` among the flags: the CPUID bit a hypervisor sets
    /// (X86_FEATURE_HYPERVISOR).
    pub hypervisor_flag: bool,
    pub logical_cpus: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IommuUnit {
    pub name: String,
    /// `intel` (dmar*), `amd` (ivhd*), `arm-smmu`, `virtio`, or `other`.
    pub kind: String,
}

/// Kernel-config prefixes worth keeping.
const CONFIG_KEYS: &[&str] = &[
    "CONFIG_PCI_P2PDMA",
    "CONFIG_PCI_ATS",
    "CONFIG_PCI_IOV",
    "CONFIG_PCIEAER",
    "CONFIG_PCIE_DPC",
    "CONFIG_IOMMU_",
    "CONFIG_INTEL_IOMMU",
    "CONFIG_AMD_IOMMU",
    "CONFIG_ARM_SMMU",
    "CONFIG_ZONE_DEVICE",
    "CONFIG_NVME_",
    "CONFIG_BLK_DEV_NVME",
    "CONFIG_VMD",
    "CONFIG_IO_URING",
];

pub(super) fn read_host(root: &SystemRoot, limitations: &mut Vec<Limitation>) -> HostFacts {
    let text = |p: &str| root.read_string(p).ok().filter(|s| !s.is_empty());
    let kernel_release = text("proc/sys/kernel/osrelease");
    let cmdline = parse_cmdline(&text("proc/cmdline").unwrap_or_default());
    let cpu = root
        .read("proc/cpuinfo")
        .map(|b| parse_cpuinfo(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let (kernel_config, kernel_config_source) = read_kernel_config(root, kernel_release.as_deref());
    let p2pdma_config = kernel_config_source.as_ref().map(|_| {
        kernel_config
            .get("CONFIG_PCI_P2PDMA")
            .is_some_and(|v| v == "y")
    });
    if kernel_config_source.is_none() {
        limitations.push(Limitation {
            kind: LimitationKind::KernelConfigMissing,
            message: match kernel_release.as_deref() {
                Some(r) => format!(
                    "no kernel config found (looked for boot/config-{r} and proc/config.gz): whether CONFIG_PCI_P2PDMA is set is unknown"
                ),
                None => "no kernel config found (the kernel release is unknown, so only proc/config.gz could be looked for): whether CONFIG_PCI_P2PDMA is set is unknown".to_string(),
            },
        });
    }
    let iommu_units = root
        .read_dir("sys/class/iommu")
        .unwrap_or_default()
        .into_iter()
        .map(|name| IommuUnit {
            kind: iommu_kind(&name).to_string(),
            name,
        })
        .collect();
    let sysfs = |known: bool| known.then_some(super::Source::Sysfs);
    let sources = HostSources {
        kernel_release: sysfs(kernel_release.is_some()),
        cmdline: sysfs(root.exists("proc/cmdline")),
        cpu: sysfs(cpu.vendor.is_some() || cpu.logical_cpus > 0),
        kernel_config: sysfs(kernel_config_source.is_some()),
        iommu_units: Some(super::Source::Sysfs),
        kernel_log: Some(super::Source::Sysfs),
        p2pmem: Some(super::Source::Sysfs),
    };
    let hypervisor = text("sys/hypervisor/type").map(|kind| Hypervisor {
        kind: kind.trim().to_string(),
        guest_type: text("sys/hypervisor/guest_type").map(|s| s.trim().to_string()),
        control_domain: text("proc/xen/capabilities").map(|s| s.contains("control_d")),
        proc_xen: root.exists("proc/xen"),
    });
    HostFacts {
        sources,
        hostname: text("proc/sys/kernel/hostname"),
        hypervisor,
        kernel_release,
        cmdline,
        cpu,
        p2pdma_config,
        kernel_config,
        kernel_config_source,
        iommu_units,
        nvidia_topology: None,
        iommu_debugfs: None,
        virtualization: None,
        boot: super::boot::read_boot(root),
        module_aliases: Default::default(),
    }
}

fn iommu_kind(name: &str) -> &'static str {
    if name.starts_with("dmar") {
        "intel"
    } else if name.starts_with("ivhd") {
        "amd"
    } else if name.contains("smmu") {
        "arm-smmu"
    } else if name.contains("virtio") || name.starts_with("viommu") {
        "virtio"
    } else {
        "other"
    }
}

/// Splits the kernel command line the way the kernel's `next_arg()` does:
/// on blanks outside double quotes, dropping the quotes; stops at `--`
/// (what follows goes to init, not to the kernel).
pub fn split_cmdline(raw: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in raw.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    if let Some(end) = words.iter().position(|w| w == "--") {
        words.truncate(end);
    }
    words
}

pub fn parse_cmdline(raw: &str) -> KernelCmdline {
    let mut out = KernelCmdline {
        raw: raw.to_string(),
        ..Default::default()
    };
    for word in split_cmdline(raw) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => (word.as_str(), String::new()),
        };
        // Later occurrences win, as with the kernel's early_param parsing.
        match key {
            "iommu" => out.iommu = Some(value),
            "intel_iommu" => out.intel_iommu = Some(value),
            "amd_iommu" => out.amd_iommu = Some(value),
            "iommu.passthrough" => out.iommu_passthrough = Some(value),
            "pci" => parse_pci_param(&value, &mut out.acs),
            _ => {}
        }
    }
    // The device lists of disable_acs_redir= and config_acs= use `;`.
    let list = |l: &Option<String>| {
        l.iter()
            .flat_map(|l| l.split(';'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    out.disable_acs_redir = list(&out.acs.disable_acs_redir);
    out.config_acs = list(&out.acs.config_acs);
    out
}

/// `pci=` takes comma-separated options (drivers/pci/pci.c pci_setup()).
/// pci_setup() keeps a pointer to the value of the last
/// `disable_acs_redir=` (and `config_acs=`) it sees, so a later occurrence
/// replaces an earlier one rather than adding to it.
fn parse_pci_param(value: &str, out: &mut AcsParams) {
    for opt in value.split(',') {
        if let Some(v) = opt.strip_prefix("disable_acs_redir=") {
            out.disable_acs_redir = Some(v.to_string());
            out.disable_acs_redir_all.push(v.to_string());
        } else if let Some(v) = opt.strip_prefix("config_acs=") {
            out.config_acs = Some(v.to_string());
            out.config_acs_all.push(v.to_string());
        }
    }
}

pub fn parse_cpuinfo(text: &str) -> CpuFacts {
    let mut cpu = CpuFacts::default();
    let mut sockets = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => cpu.logical_cpus += 1,
            "vendor_id" if cpu.vendor.is_none() => cpu.vendor = Some(v.to_string()),
            "cpu family" if cpu.family.is_none() => cpu.family = v.parse().ok(),
            "model" if cpu.model.is_none() => cpu.model = v.parse().ok(),
            "model name" if cpu.model_name.is_none() => cpu.model_name = Some(v.to_string()),
            "physical id" => {
                sockets.insert(v.to_string());
            }
            "flags" if v.split_whitespace().any(|f| f == "hypervisor") => {
                cpu.hypervisor_flag = true
            }
            _ => {}
        }
    }
    if !sockets.is_empty() {
        cpu.sockets = Some(sockets.len() as u32);
    }
    cpu
}

fn read_kernel_config(
    root: &SystemRoot,
    release: Option<&str>,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut sources = Vec::new();
    if let Some(r) = release {
        sources.push(format!("boot/config-{r}"));
    }
    sources.push("proc/config.gz".to_string());
    for path in sources {
        let Ok(bytes) = root.read(&path) else {
            continue;
        };
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read;
            let mut s = String::new();
            if flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .is_err()
            {
                continue;
            }
            s
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        return (parse_kernel_config(&text), Some(path));
    }
    (BTreeMap::new(), None)
}

/// Keeps the lines we care about; `# CONFIG_X is not set` becomes `n`.
pub fn parse_kernel_config(text: &str) -> BTreeMap<String, String> {
    let wanted = |k: &str| CONFIG_KEYS.iter().any(|p| k.starts_with(p));
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# ")
            && let Some(key) = rest.strip_suffix(" is not set")
        {
            if wanted(key) {
                map.insert(key.to_string(), "n".to_string());
            }
        } else if let Some((k, v)) = line.split_once('=')
            && wanted(k)
        {
            map.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    map
}

/// The kernel-config lines kept, as they would appear in a config file
/// (what a snapshot stores instead of the whole file).
pub fn render_kernel_config(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| {
            if v == "n" {
                format!("# {k} is not set\n")
            } else {
                format!("{k}={v}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_pci_options() {
        let c = parse_cmdline(
            "BOOT_IMAGE=/vmlinuz root=/dev/sda1 iommu=pt intel_iommu=on \"quoted arg\" pci=noaer,disable_acs_redir=0000:00:03.0;pci:10b5:9781,config_acs=101xxxx@0000:00:01.0",
        );
        assert_eq!(c.iommu.as_deref(), Some("pt"));
        assert_eq!(c.intel_iommu.as_deref(), Some("on"));
        assert_eq!(c.disable_acs_redir, vec!["0000:00:03.0", "pci:10b5:9781"]);
        assert_eq!(c.config_acs, vec!["101xxxx@0000:00:01.0"]);
        assert_eq!(
            parse_cmdline("quiet -- iommu=pt").iommu,
            None,
            "after -- is init's"
        );
    }

    #[test]
    fn last_disable_acs_redir_wins_as_in_pci_setup() {
        let c = parse_cmdline(
            "pci=disable_acs_redir=0000:00:01.0 pci=disable_acs_redir=0000:00:02.0;0000:00:03.0",
        );
        assert_eq!(c.disable_acs_redir, vec!["0000:00:02.0", "0000:00:03.0"]);
    }

    #[test]
    fn acs_params_keep_the_last_value_and_every_value() {
        let p = parse_cmdline(
            "root=/dev/sda pci=noaer,disable_acs_redir=0000:00:01.0 quiet pci=disable_acs_redir=0000:00:03.0;pci:10b5:8747,config_acs=101xxxx@0000:00:02.0 -- pci=disable_acs_redir=ignored",
        )
        .acs;
        assert_eq!(
            p.disable_acs_redir.as_deref(),
            Some("0000:00:03.0;pci:10b5:8747")
        );
        assert_eq!(
            p.disable_acs_redir_all,
            ["0000:00:01.0", "0000:00:03.0;pci:10b5:8747"]
        );
        assert_eq!(p.config_acs.as_deref(), Some("101xxxx@0000:00:02.0"));
        assert!(parse_cmdline("quiet").acs.is_empty());
    }

    #[test]
    fn cpuinfo_amd() {
        let c = parse_cpuinfo(
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7763\nphysical id\t: 0\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nphysical id\t: 1\n",
        );
        assert_eq!(c.vendor.as_deref(), Some("AuthenticAMD"));
        assert_eq!(c.family, Some(25));
        assert_eq!(c.sockets, Some(2));
        assert_eq!(c.logical_cpus, 2);
    }

    #[test]
    fn kernel_config_keeps_relevant_lines() {
        let m = parse_kernel_config(
            "CONFIG_PCI_P2PDMA=y\n# CONFIG_INTEL_IOMMU is not set\nCONFIG_USB=y\nCONFIG_IOMMU_DEFAULT_DMA_LAZY=y\n",
        );
        assert_eq!(m.get("CONFIG_PCI_P2PDMA").map(String::as_str), Some("y"));
        assert_eq!(m.get("CONFIG_INTEL_IOMMU").map(String::as_str), Some("n"));
        assert!(!m.contains_key("CONFIG_USB"));
        assert_eq!(parse_kernel_config(&render_kernel_config(&m)), m);
    }
}

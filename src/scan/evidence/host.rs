//! Host facts from the other commands of a paste: `uname -r` / `uname -a`,
//! `cat /proc/cmdline`, a GRUB `GRUB_CMDLINE_LINUX*=` line, `lscpu`,
//! `/proc/cpuinfo`, `numactl --hardware`, and dmesg lines about ACS,
//! P2PDMA, DMAR, AMD-Vi and AER. Each is recognised by its command (the
//! prompt above it) or by its own shape, so output pasted without the
//! command still counts.

use crate::scan::{CpuFacts, Source};

/// What the paste says about the host.
#[derive(Debug, Default)]
pub struct HostText {
    pub kernel_release: Option<String>,
    pub hostname: Option<String>,
    pub cmdline: Option<String>,
    /// `GRUB_CMDLINE_LINUX` and `GRUB_CMDLINE_LINUX_DEFAULT`, joined.
    pub grub_cmdline: Vec<String>,
    pub cpu: CpuFacts,
    pub cpu_source: Option<Source>,
    /// `available: 2 nodes (0-1)`.
    pub numa_nodes: Option<u32>,
    pub kernel_log: Vec<String>,
    /// The command the lines belong to (the last prompt), and whether its
    /// one-line output was taken already.
    cmd: Option<String>,
    taken: bool,
    cpus: std::collections::BTreeSet<String>,
    /// Lines no parser took, bounded: an `nvidia-smi topo -m` matrix is
    /// looked for in them at the end (scan::nvidia parses it).
    pub leftover: String,
    /// `nvidia-smi --query-gpu=index,pci.bus_id` lines.
    pub gpu_lines: String,
    /// lscpu's `Hypervisor vendor` and `Virtualization type`.
    pub hypervisor_vendor: Option<String>,
    pub virtualization_type: Option<String>,
    /// lscpu output was seen (then no `Hypervisor vendor` means none).
    pub lscpu_seen: bool,
}

/// Leftover text kept at most (a matrix of 64 devices is ~40 KiB).
const LEFTOVER_LIMIT: usize = 1 << 20;

impl HostText {
    /// A prompt: what follows is this command's output.
    pub fn start(&mut self, cmd: &str) {
        self.cmd = Some(cmd.to_string());
        self.taken = false;
    }

    /// Feeds a line outside lspci output; true if it was used.
    pub fn feed(&mut self, line: &str) -> bool {
        let t = line.trim();
        if t.is_empty() {
            return false;
        }
        let cmd = self.cmd.clone().unwrap_or_default();
        if !self.taken && cmd.contains("uname") && cmd.contains("-r") && is_release(t) {
            self.kernel_release = Some(t.to_string());
            self.taken = true;
            return true;
        }
        // `uname -a`: `Linux gpu01 5.15.0-91-generic #101-Ubuntu SMP ...`
        if let Some(rest) = t.strip_prefix("Linux ") {
            let mut w = rest.split_whitespace();
            if let (Some(host), Some(rel)) = (w.next(), w.next())
                && is_release(rel)
            {
                self.hostname = Some(host.to_string());
                self.kernel_release = Some(rel.to_string());
                return true;
            }
        }
        if (!self.taken && cmd.contains("/proc/cmdline"))
            || t.starts_with("BOOT_IMAGE=")
            || (t.starts_with("initrd=") && t.contains(" root="))
        {
            self.cmdline = Some(t.to_string());
            self.taken = true;
            return true;
        }
        if let Some(rest) = t.strip_prefix("GRUB_CMDLINE_LINUX") {
            let value = rest
                .trim_start_matches("_DEFAULT")
                .trim_start_matches('=')
                .trim_matches(['"', '\'']);
            self.grub_cmdline.push(value.to_string());
            return true;
        }
        if self.cpu_line(t) {
            return true;
        }
        if let Some(rest) = t.strip_prefix("available: ")
            && let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok())
            && rest.contains("node")
        {
            self.numa_nodes = Some(n);
            return true;
        }
        if let Some(msg) = dmesg_message(t)
            && crate::scan::kmsg::is_relevant(msg)
        {
            self.kernel_log.push(msg.to_string());
            return true;
        }
        if cmd.contains("query-gpu") && t.contains(',') {
            self.gpu_lines.push_str(t);
            self.gpu_lines.push('\n');
            return true;
        }
        if self.leftover.len() + line.len() < LEFTOVER_LIMIT {
            self.leftover.push_str(line);
            self.leftover.push('\n');
        }
        false
    }

    /// `lscpu` (`Vendor ID:  AuthenticAMD`) and `/proc/cpuinfo`
    /// (`vendor_id\t: AuthenticAMD`) lines.
    fn cpu_line(&mut self, t: &str) -> bool {
        let Some((k, v)) = t.split_once(':') else {
            return false;
        };
        let (k, v) = (k.trim(), v.trim());
        // lscpu spells its keys capitalised; it also says when the kernel
        // runs under a hypervisor (CPUID, /proc/xen), which cpuinfo may not.
        if matches!(
            k,
            "Vendor ID" | "CPU family" | "Model name" | "Architecture"
        ) {
            self.lscpu_seen = true;
        }
        let c = &mut self.cpu;
        match k {
            "Vendor ID" | "vendor_id" => {
                if c.vendor.is_none() && !v.is_empty() {
                    c.vendor = Some(v.to_string());
                }
            }
            "CPU family" | "cpu family" => {
                if c.family.is_none() {
                    c.family = v.parse().ok();
                }
            }
            "Model" | "model" => {
                if c.model.is_none() {
                    c.model = v.parse().ok();
                }
            }
            "Model name" | "model name" => {
                if c.model_name.is_none() {
                    c.model_name = Some(v.to_string());
                }
            }
            "Socket(s)" => c.sockets = v.parse().ok(),
            "CPU(s)" => {
                if let Ok(n) = v.parse() {
                    c.logical_cpus = n;
                }
            }
            "processor" => c.logical_cpus += 1,
            // The CPUID bit a hypervisor sets (/proc/cpuinfo, lscpu).
            "flags" | "Flags" => {
                if v.split_whitespace().any(|f| f == "hypervisor") {
                    c.hypervisor_flag = true;
                }
            }
            // lscpu: `Hypervisor vendor: Xen`, `Virtualization type: para`.
            "Hypervisor vendor" => {
                c.hypervisor_flag = true;
                self.hypervisor_vendor = Some(v.to_string());
            }
            "Virtualization type" => self.virtualization_type = Some(v.to_string()),
            "physical id" => {
                self.cpus.insert(v.to_string());
                c.sockets = Some(self.cpus.len() as u32);
            }
            _ => return false,
        }
        self.cpu_source = Some(Source::Paste);
        true
    }
}

/// `5.15.0-91-generic`, `6.8.0`, `4.18.0-513.el8.x86_64`.
fn is_release(s: &str) -> bool {
    let mut parts = s.split('.');
    let major = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let minor = parts
        .next()
        .is_some_and(|p| p.bytes().next().is_some_and(|b| b.is_ascii_digit()));
    major && minor && !s.contains(char::is_whitespace) && s.len() < 100
}

/// The message of a kernel-log line: `[    1.234567] pci 0000:00:01.0: ...`,
/// `Mar  3 10:00:00 host kernel: ...`, `<6>[ 1.2] ...`; None for other text.
fn dmesg_message(t: &str) -> Option<&str> {
    let t = t
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .map(|(_, r)| r)
        .unwrap_or(t);
    if let Some(rest) = t.strip_prefix('[')
        && let Some((stamp, msg)) = rest.split_once(']')
        && stamp
            .trim()
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Some(msg.trim());
    }
    t.split_once(" kernel: ").map(|(_, m)| m.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paste_sections() {
        let mut h = HostText::default();
        h.start("uname -r");
        assert!(h.feed("6.8.0-45-generic"));
        h.start("cat /proc/cmdline");
        assert!(h.feed("BOOT_IMAGE=/vmlinuz root=/dev/sda1 iommu=pt"));
        h.start("lscpu");
        assert!(h.feed("Vendor ID:                AuthenticAMD"));
        assert!(h.feed("CPU family:               25"));
        assert!(h.feed("[    0.812345] pci 0000:00:01.1: ACS redirect is set"));
        assert!(h.feed("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet amd_iommu=on\""));
        assert!(!h.feed("some prose about the machine"));
        assert_eq!(h.kernel_release.as_deref(), Some("6.8.0-45-generic"));
        assert_eq!(
            h.cmdline.as_deref(),
            Some("BOOT_IMAGE=/vmlinuz root=/dev/sda1 iommu=pt")
        );
        assert_eq!(h.cpu.vendor.as_deref(), Some("AuthenticAMD"));
        assert_eq!(h.cpu.family, Some(25));
        assert_eq!(h.kernel_log.len(), 1);
        assert_eq!(h.grub_cmdline, vec!["quiet amd_iommu=on"]);
    }
}

//! How this machine boots its kernel: which tool writes the kernel command
//! line, from the files under the root. Only presence (and the contents of
//! `/etc/kernel/cmdline`) is read; which tool a fix should name is decided
//! later (`diagnose::fix`).
//!
//! Where each tool keeps the command line:
//! - GRUB: `GRUB_CMDLINE_LINUX_DEFAULT` in /etc/default/grub, turned into
//!   grub.cfg by `update-grub` (Debian, Ubuntu) or `grub2-mkconfig`
//!   (Fedora, RHEL, SUSE); <https://www.gnu.org/software/grub/manual/grub/html_node/Simple-configuration.html>
//! - grubby (Fedora, RHEL): `grubby --update-kernel=ALL --args=...` edits
//!   every Boot Loader Specification entry; <https://docs.fedoraproject.org/en-US/fedora/latest/system-administrators-guide/kernel-module-driver-configuration/Working_with_the_GRUB_2_Boot_Loader/>
//! - kernelstub (Pop!_OS): `kernelstub -a`, its configuration in
//!   /etc/kernelstub/configuration; <https://support.system76.com/articles/kernelstub/>
//! - kernel-install (systemd): /etc/kernel/cmdline, read when an entry is
//!   installed; <https://www.freedesktop.org/software/systemd/man/latest/kernel-install.html>
//! - systemd-boot entries: the `options` line of each
//!   `loader/entries/*.conf` on the ESP or /boot; <https://uapi-group.org/specifications/specs/boot_loader_specification/>

use serde::Serialize;

use crate::root::SystemRoot;

/// The boot-loader files found under the root (root-relative paths).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BootFacts {
    /// `etc/default/grub` exists.
    pub grub_default: bool,
    /// `update-grub` is installed (Debian's wrapper of grub-mkconfig).
    pub update_grub: bool,
    /// `grub2-mkconfig` is installed (Fedora, RHEL, SUSE).
    pub grub2_mkconfig: bool,
    /// The grub.cfg that exists: `boot/grub/grub.cfg` or `boot/grub2/grub.cfg`.
    pub grub_cfg: Option<String>,
    /// `grubby` is installed.
    pub grubby: bool,
    /// `etc/kernelstub/configuration` exists (Pop!_OS).
    pub kernelstub: bool,
    /// The contents of `etc/kernel/cmdline`, when it exists (kernel-install).
    pub kernel_cmdline: Option<String>,
    /// The Boot Loader Specification entries directory that exists
    /// (`boot/loader/entries`, `efi/loader/entries`, `boot/efi/loader/entries`).
    pub loader_entries: Option<String>,
}

/// Where each tool is looked for.
pub const UPDATE_GRUB: &[&str] = &["usr/sbin/update-grub"];
pub const GRUB2_MKCONFIG: &[&str] = &["usr/sbin/grub2-mkconfig", "usr/bin/grub2-mkconfig"];
pub const GRUBBY: &[&str] = &["usr/sbin/grubby", "usr/bin/grubby", "sbin/grubby"];
const GRUB_CFG: &[&str] = &["boot/grub/grub.cfg", "boot/grub2/grub.cfg"];
const LOADER_ENTRIES: &[&str] = &[
    "boot/loader/entries",
    "efi/loader/entries",
    "boot/efi/loader/entries",
];

/// The programs among the paths above: a snapshot keeps that they exist,
/// not their bytes.
pub fn is_tool(path: &str) -> bool {
    [UPDATE_GRUB, GRUB2_MKCONFIG, GRUBBY]
        .iter()
        .any(|l| l.contains(&path))
}

pub(super) fn read_boot(root: &SystemRoot) -> BootFacts {
    let any = |paths: &[&str]| paths.iter().any(|p| root.exists(p));
    let first = |paths: &[&str]| paths.iter().find(|p| root.exists(p)).map(|p| p.to_string());
    BootFacts {
        grub_default: root.exists("etc/default/grub"),
        update_grub: any(UPDATE_GRUB),
        grub2_mkconfig: any(GRUB2_MKCONFIG),
        grub_cfg: first(GRUB_CFG),
        grubby: any(GRUBBY),
        kernelstub: root.exists("etc/kernelstub/configuration"),
        kernel_cmdline: root
            .read_string("etc/kernel/cmdline")
            .ok()
            .map(|s| s.trim().to_string()),
        loader_entries: first(LOADER_ENTRIES),
    }
}

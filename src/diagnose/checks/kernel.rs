//! Kernel family: can this kernel do user-space P2P at all?

use super::{Ctx, RuleRef};
use crate::diagnose::{Finding, KernelVersion, Severity, Status};

pub const NO_P2PDMA: RuleRef = RuleRef {
    id: "P2P101",
    name: "kernel-no-p2pdma",
};
pub const TOO_OLD: RuleRef = RuleRef {
    id: "P2P102",
    name: "kernel-too-old",
};

pub(crate) fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let h = &ctx.tree.host;
    let release = h.kernel_release.as_deref().unwrap_or("(unknown)");
    let has_p2pmem = ctx.tree.nodes.iter().any(|n| n.facts.p2pmem.is_some());
    let source = h
        .kernel_config_source
        .as_deref()
        .unwrap_or("the kernel config");
    match h.p2pdma_config {
        Some(false) if has_p2pmem => out.push(
            NO_P2PDMA
                .finding(
                    Severity::Error,
                    Status::Inconclusive,
                    [],
                    format!(
                        "{source} says CONFIG_PCI_P2PDMA is not set, yet devices expose p2pmem/: the config file does not describe the running kernel {release}"
                    ),
                )
                .fix("Check that /boot/config-<release> belongs to the running kernel (uname -r), or read /proc/config.gz (CONFIG_IKCONFIG_PROC)"),
        ),
        Some(false) => out.push(
            NO_P2PDMA
                .finding(
                    Severity::Error,
                    Status::Predicted,
                    [],
                    format!(
                        "kernel {release} is built without CONFIG_PCI_P2PDMA ({source} says \"is not set\"): no device can offer P2P memory"
                    ),
                )
                .fix("Boot a kernel built with CONFIG_PCI_P2PDMA=y (and CONFIG_ZONE_DEVICE), e.g. Debian's 7.x kernels from trixie-backports or sid"),
        ),
        None if !has_p2pmem => out.push(
            NO_P2PDMA
                .finding(
                    Severity::Error,
                    Status::Inconclusive,
                    [],
                    if h.sources.p2pmem.is_none() {
                        "the kernel config and p2pmem/ are not in the input (lspci output): whether CONFIG_PCI_P2PDMA is set is unknown".to_string()
                    } else {
                        format!(
                            "no kernel config found for {release} (boot/config-<release>, proc/config.gz) and no device exposes p2pmem/: whether CONFIG_PCI_P2PDMA is set is unknown"
                        )
                    },
                )
                .fix("grep CONFIG_PCI_P2PDMA /boot/config-$(uname -r), or zcat /proc/config.gz | grep P2PDMA"),
        ),
        _ => {}
    }

    let min = ctx.kernel.features.user_space_p2pdma;
    match h.kernel_release.as_deref().and_then(KernelVersion::parse) {
        Some(v) if !v.at_least(&min) => out.push(
            TOO_OLD
                .finding(
                    Severity::Error,
                    Status::Predicted,
                    [],
                    format!(
                        "kernel {release} is older than {min}: user-space programs cannot do O_DIRECT I/O into p2pmem (FOLL_PCI_P2PDMA arrived in {min})"
                    ),
                )
                .fix(format!("Run a kernel of release {min} or newer with CONFIG_PCI_P2PDMA=y")),
        ),
        Some(_) => {}
        None => out.push(
            TOO_OLD
                .finding(
                    Severity::Error,
                    Status::Inconclusive,
                    [],
                    format!(
                        "the kernel release ({release}) could not be read or parsed: whether it is {min} or newer is unknown; the P2PDMA rules of kernel {} were assumed",
                        ctx.kernel.version
                    ),
                )
                .fix(if h.sources.p2pmem.is_none() {
                    "Add the output of `uname -r` to the paste"
                } else {
                    "Make proc/sys/kernel/osrelease readable (or part of the snapshot)"
                }),
        ),
    }
    out
}

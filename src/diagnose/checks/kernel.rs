//! Kernel family: can this kernel do user-space P2P at all?

use super::{Ctx, Family, Rule, RuleRef};
use crate::diagnose::fix::Fix;
use crate::diagnose::{Finding, KernelVersion, Severity, Status};

pub const NO_P2PDMA: RuleRef = RuleRef {
    id: "P2P101",
    name: "kernel-no-p2pdma",
};
pub const TOO_OLD: RuleRef = RuleRef {
    id: "P2P102",
    name: "kernel-too-old",
};
pub const DMA_OPS: RuleRef = RuleRef {
    id: "P2P103",
    name: "dma-ops-no-p2p",
};

pub(super) const RULES: &[Rule] = &[
    Rule::check(NO_P2PDMA, Family::Kernel, no_p2pdma),
    Rule::check(TOO_OLD, Family::Kernel, too_old),
    Rule::check(DMA_OPS, Family::Kernel, dma_ops),
];

/// P2P103: dma_pci_p2pdma_supported() (kernel/dma/mapping.c) is false for
/// DMA ops other than dma-direct and the default IOMMU ops; the NVMe
/// driver then leaves the queue without P2PDMA support and every mapping
/// of P2P memory fails, whatever calc_map_type_and_dist() would say.
fn dma_ops(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(why) = &ctx.view.client_dma_unsupported else {
        return out;
    };
    let clients: Vec<_> = ctx.pairs.iter().map(|p| p.client()).collect();
    let h = ctx.tree.host.hypervisor.as_ref();
    out.push(
        DMA_OPS
            .finding(
                Severity::Error,
                Status::Predicted,
                clients,
                format!(
                    "{why}: no device can DMA to or from P2P memory here, so every P2P mapping fails (O_DIRECT into p2pmem: EREMOTEIO from get_user_pages, before any map type is computed and without any P2PDMA line in the kernel log)"
                ),
            )
            .fix("Run the P2P workload on bare metal or in an HVM guest with the devices passed through; a Xen PV dom0 cannot do P2P DMA")
            .evidence(h.map(|h| {
                format!(
                    "/sys/hypervisor/type = {}; guest_type = {}; /proc/xen/capabilities control_d = {}; /proc/xen present = {}",
                    h.kind,
                    h.guest_type.as_deref().unwrap_or("(none)"),
                    h.control_domain
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "(unreadable)".into()),
                    h.proc_xen
                )
            })),
    );
    out
}

/// The running kernel's release, for messages.
fn release<'a>(ctx: &Ctx<'a>) -> &'a str {
    ctx.tree
        .host
        .kernel_release
        .as_deref()
        .unwrap_or("(unknown)")
}

/// P2P101: CONFIG_PCI_P2PDMA off, or unknown with no p2pmem/ to tell.
fn no_p2pdma(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let h = &ctx.tree.host;
    let release = release(ctx);
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
                .fix("Check that /boot/config-$(uname -r) belongs to the running kernel, or read /proc/config.gz (CONFIG_IKCONFIG_PROC)"),
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
                            "no kernel config found for {release} (neither its boot/config file nor proc/config.gz) and no device exposes p2pmem/: whether CONFIG_PCI_P2PDMA is set is unknown"
                        )
                    },
                )
                .fix(
                    Fix::new("Look the option up in the running kernel's config, in /boot or in /proc/config.gz (either command)")
                        .command("grep CONFIG_PCI_P2PDMA /boot/config-$(uname -r)")
                        .command("zcat /proc/config.gz | grep CONFIG_PCI_P2PDMA"),
                ),
        ),
        _ => {}
    }
    out
}

/// P2P102: a kernel older than user-space P2PDMA, or one whose release
/// could not be read.
fn too_old(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let h = &ctx.tree.host;
    let release = release(ctx);
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

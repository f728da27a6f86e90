//! Provider family: is there P2P memory, and why not.

use super::{Ctx, Family, Pass, Rule, RuleRef};
use crate::diagnose::{Finding, Severity, Status};
use crate::scan::{Cmb, NvmeController};
use crate::units::human_bytes;

pub const NO_PROVIDER: RuleRef = RuleRef {
    id: "P2P201",
    name: "no-provider",
};
pub const NOT_PUBLISHED: RuleRef = RuleRef {
    id: "P2P202",
    name: "cmb-not-published",
};
pub const MISALIGNED: RuleRef = RuleRef {
    id: "P2P203",
    name: "cmb-misaligned",
};
pub const TOO_SMALL: RuleRef = RuleRef {
    id: "P2P204",
    name: "cmb-too-small",
};
pub const EXHAUSTED: RuleRef = RuleRef {
    id: "P2P205",
    name: "pool-exhausted",
};

pub(super) const RULES: &[Rule] = &[
    Rule::check(NO_PROVIDER, Family::Provider, no_provider),
    Rule::pass(NOT_PUBLISHED, Family::Provider, &CMBS),
    Rule::pass(MISALIGNED, Family::Provider, &CMBS),
    Rule::pass(TOO_SMALL, Family::Provider, &CMBS),
    Rule::check(EXHAUSTED, Family::Provider, exhausted),
];

/// Registered P2P memory left unpublished, and each NVMe CMB that never
/// became P2P memory, with the one reason that stopped it.
static CMBS: Pass = Pass {
    run: unpublished_and_cmbs,
    emits: &[NOT_PUBLISHED, MISALIGNED, TOO_SMALL],
};

/// memremap_compat_align(): SUBSECTION_SIZE, 2 MiB on x86-64 and arm64.
const CMB_ALIGN: u64 = 2 << 20;

fn cmb_flags(c: &Cmb) -> String {
    let f = |on: bool, n: &str| format!("{n}{}", if on { '+' } else { '-' });
    [
        f(c.submission_queues, "SQS"),
        f(c.completion_queues, "CQS"),
        f(c.lists, "LISTS"),
        f(c.read_data, "RDS"),
        f(c.write_data, "WDS"),
    ]
    .join(" ")
}

/// P2P201: no function exposes P2P memory.
fn no_provider(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;
    let kernel_without = tree.host.p2pdma_config == Some(false);
    let any_p2pmem = tree.nodes.iter().any(|n| n.facts.p2pmem.is_some());
    // 6.19+: a provider need not have a pool (vfio-pci's dma-buf export);
    // those are providers to the kernel, only not for p2pmem/allocate.
    let pool_less: Vec<_> = if ctx.kernel.pool_less_providers {
        tree.ids()
            .filter(|&i| crate::diagnose::pool_less_provider(tree, i))
            .map(|i| tree.node(i).bdf())
            .collect()
    } else {
        Vec::new()
    };
    if !any_p2pmem && tree.host.sources.p2pmem.is_none() {
        // An evidence file (lspci text): p2pmem/ is not in it at all.
        out.push(
            NO_PROVIDER
                .finding(
                    Severity::Error,
                    Status::Inconclusive,
                    [],
                    format!(
                        "whether any of the {} functions exposes p2pmem/ is not in the input (lspci does not show it); every DMA-capable endpoint is taken as a hypothetical provider",
                        tree.nodes.len()
                    ),
                )
                .fix("Add `ls -d /sys/bus/pci/devices/*/p2pmem` (and `cat /sys/bus/pci/devices/*/p2pmem/size`) to the paste, or run p2pdoctor on the machine"),
        );
    } else if !any_p2pmem && !kernel_without && !pool_less.is_empty() {
        out.push(
            NO_PROVIDER
                .finding(
                    Severity::Info,
                    Status::Predicted,
                    pool_less.iter().copied(),
                    format!(
                        "no PCI function exposes p2pmem/, but {} bound to vfio-pci {} P2P {} without a pool (pcim_p2pdma_init(), kernel >= {}): their BARs can be exported as dma-buf to P2P importers (RDMA, iommufd); only the p2pmem/allocate path (O_DIRECT into p2pmem) has no memory",
                        super::bdf_list(pool_less.iter().copied()),
                        if pool_less.len() == 1 { "is a" } else { "are" },
                        if pool_less.len() == 1 { "provider" } else { "providers" },
                        ctx.kernel.features.pool_less_providers
                    ),
                )
                .fix("For O_DIRECT through p2pmem use a device whose driver registers a pool (an NVMe CMB with WDS and RDS); dma-buf importers can use the vfio-pci devices as they are"),
        );
    } else if !any_p2pmem && !kernel_without {
        let cmbs: Vec<&NvmeController> = tree
            .nvme
            .iter()
            .filter(|c| c.cmb.as_ref().is_some_and(|m| m.size > 0))
            .collect();
        let mut msg = format!(
            "no PCI function exposes p2pmem/ ({} functions scanned): there is no P2P memory to copy through",
            tree.nodes.len()
        );
        if !cmbs.is_empty() {
            msg.push_str(&format!(
                "; {} NVMe controller(s) have a CMB that was not registered ({}), see the CMB findings",
                cmbs.len(),
                cmbs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        out.push(
            NO_PROVIDER
                .finding(Severity::Error, Status::Predicted, [], msg)
                .fix("Use an NVMe controller whose CMB supports read and write data (CMBSZ.WDS and RDS), bound to the nvme driver, or another device whose driver registers P2P memory (QEMU: -device nvme,cmb_size_mb=16)"),
        );
    }
    out
}

/// P2P205: a provider whose pool has less than a page left.
fn exhausted(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, n) in ctx.tree.nodes_with_ids() {
        let Some(m) = &n.facts.p2pmem else { continue };
        if let (Some(size), Some(avail)) = (m.size, m.available)
            && size > 0
            && avail < 4096
        {
            out.push(
                EXHAUSTED
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [n.bdf()],
                        format!(
                            "{} has {} of {} P2P memory available: the next mmap of p2pmem/allocate fails with ENOMEM",
                            ctx.label(id),
                            human_bytes(avail),
                            human_bytes(size)
                        ),
                    )
                    .fix(format!(
                        "Find the holders: lsof /sys/bus/pci/devices/{}/p2pmem/allocate; stop them or unload the in-kernel user (nvmet)",
                        n.bdf()
                    )),
            );
        }
    }
    out
}

/// P2P202, P2P203, P2P204 (see [`CMBS`]).
fn unpublished_and_cmbs(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;
    let kernel_without = tree.host.p2pdma_config == Some(false);
    let controller_of = |bdf| {
        tree.nvme
            .iter()
            .find(|c: &&NvmeController| c.pci == Some(bdf))
    };
    for (id, n) in tree.nodes_with_ids() {
        let Some(m) = &n.facts.p2pmem else { continue };
        let ctrl = controller_of(n.bdf());
        if m.published == Some(false) {
            let size = m.size.map(human_bytes).unwrap_or_else(|| "?".into());
            let (why, fix) = match ctrl.and_then(|c| c.cmb.as_ref().map(|m| (c, m))) {
                Some((c, cmb)) if !cmb.p2p_capable() => (
                    format!(
                        "{} of {} registered a {size} CMB but did not publish it: CMBSZ=0x{:08x} has {}; nvme_map_cmb() publishes only a CMB with both WDS and RDS",
                        c.name, ctx.label(id), cmb.cmbsz, cmb_flags(cmb)
                    ),
                    "Use a controller (or controller setting) whose CMB supports both read and write data; a program can still map it through p2pmem/allocate by naming the device".to_string(),
                ),
                _ => (
                    format!(
                        "{} registered {size} of P2P memory but did not publish it: pci_p2pmem_find() skips it, only its own driver uses it",
                        ctx.label(id)
                    ),
                    format!(
                        "Check the driver of {} ({}) for an option to publish its P2P memory",
                        n.bdf(),
                        n.facts.driver.as_deref().unwrap_or("no driver")
                    ),
                ),
            };
            out.push(
                NOT_PUBLISHED
                    .finding(Severity::Warning, Status::Predicted, [n.bdf()], why)
                    .fix(fix),
            );
        }
    }

    // CMBs that never became P2P memory.
    if kernel_without {
        return out;
    }
    // nvme_map_cmb() by release: since 56cf7ef0d490 (6.15, and 6.12.23 by
    // stable) a CMB whose size or BAR start is not aligned to
    // memremap_compat_align() is skipped without a word (the offset is not
    // checked); before, pci_p2pdma_add_resource() failed on it in
    // memremap_pages() and the driver logged "failed to register the CMB".
    let silent = ctx.kernel.cmb_alignment_skip;
    let fate = |name: &str, checked: bool| -> (String, Vec<String>) {
        if silent && checked {
            (
                format!(
                    "nvme_map_cmb() skips it silently (kernel {} has the alignment check of 56cf7ef0d490: no log line)",
                    ctx.kernel.version
                ),
                Vec::new(),
            )
        } else {
            let why = if checked {
                format!(
                    "kernel {} predates the silent skip (6.15, 6.12.23): pci_p2pdma_add_resource() fails on it",
                    ctx.kernel.version
                )
            } else {
                "nvme_map_cmb() does not check the offset, so pci_p2pdma_add_resource() fails on it"
                    .to_string()
            };
            (
                format!("{why} and the driver logs \"failed to register the CMB\""),
                vec![format!("kernel: nvme {name}: failed to register the CMB")],
            )
        }
    };
    for c in &tree.nvme {
        let (Some(bdf), Some(cmb)) = (c.pci, c.cmb.as_ref()) else {
            continue;
        };
        if cmb.size == 0 {
            continue;
        }
        let Some(id) = tree.find(bdf) else { continue };
        let n = tree.node(id);
        if n.facts.p2pmem.is_some() {
            continue;
        }
        let label = format!("{} ({})", c.name, bdf);
        let Some(bar) = n.facts.bars.iter().find(|b| b.index == cmb.bar) else {
            out.push(NOT_PUBLISHED.finding(
                Severity::Warning,
                Status::Inconclusive,
                [bdf],
                format!(
                    "{label} has a {} CMB in BAR {} but that BAR is not in the device's resource file: why it was not registered is unknown",
                    human_bytes(cmb.size),
                    cmb.bar
                ),
            ));
            continue;
        };
        if cmb.offset > bar.size {
            out.push(
                TOO_SMALL
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [bdf],
                        format!(
                            "{label} places its CMB at offset {:#x} of BAR {}, beyond the BAR's {}: nvme_map_cmb() ignores it",
                            cmb.offset,
                            cmb.bar,
                            human_bytes(bar.size)
                        ),
                    )
                    .fix("The controller reports an inconsistent CMBLOC; update its firmware or use another provider"),
            );
            continue;
        }
        let size = cmb.size.min(bar.size - cmb.offset);
        if size < CMB_ALIGN {
            let (what, lines) = fate(&c.name, true);
            out.push(
                TOO_SMALL
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [bdf],
                        format!(
                            "{label} has a {} CMB, less than the 2 MiB memory hotplug maps: {what}",
                            human_bytes(size)
                        ),
                    )
                    .fix("Configure a CMB of 2 MiB or more on the controller, or use another provider")
                    .evidence(lines),
            );
            continue;
        }
        let mut problems = Vec::new();
        let mut checked = false;
        if size % CMB_ALIGN != 0 {
            checked = true;
            problems.push(format!(
                "its size {} is not a multiple of 2 MiB",
                human_bytes(size)
            ));
        }
        if bar.start % CMB_ALIGN != 0 {
            checked = true;
            problems.push(format!(
                "BAR {} starts at {:#x}, not 2 MiB aligned",
                bar.index, bar.start
            ));
        } else if (bar.start + cmb.offset) % CMB_ALIGN != 0 {
            problems.push(format!(
                "it starts at offset {:#x} of BAR {}, not 2 MiB aligned",
                cmb.offset, bar.index
            ));
        }
        if !problems.is_empty() {
            let (what, lines) = fate(&c.name, checked);
            out.push(
                MISALIGNED
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [bdf],
                        format!(
                            "{label} has a {} CMB that cannot become P2P memory: {} (memremap_compat_align(), 2 MiB); {what}",
                            human_bytes(size),
                            problems.join(" and ")
                        ),
                    )
                    .fix("Make the firmware place the BAR 2 MiB aligned (a BIOS \"Above 4G decoding\" setting, or pci=realloc), or configure a CMB size that is a multiple of 2 MiB")
                    .evidence(lines),
            );
            continue;
        }
        let wds_rds = if cmb.p2p_capable() {
            String::new()
        } else {
            format!(" (and it lacks WDS/RDS: {})", cmb_flags(cmb))
        };
        out.push(
            NOT_PUBLISHED
                .finding(
                    Severity::Warning,
                    Status::Predicted,
                    [bdf],
                    format!(
                        "{label} has a {} CMB that was not registered as P2P memory{wds_rds}: look for \"failed to register the CMB\" in the kernel log",
                        human_bytes(size)
                    ),
                )
                .fix("Check the kernel log of the nvme driver's probe; a kernel with CONFIG_PCI_P2PDMA=y and CONFIG_ZONE_DEVICE=y registers it"),
        );
    }
    out
}

//! BAR family: how much of a GPU's or accelerator's memory peers can map.
//!
//! A peer reaches a device's memory through one of its BARs: GPUDirect
//! RDMA and GPU-to-GPU P2P map the GPU's large prefetchable BAR (BAR1 on
//! NVIDIA). A BAR left at 256 MiB while the device's Resizable BAR
//! capability (PCIe r6.0 §7.8.6) offers gigabytes caps what can be mapped
//! at a time; drivers then fall back or fail as the window runs out.

use super::{Ctx, Family, Rule, RuleRef};
use crate::diagnose::fix::Fix;
use crate::diagnose::{Finding, Severity, Status};
use crate::units::human_bytes;

pub const SMALL_BAR: RuleRef = RuleRef {
    id: "P2P804",
    name: "bar-below-resizable-size",
};

/// Below this a BAR noticeably limits peer mappings (consumer GPUs' BAR1
/// is 256 MiB without Resizable BAR); larger ones are only worth an info.
const SMALL: u64 = 1 << 30;

/// GPUs, other display controllers, processing accelerators and
/// co-processors: the devices whose memory peers map.
fn maps_device_memory(class: Option<u32>) -> bool {
    class.is_some_and(|c| matches!(c >> 16, 0x03 | 0x12) || c >> 8 == 0x0b40)
}

/// In the device family's registry (device.rs).
pub(super) const RULE: Rule = Rule::check(SMALL_BAR, Family::Device, small_bar);

/// P2P804: a device whose memory peers map, with a BAR below what its
/// Resizable BAR capability offers.
fn small_bar(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for n in &ctx.tree.nodes {
        if !maps_device_memory(n.facts.class) {
            continue;
        }
        for rebar in &n.caps.resizable_bar {
            let Some(&max) = rebar.supported_sizes.last() else {
                continue;
            };
            let current = rebar.current_size;
            if current == 0 || current >= max {
                continue;
            }
            let bar = rebar.bar_index;
            // resourceN_resize takes n for 2^n MB.
            let code = (max >> 20).max(1).ilog2();
            let severity = if current < SMALL {
                Severity::Warning
            } else {
                Severity::Info
            };
            out.push(
                SMALL_BAR
                    .finding(
                        severity,
                        Status::Predicted,
                        [n.bdf()],
                        format!(
                            "{} ({}) has BAR{bar} at {} while its Resizable BAR capability offers up to {}: peers (GPUDirect RDMA, P2P between GPUs and NICs) can map at most {} of its memory at a time",
                            n.bdf(),
                            n.name(),
                            human_bytes(current),
                            human_bytes(max),
                            human_bytes(current),
                        ),
                    )
                    .fix({
                        let bdf = n.bdf();
                        let mut commands = Vec::new();
                        if n.facts.driver.is_some() {
                            commands.push(format!(
                                "echo {bdf} | sudo tee /sys/bus/pci/devices/{bdf}/driver/unbind"
                            ));
                        }
                        commands.push(format!(
                            "echo {code} | sudo tee /sys/bus/pci/devices/{bdf}/resource{bar}_resize"
                        ));
                        commands.push(format!("echo {bdf} | sudo tee /sys/bus/pci/drivers_probe"));
                        Fix::new(format!(
                            "Turn on \"Above 4G Decoding\" and \"Resizable BAR\" in the firmware setup, then reboot: the firmware or the driver sizes the BAR at boot. On Linux 6.1 and later it can be resized with no driver bound, with the commands below ({code} means 2^{code} MiB, {}). If the bridge windows above it are too small, add the kernel parameter pci=realloc",
                            human_bytes(1 << (20 + u64::from(code)))
                        ))
                        .commands(commands)
                    }),
            );
        }
    }
    out
}

//! TEMPORARY stand-in for the lead's `scan::nesting` (landing on main):
//! same signature, a simple implementation so evidence files without an
//! `lspci -t` tree can be nested meanwhile. Replaced at the merge.

use super::{DeviceFacts, Limitation, LimitationKind};
use crate::pci::Bdf;

/// For every device whose `host_bridge` is empty: `parent` is the bridge
/// whose [secondary, subordinate] holds its bus (innermost), `host_bridge`
/// the root bus above the outermost such bridge.
pub(crate) fn nest_by_bus_ranges(devices: &mut [DeviceFacts], limitations: &mut Vec<Limitation>) {
    // (bdf, secondary, subordinate) of every type-1 header.
    let bridges: Vec<(Bdf, u8, u8)> = devices
        .iter()
        .filter(|d| d.config.get(0x0e).is_some_and(|h| h & 0x7f == 1))
        .filter_map(|d| {
            let (s, e) = (*d.config.get(0x19)?, *d.config.get(0x1a)?);
            (s > d.bdf.bus && e >= s).then_some((d.bdf, s, e))
        })
        .collect();
    let parent_of = |b: Bdf| -> (Option<Bdf>, bool) {
        let holding = bridges
            .iter()
            .filter(|(p, s, e)| p.domain == b.domain && *p != b && (*s..=*e).contains(&b.bus));
        match holding.clone().find(|(_, s, _)| *s == b.bus) {
            Some((p, _, _)) => (Some(*p), false),
            None => (holding.max_by_key(|(_, s, _)| *s).map(|(p, _, _)| *p), true),
        }
    };
    let mut gaps = Vec::new();
    let placed: Vec<Option<(Option<Bdf>, String)>> = devices
        .iter()
        .map(|d| {
            if !d.host_bridge.is_empty() {
                return None;
            }
            let (parent, gap) = parent_of(d.bdf);
            if gap && parent.is_some() {
                gaps.push(d.bdf);
            }
            // Up to the root bus, bounded against hostile ranges.
            let mut top = d.bdf;
            let mut cur = parent;
            let mut steps = 0;
            while let Some(p) = cur {
                top = p;
                steps += 1;
                if steps > bridges.len() {
                    break;
                }
                cur = parent_of(p).0;
            }
            Some((parent, format!("pci{:04x}:{:02x}", top.domain, top.bus)))
        })
        .collect();
    for (d, p) in devices.iter_mut().zip(placed) {
        if let Some((parent, hb)) = p {
            d.parent = parent;
            d.host_bridge = hb;
        }
    }
    for b in gaps {
        limitations.push(Limitation {
            kind: LimitationKind::DeviceUnreadable,
            message: format!(
                "{b}: no bridge in the input has its bus as secondary bus: a bridge between it and the one above is missing"
            ),
        });
    }
}

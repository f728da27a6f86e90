//! Where a function sits when its sysfs path does not say.
//!
//! A live sysfs, a snapshot and a `cp -a` copy spell each function's
//! upstream chain in the canonical path of its `sys/bus/pci/devices/<bdf>`
//! link. Evidence made otherwise does not: a copy that followed the links
//! (`cp -rL`, `tar -h`, some collection tools) turns each link into a plain
//! directory, and `lspci -vvv` text lists functions without nesting. Then
//! the nesting comes from the bus numbers, as the kernel itself assigned
//! them: a function on bus N sits below the bridge whose secondary bus is
//! N (PCIe r6.0 §7.5.1.3.3), and every bridge's [secondary, subordinate]
//! range holds all the buses below it.

use std::collections::HashMap;

use super::{DeviceFacts, Limitation, LimitationKind};
use crate::pci::{self, Bdf, BridgeBuses};

/// Fills `parent` and `host_bridge` of every function whose `host_bridge`
/// is empty (its place is not known yet) from the bridges' bus numbers in
/// their config bytes. Functions already placed are left alone, but their
/// bridges' ranges are used too.
///
/// - A function on bus N hangs below the bridge whose secondary bus is N.
/// - When no bridge has N as its secondary bus but some bridge's range
///   holds N, the bridge of bus N is missing from the input: the function
///   hangs below the innermost bridge whose range holds N (every bridge
///   that is present stays on its path) and a note names the gap.
/// - A function on a bus no range holds is on a root bus: its host bridge
///   is `pciDDDD:BB` of that bus.
///
/// A bridge whose numbers cannot be right (secondary not above its own
/// bus, subordinate below secondary) is not used to place anything, and
/// said once; since every parent has a lower bus number than its child,
/// what is placed cannot form a loop.
pub(crate) fn nest_by_bus_ranges(devices: &mut [DeviceFacts], limitations: &mut Vec<Limitation>) {
    if devices.iter().all(|d| !d.host_bridge.is_empty()) {
        return;
    }
    // Bridges with usable numbers, by (domain, secondary bus).
    let mut bridges: Vec<(Bdf, BridgeBuses)> = Vec::new();
    let mut bad = Vec::new();
    for d in devices.iter() {
        let Some(b) = pci::bridge_buses(&d.config) else {
            continue;
        };
        if b.secondary > d.bdf.bus && b.subordinate >= b.secondary {
            bridges.push((d.bdf, b));
        } else if b.secondary != 0 || b.subordinate != 0 {
            // 0/0 is a bridge the firmware left unconfigured: nothing below.
            bad.push(format!(
                "{} (on bus {:02x}, secondary {:02x}, subordinate {:02x})",
                d.bdf, d.bdf.bus, b.secondary, b.subordinate
            ));
        }
    }
    bridges.sort_by_key(|(bdf, _)| *bdf);
    let mut by_secondary: HashMap<(u32, u8), Bdf> = HashMap::new();
    let mut clash = Vec::new();
    for (bdf, b) in &bridges {
        if let Some(first) = by_secondary.insert((bdf.domain, b.secondary), *bdf) {
            // Two bridges claim one bus: keep the lower address.
            by_secondary.insert((bdf.domain, b.secondary), first);
            clash.push(format!(
                "{first} and {bdf} both claim bus {:02x}",
                b.secondary
            ));
        }
    }
    // The innermost bridge whose range holds `bus` (the narrowest range),
    // other than the function itself.
    let enclosing = |me: Bdf| -> Option<Bdf> {
        bridges
            .iter()
            .filter(|(bdf, b)| {
                *bdf != me
                    && bdf.domain == me.domain
                    && bdf.bus < me.bus
                    && (b.secondary..=b.subordinate).contains(&me.bus)
            })
            .min_by_key(|(_, b)| (b.subordinate - b.secondary, std::cmp::Reverse(b.secondary)))
            .map(|(bdf, _)| *bdf)
    };

    // Parents first; host bridges from the top of each chain after.
    let mut gaps: Vec<String> = Vec::new();
    let mut placed = 0usize;
    let unplaced: Vec<usize> = (0..devices.len())
        .filter(|&i| devices[i].host_bridge.is_empty())
        .collect();
    for &i in &unplaced {
        let me = devices[i].bdf;
        let direct = by_secondary
            .get(&(me.domain, me.bus))
            .copied()
            .filter(|p| *p != me);
        devices[i].parent = match direct {
            Some(p) => Some(p),
            None => {
                let p = enclosing(me);
                if let Some(p) = p {
                    gaps.push(format!(
                        "{me}: no bridge in the input has bus {:02x} as its secondary bus; placed below {p}, the nearest bridge whose range holds it",
                        me.bus
                    ));
                }
                p
            }
        };
        placed += 1;
    }
    let index: HashMap<Bdf, usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.bdf, i))
        .collect();
    for &i in &unplaced {
        // Up the chain to a function with no parent (or an already placed
        // one, whose host bridge is known). Bus numbers fall on every step
        // of a chain built above, so this ends; the bound is for chains a
        // placed function's parent could add.
        let mut cur = i;
        let mut steps = 0;
        let hb = loop {
            if !devices[cur].host_bridge.is_empty() {
                break devices[cur].host_bridge.clone();
            }
            match devices[cur].parent.and_then(|p| index.get(&p).copied()) {
                Some(p) if steps < devices.len() => {
                    cur = p;
                    steps += 1;
                }
                _ => {
                    let top = devices[cur].bdf;
                    break format!("pci{:04x}:{:02x}", top.domain, top.bus);
                }
            }
        };
        devices[i].host_bridge = hb;
    }
    if placed > 0 {
        limitations.push(Limitation {
            kind: LimitationKind::NestingInferred,
            message: format!(
                "{placed} functions were placed in the tree from the bridges' bus numbers (secondary/subordinate), not from sysfs paths: the input holds no sysfs nesting (a copy that followed links, such as cp -rL or tar -h, or lspci text)"
            ),
        });
    }
    for text in bad {
        limitations.push(Limitation {
            kind: LimitationKind::NestingInferred,
            message: format!(
                "bridge {text}: these bus numbers cannot be right, so nothing was placed below it"
            ),
        });
    }
    for text in clash.into_iter().chain(gaps) {
        limitations.push(Limitation {
            kind: LimitationKind::BridgeMissing,
            message: text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bdf {
        s.parse().unwrap()
    }

    /// A function with a type 0 or type 1 header (64 bytes, as a non-root
    /// reader sees it).
    fn func(bdf: &str, buses: Option<(u8, u8)>) -> DeviceFacts {
        let mut config = vec![0u8; 64];
        if let Some((sec, sub)) = buses {
            config[0x0e] = 1;
            config[0x18] = b(bdf).bus;
            config[0x19] = sec;
            config[0x1a] = sub;
        }
        DeviceFacts {
            bdf: b(bdf),
            config,
            ..Default::default()
        }
    }

    fn place(mut devices: Vec<DeviceFacts>) -> (Vec<DeviceFacts>, Vec<Limitation>) {
        let mut lim = Vec::new();
        nest_by_bus_ranges(&mut devices, &mut lim);
        (devices, lim)
    }

    fn parent_of(devices: &[DeviceFacts], bdf: &str) -> (Option<Bdf>, String) {
        let d = devices.iter().find(|d| d.bdf == b(bdf)).unwrap();
        (d.parent, d.host_bridge.clone())
    }

    #[test]
    fn nests_a_switch_below_a_root_port() {
        let (d, lim) = place(vec![
            func("0000:00:00.0", None),
            func("0000:00:01.0", Some((1, 4))),
            func("0000:01:00.0", Some((2, 4))),
            func("0000:02:00.0", Some((3, 3))),
            func("0000:02:01.0", Some((4, 4))),
            func("0000:03:00.0", None),
            func("0000:04:00.0", None),
            func("0000:80:00.0", None),
        ]);
        assert_eq!(parent_of(&d, "0000:00:01.0"), (None, "pci0000:00".into()));
        assert_eq!(
            parent_of(&d, "0000:02:01.0"),
            (Some(b("0000:01:00.0")), "pci0000:00".into())
        );
        assert_eq!(
            parent_of(&d, "0000:04:00.0"),
            (Some(b("0000:02:01.0")), "pci0000:00".into())
        );
        // Bus 80 is in no range: a second root bus.
        assert_eq!(parent_of(&d, "0000:80:00.0"), (None, "pci0000:80".into()));
        assert_eq!(lim.len(), 1, "{lim:?}");
        assert_eq!(lim[0].kind, LimitationKind::NestingInferred);
    }

    #[test]
    fn a_missing_bridge_keeps_the_bridges_that_are_there() {
        // 5d:02.0 → 5e:00.0 (switch upstream) → [5f:03.0 missing] → 60:00.0
        let (d, lim) = place(vec![
            func("0000:5d:02.0", Some((0x5e, 0x61))),
            func("0000:5e:00.0", Some((0x5f, 0x61))),
            func("0000:5f:02.0", Some((0x61, 0x61))),
            func("0000:60:00.0", None),
            func("0000:61:00.0", None),
        ]);
        assert_eq!(
            parent_of(&d, "0000:60:00.0"),
            (Some(b("0000:5e:00.0")), "pci0000:5d".into())
        );
        assert_eq!(parent_of(&d, "0000:61:00.0").0, Some(b("0000:5f:02.0")));
        assert!(
            lim.iter().any(|l| l.kind == LimitationKind::BridgeMissing
                && l.message.contains("0000:60:00.0")
                && l.message.contains("bus 60")),
            "{lim:?}"
        );
    }

    #[test]
    fn placed_functions_and_nonsense_numbers_are_left_alone() {
        let mut placed = func("0000:00:01.0", Some((1, 1)));
        placed.host_bridge = "pci0000:00".into();
        let (d, lim) = place(vec![
            placed,
            func("0000:01:00.0", None),
            // Secondary below its own bus: would make a loop.
            func("0000:05:00.0", Some((2, 9))),
            func("0000:06:00.0", None),
        ]);
        assert_eq!(
            parent_of(&d, "0000:01:00.0"),
            (Some(b("0000:00:01.0")), "pci0000:00".into())
        );
        assert_eq!(parent_of(&d, "0000:06:00.0"), (None, "pci0000:06".into()));
        assert!(lim.iter().any(|l| l.message.contains("cannot be right")));
    }

    #[test]
    fn nothing_to_do_leaves_no_note() {
        let mut f = func("0000:00:01.0", None);
        f.host_bridge = "pci0000:00".into();
        let (_, lim) = place(vec![f]);
        assert!(lim.is_empty());
    }
}

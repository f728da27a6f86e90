//! The kernel mirror (`calc_map_type_and_dist()` of drivers/pci/p2pdma.c)
//! against a table of hand-built machines, one case per branch of the
//! decision and of the host-bridge whitelist. No sysfs: the view is built
//! by hand.

mod common;

use p2pdoctor::diagnose::p2pdma::{
    AcsBasis, AcsState, CpuView, FirstDevice, FunctionView, HostBridgeResult, HostBridgeView,
    MapType, P2pView, PairVerdict, Unknown, intel_pch_acs_quirk,
};
use p2pdoctor::diagnose::{KernelData, KernelModel};
use p2pdoctor::pci::{AcsFlags, Bdf};

const RR_CR: AcsState = AcsState::Control {
    ctrl: AcsFlags(0x0c),
};
const STD: AcsState = AcsState::Control {
    ctrl: AcsFlags(0x1d), // SV RR CR UF: what Linux sets with an IOMMU
};
const NONE: AcsState = AcsState::Absent;

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

/// A machine under construction: functions by address, host bridges by id.
struct Machine {
    view: P2pView,
}

impl Machine {
    fn new() -> Machine {
        Machine {
            view: P2pView {
                functions: Vec::new(),
                host_bridges: Vec::new(),
                cpu: CpuView {
                    vendor: Some("GenuineIntel".into()),
                    family: Some(6),
                    known: true,
                },
                client_dma_unsupported: None,
                kernel_without_p2pdma: None,
            },
        }
    }

    /// A host bridge whose root bus starts with `first` (vendor, device,
    /// root port?); returns its index.
    fn host_bridge(&mut self, id: &str, first: Option<(&str, u16, u16, Option<bool>)>) -> usize {
        self.view.host_bridges.push(HostBridgeView {
            id: id.into(),
            first_device: first.map(|(bdf, vendor, device, root_port)| FirstDevice {
                bdf: b(bdf),
                vendor,
                device,
                root_port,
                id_known: true,
                driver: None,
            }),
        });
        self.view.host_bridges.len() - 1
    }

    fn add(&mut self, bdf: &str, up: Option<&str>, hb: usize, acs: AcsState, driver: Option<&str>) {
        let upstream = up.map(|u| self.view.find(b(u)).expect("add parents first"));
        self.view.functions.push(FunctionView {
            bdf: b(bdf),
            upstream,
            host_bridge: hb,
            acs,
            driver: driver.map(str::to_string),
            placed: true,
        });
    }

    fn cpu(&mut self, vendor: &str, family: u32) {
        self.view.cpu = CpuView {
            vendor: Some(vendor.into()),
            family: Some(family),
            known: true,
        };
    }

    fn decide(&self, kernel: &KernelModel, provider: &str, client: &str) -> PairVerdict {
        let p = self.view.find(b(provider)).unwrap();
        let c = self.view.find(b(client)).unwrap();
        self.view.calc_map_type_and_dist(kernel, p, c)
    }
}

fn newest() -> KernelModel {
    KernelData::embedded().for_release(Some("7.3.0"))
}

fn release(r: &str) -> KernelModel {
    KernelData::embedded().for_release(Some(r))
}

/// q35: host bridge 8086:29c0 (not whitelisted) at 00.0, a root port at
/// 00:03.0 with `rp_acs`, a two-function NVMe below it.
fn q35_multifunction(rp_acs: AcsState, host: (u16, u16)) -> Machine {
    let mut m = Machine::new();
    let hb = m.host_bridge(
        "pci0000:00",
        Some(("0000:00:00.0", host.0, host.1, Some(false))),
    );
    m.add("0000:00:00.0", None, hb, NONE, None);
    m.add("0000:00:03.0", None, hb, rp_acs, Some("pcieport"));
    m.add("0000:01:00.0", Some("0000:00:03.0"), hb, NONE, Some("nvme"));
    m.add("0000:01:00.1", Some("0000:00:03.0"), hb, NONE, Some("nvme"));
    m
}

/// A root port, a switch (UP 01:00.0, DPs 02:00.0 and 02:01.0), an NVMe
/// below each DP; a second root port with one NVMe.
fn switch_machine(acs: &[(&str, AcsState)], host: (u16, u16)) -> Machine {
    let mut m = Machine::new();
    let hb = m.host_bridge(
        "pci0000:00",
        Some(("0000:00:00.0", host.0, host.1, Some(false))),
    );
    let acs_of = |bdf: &str| {
        acs.iter()
            .find(|(x, _)| *x == bdf)
            .map(|(_, a)| *a)
            .unwrap_or(NONE)
    };
    m.add("0000:00:00.0", None, hb, NONE, None);
    m.add(
        "0000:00:03.0",
        None,
        hb,
        acs_of("0000:00:03.0"),
        Some("pcieport"),
    );
    m.add(
        "0000:01:00.0",
        Some("0000:00:03.0"),
        hb,
        acs_of("0000:01:00.0"),
        Some("pcieport"),
    );
    m.add(
        "0000:02:00.0",
        Some("0000:01:00.0"),
        hb,
        acs_of("0000:02:00.0"),
        Some("pcieport"),
    );
    m.add(
        "0000:02:01.0",
        Some("0000:01:00.0"),
        hb,
        acs_of("0000:02:01.0"),
        Some("pcieport"),
    );
    m.add(
        "0000:03:00.0",
        Some("0000:02:00.0"),
        hb,
        acs_of("0000:03:00.0"),
        Some("nvme"),
    );
    m.add(
        "0000:04:00.0",
        Some("0000:02:01.0"),
        hb,
        acs_of("0000:04:00.0"),
        Some("nvme"),
    );
    m.add(
        "0000:00:04.0",
        None,
        hb,
        acs_of("0000:00:04.0"),
        Some("pcieport"),
    );
    m.add(
        "0000:05:00.0",
        Some("0000:00:04.0"),
        hb,
        acs_of("0000:05:00.0"),
        Some("nvme"),
    );
    m
}

/// Two host bridges, each with a root port and an NVMe.
fn two_host_bridges(first: (u16, u16), second: (u16, u16)) -> Machine {
    let mut m = Machine::new();
    let h0 = m.host_bridge(
        "pci0000:00",
        Some(("0000:00:00.0", first.0, first.1, Some(false))),
    );
    let h1 = m.host_bridge(
        "pci0000:80",
        Some(("0000:80:00.0", second.0, second.1, Some(false))),
    );
    m.add("0000:00:00.0", None, h0, NONE, None);
    m.add("0000:00:01.0", None, h0, NONE, Some("pcieport"));
    m.add("0000:01:00.0", Some("0000:00:01.0"), h0, NONE, Some("nvme"));
    m.add("0000:80:00.0", None, h1, NONE, None);
    m.add("0000:80:01.0", None, h1, NONE, Some("pcieport"));
    m.add("0000:81:00.0", Some("0000:80:01.0"), h1, NONE, Some("nvme"));
    m
}

const Q35: (u16, u16) = (0x8086, 0x29c0);
const SKX: (u16, u16) = (0x8086, 0x2020);
const HSX: (u16, u16) = (0x8086, 0x2f00); // REQ_SAME_HOST_BRIDGE

#[test]
fn same_function_is_distance_zero() {
    let m = switch_machine(&[], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:03:00.0");
    assert_eq!((v.map_type, v.distance), (MapType::BusAddr, 0));
    assert_eq!(v.common_upstream, Some(b("0000:03:00.0")));
    assert!(v.kernel_messages.is_empty() && v.certain());
}

#[test]
fn the_provider_itself_is_checked_for_redirect() {
    // A multi-function endpoint with its own ACS capability: the walk
    // starts at the provider, so even the same function "redirects".
    let m = switch_machine(&[("0000:03:00.0", RR_CR)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:03:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert_eq!(v.acs_redirect, vec![b("0000:03:00.0")]);
}

#[test]
fn two_functions_of_one_device_are_distance_two() {
    let m = q35_multifunction(NONE, Q35);
    let v = m.decide(&newest(), "0000:01:00.0", "0000:01:00.1");
    assert_eq!((v.map_type, v.distance), (MapType::BusAddr, 2));
    assert_eq!(v.common_upstream, Some(b("0000:00:03.0")));
    assert!(v.whitelist.is_none() && !v.cpu_rule);
}

#[test]
fn lab_scenario_3_exact_kernel_lines() {
    // the lab's case (docs/ARCHITECTURE.md) 3: intel-iommu made Linux set SV RR CR UF on the root port.
    let m = q35_multifunction(STD, Q35);
    let v = m.decide(&newest(), "0000:01:00.0", "0000:01:00.1");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert_eq!(v.distance, 2);
    assert_eq!(v.acs_redirect, vec![b("0000:00:03.0")]);
    assert_eq!(
        v.kernel_messages,
        vec![
            "nvme 0000:01:00.1: ACS redirect is set between the client and provider (0000:01:00.0)",
            "nvme 0000:01:00.1: to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir=0000:00:03.0",
            "pci 0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:29c0",
            "nvme 0000:01:00.1: cannot be used for peer-to-peer DMA as the client and provider (0000:01:00.0) do not share an upstream bridge or whitelisted host bridge",
        ]
    );
    let w = v.whitelist.clone().unwrap();
    assert!(!w.admitted && w.same_host_bridge);
    assert_eq!(w.checks[0].result, HostBridgeResult::NotListed);
    assert_eq!(v.host_bridges, vec!["pci0000:00"]);
}

#[test]
fn redirect_with_a_whitelisted_host_bridge_detours() {
    let m = q35_multifunction(STD, SKX);
    let v = m.decide(&newest(), "0000:01:00.0", "0000:01:00.1");
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    assert_eq!(v.kernel_messages.len(), 2, "only the two ACS lines");
    let w = v.whitelist.clone().unwrap();
    assert!(w.admitted);
    assert_eq!(w.checks[0].entry.as_ref().unwrap().id(), "8086:2020");
}

#[test]
fn redirect_on_amd_zen_uses_the_cpu_rule() {
    let mut m = q35_multifunction(STD, Q35);
    m.cpu("AuthenticAMD", 0x17);
    let v = m.decide(&newest(), "0000:01:00.0", "0000:01:00.1");
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    assert!(v.cpu_rule);
    assert!(v.whitelist.is_none(), "the whitelist is not consulted");
    assert_eq!(v.kernel_messages.len(), 2, "no whitelist warning either");
    // Family 0x16 is not Zen; Hygon is another vendor to the kernel.
    for (vendor, family) in [("AuthenticAMD", 0x16), ("HygonGenuine", 0x18)] {
        m.cpu(vendor, family);
        let v = m.decide(&newest(), "0000:01:00.0", "0000:01:00.1");
        assert_eq!(v.map_type, MapType::NotSupported, "{vendor} {family:#x}");
        assert!(!v.cpu_rule);
    }
}

#[test]
fn below_one_switch_is_distance_four() {
    let m = switch_machine(&[], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!((v.map_type, v.distance), (MapType::BusAddr, 4));
    assert_eq!(v.common_upstream, Some(b("0000:01:00.0")));
}

#[test]
fn acs_list_order_is_provider_walk_then_client_walk() {
    // RR on both downstream ports and EC on the common upstream port: the
    // provider's walk lists its port and the common port, then the client's.
    let ec = AcsState::Control {
        ctrl: AcsFlags(0x20),
    };
    let m = switch_machine(
        &[
            ("0000:02:00.0", RR_CR),
            ("0000:02:01.0", RR_CR),
            ("0000:01:00.0", ec),
            ("0000:00:03.0", RR_CR), // above the common port: never looked at
        ],
        SKX,
    );
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(
        v.acs_redirect,
        vec![b("0000:02:00.0"), b("0000:01:00.0"), b("0000:02:01.0")]
    );
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    assert_eq!(v.distance, 4);
    assert!(
        v.kernel_messages[1]
            .ends_with("pci=disable_acs_redir=0000:02:00.0;0000:01:00.0;0000:02:01.0")
    );
    // The other direction walks from the other side.
    let v = m.decide(&newest(), "0000:04:00.0", "0000:03:00.0");
    assert_eq!(
        v.acs_redirect,
        vec![b("0000:02:01.0"), b("0000:01:00.0"), b("0000:02:00.0")]
    );
}

#[test]
fn the_common_upstream_port_is_checked() {
    let m = switch_machine(&[("0000:01:00.0", RR_CR)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.acs_redirect, vec![b("0000:01:00.0")]);
    assert_eq!(v.map_type, MapType::NotSupported);
}

#[test]
fn bits_other_than_rr_cr_ec_do_not_redirect() {
    // SV TB UF DT: not redirect to the kernel.
    let m = switch_machine(
        &[(
            "0000:02:00.0",
            AcsState::Control {
                ctrl: AcsFlags(0x53),
            },
        )],
        Q35,
    );
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.map_type, MapType::BusAddr);
}

#[test]
fn bridges_above_the_common_port_do_not_matter() {
    let m = switch_machine(&[("0000:00:03.0", STD)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.map_type, MapType::BusAddr);
}

#[test]
fn different_root_ports_count_both_chains() {
    // No common upstream: distance = every device on both chains (the
    // provider's 3 bridges + itself, the client's root port + itself).
    let m = switch_machine(&[("0000:02:00.0", RR_CR)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:05:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert_eq!(v.distance, 4 + 2);
    assert!(
        v.acs_redirect.is_empty(),
        "ACS bits are not listed without a common bridge"
    );
    assert_eq!(v.common_upstream, None);
    assert_eq!(
        v.kernel_messages,
        vec![
            "nvme 0000:05:00.0: cannot be used for peer-to-peer DMA as the client and provider (0000:03:00.0) do not share an upstream bridge or whitelisted host bridge"
        ],
        "no whitelist warning without ACS redirect"
    );
    let w = v.whitelist.clone().unwrap();
    assert_eq!(w.checks[0].result, HostBridgeResult::NotListed);
}

#[test]
fn different_root_ports_on_a_whitelisted_host_bridge() {
    let m = switch_machine(&[], SKX);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:05:00.0");
    assert_eq!((v.map_type, v.distance), (MapType::ThruHostBridge, 6));
    assert!(v.kernel_messages.is_empty());
}

#[test]
fn same_host_bridge_entries_admit_only_within_one() {
    let m = switch_machine(&[], HSX);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:05:00.0");
    assert_eq!(
        v.map_type,
        MapType::ThruHostBridge,
        "one host bridge: admitted"
    );

    let m = two_host_bridges(HSX, HSX);
    let v = m.decide(&newest(), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    let w = v.whitelist.clone().unwrap();
    assert!(!w.same_host_bridge);
    assert_eq!(w.checks.len(), 1, "the second host bridge is not looked at");
    assert_eq!(w.checks[0].result, HostBridgeResult::NeedsSameHostBridge);
    assert_eq!(v.host_bridges, vec!["pci0000:00", "pci0000:80"]);
    assert_eq!(v.distance, 4);
}

#[test]
fn across_host_bridges_both_must_be_whitelisted() {
    let v = two_host_bridges(SKX, SKX).decide(&newest(), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    assert_eq!(v.whitelist.as_ref().unwrap().checks.len(), 2);

    let v = two_host_bridges(SKX, Q35).decide(&newest(), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    let w = v.whitelist.clone().unwrap();
    assert_eq!(w.checks.len(), 2);
    assert_eq!(w.checks[1].result, HostBridgeResult::NotListed);

    // The provider's host bridge first: when it fails, the client's is skipped.
    let v = two_host_bridges(Q35, SKX).decide(&newest(), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert_eq!(v.whitelist.as_ref().unwrap().checks.len(), 1);
}

/// Skylake-SP: no devfn 00.0 on the root bus, the first device is a
/// whitelisted root port (8086:2030) at 00:01.0.
fn skylake_root_ports(first_is_root_port: Option<bool>) -> Machine {
    let mut m = Machine::new();
    let hb = m.host_bridge(
        "pci0000:16",
        Some(("0000:16:01.0", 0x8086, 0x2030, first_is_root_port)),
    );
    m.add("0000:16:01.0", None, hb, NONE, Some("pcieport"));
    m.add("0000:17:00.0", Some("0000:16:01.0"), hb, NONE, Some("nvme"));
    m.add("0000:16:02.0", None, hb, NONE, Some("pcieport"));
    m.add("0000:18:00.0", Some("0000:16:02.0"), hb, NONE, Some("nvme"));
    m
}

#[test]
fn whitelist_looks_at_the_first_device_only_if_00_0_or_a_root_port() {
    let v = skylake_root_ports(Some(true)).decide(&newest(), "0000:17:00.0", "0000:18:00.0");
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    // The same ID on a first device that is neither 00.0 nor a root port.
    let v = skylake_root_ports(Some(false)).decide(&newest(), "0000:17:00.0", "0000:18:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    let w = v.whitelist.clone().unwrap();
    assert_eq!(w.checks[0].result, HostBridgeResult::NoHostBridgeDevice);
    assert_eq!(w.checks[0].first_device, None);
    // Kernels before the root-port rule only looked at devfn 00.0.
    let v =
        skylake_root_ports(Some(true)).decide(&release("5.8.0"), "0000:17:00.0", "0000:18:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    // Not root: whether it is a root port is unknown.
    let v = skylake_root_ports(None).decide(&newest(), "0000:17:00.0", "0000:18:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert!(matches!(v.unknown[..], [Unknown::FirstDeviceType { .. }]));
}

#[test]
fn an_empty_root_bus_has_nothing_to_whitelist() {
    let mut m = Machine::new();
    let hb = m.host_bridge("pci0000:00", None);
    m.add("0000:00:01.0", None, hb, NONE, None);
    m.add("0000:00:02.0", None, hb, NONE, None);
    let v = m.decide(&newest(), "0000:00:01.0", "0000:00:02.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert_eq!(v.distance, 2, "two root-bus devices: one each");
    assert!(v.kernel_messages[0].starts_with("pci 0000:00:02.0: cannot be used"));
}

#[test]
fn whitelist_follows_the_kernel_release() {
    let qat = (0x8086, 0x4940);
    let m = two_host_bridges(qat, qat);
    let at = |r: &str| {
        m.decide(&release(r), "0000:01:00.0", "0000:81:00.0")
            .map_type
    };
    assert_eq!(at("7.0.9"), MapType::NotSupported);
    // 0ba76b19fd4c: mainline 7.2, backported to 7.1.3 (not 7.1.0-7.1.2).
    assert_eq!(at("7.1.2"), MapType::NotSupported);
    assert_eq!(at("7.1.3"), MapType::ThruHostBridge);
    assert_eq!(at("7.1.4+deb13-amd64"), MapType::ThruHostBridge);
    assert_eq!(at("7.2.0"), MapType::ThruHostBridge);
    // Google: any device ID.
    let google = (0x1ae0, 0xabcd);
    let m = two_host_bridges(google, google);
    assert_eq!(
        m.decide(&newest(), "0000:01:00.0", "0000:81:00.0").map_type,
        MapType::ThruHostBridge
    );
    assert_eq!(
        m.decide(&release("6.1.0"), "0000:01:00.0", "0000:81:00.0")
            .map_type,
        MapType::NotSupported
    );
    // Old kernels: AMD Zen by host-bridge ID, before cpu_supports_p2pdma().
    let mut zen = two_host_bridges((0x1022, 0x1450), (0x1022, 0x1450));
    zen.cpu("AuthenticAMD", 0x17);
    let v = zen.decide(&release("5.4.0"), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    assert!(!v.cpu_rule, "5.4 has no CPU rule, the whitelist admits");
    let v = zen.decide(&newest(), "0000:01:00.0", "0000:81:00.0");
    assert!(v.cpu_rule);
    let zen_other = {
        let mut m = two_host_bridges(Q35, Q35);
        m.cpu("AuthenticAMD", 0x19);
        m
    };
    assert_eq!(
        zen_other
            .decide(&release("5.4.0"), "0000:01:00.0", "0000:81:00.0")
            .map_type,
        MapType::NotSupported
    );
}

#[test]
fn unknown_release_assumes_the_newest_table() {
    let model = KernelData::embedded().for_release(None);
    assert!(model.assumed);
    assert_eq!(model.version, KernelData::embedded().features.newest);
    let nvidia = (0x10de, 0x2f95);
    let v = two_host_bridges(nvidia, nvidia).decide(&model, "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    // Zhaoxin (f7c220404700) is in linux-next only: no release has it,
    // not even the assumed newest.
    let zhaoxin = (0x1d17, 0x1008);
    let v = two_host_bridges(zhaoxin, zhaoxin).decide(&model, "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
}

#[test]
fn unreadable_acs_is_reported_and_assumed_clear() {
    let unknown = AcsState::Unknown {
        cmdline_clears: false,
        groups: None,
    };
    let m = switch_machine(&[("0000:02:00.0", unknown), ("0000:01:00.0", unknown)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.map_type, MapType::BusAddr);
    assert_eq!(
        v.unknown,
        vec![
            Unknown::Acs {
                bdf: b("0000:02:00.0"),
                assumed: false,
                basis: AcsBasis::Nothing,
            },
            Unknown::Acs {
                bdf: b("0000:01:00.0"),
                assumed: false,
                basis: AcsBasis::Nothing,
            }
        ]
    );
    // Named by pci=disable_acs_redir: taken as clear, but the register
    // itself was not read (a setpci after boot is invisible): never a
    // certain bus_addr (issue 11 item 3; it used to be certain).
    let cleared = AcsState::Unknown {
        cmdline_clears: true,
        groups: Some(true),
    };
    let m = switch_machine(&[("0000:02:00.0", cleared)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.map_type, MapType::BusAddr);
    assert!(!v.certain());
    assert_eq!(
        v.unknown,
        vec![Unknown::Acs {
            bdf: b("0000:02:00.0"),
            assumed: false,
            basis: AcsBasis::CommandLine,
        }]
    );
    // Without a common bridge, ACS does not matter and is not reported.
    let m = switch_machine(&[("0000:02:00.0", unknown)], SKX);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:05:00.0");
    assert!(v.certain(), "{:?}", v.unknown);
}

#[test]
fn unknown_cpu_is_reported_when_the_host_bridge_test_runs() {
    let mut m = two_host_bridges(Q35, Q35);
    m.view.cpu = CpuView {
        vendor: None,
        family: None,
        known: false,
    };
    let v = m.decide(&newest(), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert!(v.unknown.contains(&Unknown::Cpu));
    // Below one bridge the CPU never matters.
    let m2 = switch_machine(&[], Q35);
    let mut m2 = m2;
    m2.view.cpu = m.view.cpu.clone();
    assert!(
        m2.decide(&newest(), "0000:03:00.0", "0000:04:00.0")
            .certain()
    );
}

#[test]
fn a_long_acs_list_is_cut_like_the_kernels_128_byte_buffer() {
    // Eleven cascaded bridges with redirect between provider and client.
    let mut m = Machine::new();
    let hb = m.host_bridge(
        "pci0000:00",
        Some(("0000:00:00.0", 0x8086, 0x29c0, Some(false))),
    );
    m.add("0000:00:00.0", None, hb, NONE, None);
    m.add("0000:00:01.0", None, hb, NONE, Some("pcieport"));
    let mut parent = "0000:00:01.0".to_string();
    for bus in 1..=11u8 {
        let bdf = format!("0000:{bus:02x}:00.0");
        m.add(&bdf, Some(&parent), hb, RR_CR, Some("pcieport"));
        parent = bdf;
    }
    m.add("0000:20:00.0", Some(&parent), hb, NONE, Some("nvme"));
    m.add("0000:20:00.1", Some(&parent), hb, NONE, Some("nvme"));
    // The provider sits one level up so that all eleven are on its walk.
    let v = m.decide(&newest(), "0000:20:00.0", "0000:01:00.0");
    assert_eq!(v.acs_redirect.len(), 11);
    let line = &v.kernel_messages[1];
    let list = line.rsplit_once("pci=disable_acs_redir=").unwrap().1;
    assert_eq!(list.len(), 127);
    assert!(list.starts_with("0000:0b:00.0;0000:0a:00.0;"));
}

#[test]
fn messages_name_the_bound_driver_or_pci() {
    let mut m = q35_multifunction(STD, Q35);
    m.view.functions[3].driver = None;
    let v = m.decide(&newest(), "0000:01:00.0", "0000:01:00.1");
    assert!(v.kernel_messages[0].starts_with("pci 0000:01:00.1: ACS redirect"));
}

// ---- issue 11 -------------------------------------------------------------

/// Item 1: the pair (provider, provider), release by release. Distance 0,
/// the walk's first step checks the provider function itself.
#[test]
fn provider_with_itself_follows_its_own_acs_release_by_release() {
    // SR-IOV capable NVMe with the IOMMU on: Linux set SV RR CR UF on the
    // function itself (pci_std_enable_acs() runs for every device with an
    // ACS capability, endpoints included).
    let m = switch_machine(&[("0000:03:00.0", STD)], Q35);
    for (rel, want, lines) in [
        // 5.4+: ACS redirect falls back to the host-bridge test; q35 is not
        // whitelisted: refused.
        ("7.3.0", MapType::NotSupported, 4),
        ("5.14.0", MapType::NotSupported, 4),
        // 5.4-5.13: no "Host bridge not in P2PDMA whitelist" line yet.
        ("5.13.0", MapType::NotSupported, 3),
        // Before 5.4: refused outright, with the older wording.
        ("5.3.0", MapType::NotSupported, 2),
    ] {
        let v = m.decide(&release(rel), "0000:03:00.0", "0000:03:00.0");
        assert_eq!((v.map_type, v.distance), (want, 0), "{rel}");
        assert_eq!(v.acs_redirect, vec![b("0000:03:00.0")], "{rel}");
        assert_eq!(
            v.kernel_messages.len(),
            lines,
            "{rel}: {:?}",
            v.kernel_messages
        );
    }
    let v = m.decide(&release("5.3.0"), "0000:03:00.0", "0000:03:00.0");
    assert!(v.kernel_messages[0].ends_with(
        "cannot be used for peer-to-peer DMA as ACS redirect is set between the client and provider (0000:03:00.0)"
    ));
    // On a whitelisted host bridge the same pair detours (5.4+) but was
    // refused before 5.4.
    let m = switch_machine(&[("0000:03:00.0", STD)], SKX);
    assert_eq!(
        m.decide(&newest(), "0000:03:00.0", "0000:03:00.0").map_type,
        MapType::ThruHostBridge
    );
    assert_eq!(
        m.decide(&release("5.3.18"), "0000:03:00.0", "0000:03:00.0")
            .map_type,
        MapType::NotSupported
    );
    // Without ACS on the function: bus address, distance 0, no line.
    let m = switch_machine(&[], Q35);
    let v = m.decide(&release("5.0.0"), "0000:03:00.0", "0000:03:00.0");
    assert_eq!((v.map_type, v.distance), (MapType::BusAddr, 0));
}

/// Item 2: the release gates the issue found wrong, at their commits.
#[test]
fn release_gates_follow_the_commits() {
    // cpu_supports_p2pdma(): dea286bb71ba, v5.9 (not 5.10).
    let mut m = two_host_bridges(Q35, Q35);
    m.cpu("AuthenticAMD", 0x19);
    let at = |r: &str| m.decide(&release(r), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(at("5.8.18").map_type, MapType::NotSupported);
    assert!(at("5.9.0").cpu_rule);
    assert_eq!(at("5.9.0").map_type, MapType::ThruHostBridge);
    // Root Port at any devfn as first device: 1af7c26c59eb, v5.19 (not 5.9).
    let m = skylake_root_ports(Some(true));
    let at = |r: &str| m.decide(&release(r), "0000:17:00.0", "0000:18:00.0");
    assert_eq!(at("5.18.19").map_type, MapType::NotSupported);
    assert_eq!(at("5.19.0").map_type, MapType::ThruHostBridge);
}

/// Item 2: before 5.4 there was no host-bridge fallback; 5.2-5.3 had
/// root_complex_whitelist() with AMD 0x1450 only; before 5.2 nothing.
#[test]
fn before_5_4_only_amd_1450_and_no_fallback() {
    let zen = (0x1022, 0x1450);
    let mut m = two_host_bridges(zen, zen);
    m.cpu("AuthenticAMD", 0x17);
    let v = m.decide(&release("5.3.0"), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(
        v.map_type,
        MapType::BusAddr,
        "admitted, bus addresses, no map types yet"
    );
    assert!(v.distance >= 0x1000, "0x1000 + distance: {}", v.distance);
    assert!(v.kernel_messages.is_empty() && v.whitelist.is_none());
    let v = m.decide(&release("5.1.0"), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert!(v.kernel_messages[0].ends_with(
        "cannot be used for peer-to-peer DMA as the client and provider (0000:01:00.0) do not share an upstream bridge"
    ));
    // Intel Haswell-EP is only in the table from 5.4.
    let m = two_host_bridges(HSX, HSX);
    let v = m.decide(&release("5.3.0"), "0000:01:00.0", "0000:81:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    // 5.4-5.13: ACS redirect detours with the new wording but no
    // whitelist line and an uncut list.
    let m = q35_multifunction(STD, SKX);
    let v = m.decide(&release("5.10.0"), "0000:01:00.0", "0000:01:00.1");
    assert_eq!(v.map_type, MapType::ThruHostBridge);
    assert_eq!(v.kernel_messages.len(), 2);
    let m = q35_multifunction(STD, Q35);
    let v = m.decide(&release("5.10.0"), "0000:01:00.0", "0000:01:00.1");
    assert!(
        !v.kernel_messages
            .iter()
            .any(|l| l.contains("Host bridge not in P2PDMA whitelist"))
    );
    let v = m.decide(&release("5.14.0"), "0000:01:00.0", "0000:01:00.1");
    assert!(
        v.kernel_messages
            .iter()
            .any(|l| l.contains("Host bridge not in P2PDMA whitelist: 8086:29c0"))
    );
}

/// Item 2: the 128-byte buffer (5.14) cuts long lists; before, PAGE_SIZE.
#[test]
fn acs_list_is_cut_only_from_5_14() {
    let mut m = Machine::new();
    let hb = m.host_bridge(
        "pci0000:00",
        Some(("0000:00:00.0", 0x8086, 0x29c0, Some(false))),
    );
    m.add("0000:00:00.0", None, hb, NONE, None);
    // Two chains of 6 ports with RR/CR below one root port (also RR/CR),
    // an NVMe at the bottom of each: 13 devices in the list.
    m.add("0000:00:03.0", None, hb, RR_CR, Some("pcieport"));
    for first in [0x01u8, 0x11] {
        let mut up = "0000:00:03.0".to_string();
        for bus in first..first + 6 {
            let bdf = format!("0000:{bus:02x}:00.0");
            m.add(&bdf, Some(&up), hb, RR_CR, Some("pcieport"));
            up = bdf;
        }
        m.add(
            &format!("0000:{:02x}:00.0", first + 6),
            Some(&up),
            hb,
            NONE,
            Some("nvme"),
        );
    }
    let line = |r: &str| {
        m.decide(&release(r), "0000:07:00.0", "0000:17:00.0")
            .kernel_messages[1]
            .clone()
    };
    let new = line("7.2.0");
    let old = line("5.13.0");
    assert!(new.len() < old.len(), "{new}\n{old}");
    assert!(old.ends_with("0000:12:00.0;0000:11:00.0"), "{old}");
    assert_eq!(old.matches(';').count(), 12);
}

/// Item 3: unreadable ACS below an IOMMU: the groups decide the guess,
/// the pair stays uncertain, never a certain bus_addr.
#[test]
fn unreadable_acs_is_inferred_from_iommu_groups_and_stays_uncertain() {
    let isolated = AcsState::Unknown {
        cmdline_clears: false,
        groups: Some(true),
    };
    let shared = AcsState::Unknown {
        cmdline_clears: false,
        groups: Some(false),
    };
    let m = switch_machine(
        &[("0000:02:00.0", isolated), ("0000:02:01.0", isolated)],
        Q35,
    );
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(
        v.map_type,
        MapType::NotSupported,
        "RR/CR assumed on both DSPs"
    );
    assert!(!v.certain());
    assert_eq!(v.acs_redirect, vec![b("0000:02:00.0"), b("0000:02:01.0")]);
    assert!(v.unknown.iter().all(|u| matches!(
        u,
        Unknown::Acs {
            assumed: true,
            basis: AcsBasis::GroupsIsolated,
            ..
        }
    )));
    let m = switch_machine(&[("0000:02:00.0", shared), ("0000:02:01.0", shared)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.map_type, MapType::BusAddr);
    assert!(
        !v.certain(),
        "an unreadable path is never a certain bus_addr"
    );
    // The same on a 5.x kernel: only the consequence of the guess differs.
    let m = switch_machine(&[("0000:02:00.0", isolated)], Q35);
    let v = m.decide(&release("5.3.0"), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
    assert!(!v.certain());
}

/// Item 5: a client whose DMA ops cannot map P2P memory fails every
/// mapping, whatever the map type, and the kernel logs none of its lines.
#[test]
fn xen_swiotlb_clients_fail_every_mapping() {
    let mut m = switch_machine(&[], Q35);
    m.view.client_dma_unsupported = Some(
        "Xen PV dom0 uses the xen-swiotlb DMA ops, which dma_pci_p2pdma_supported() rejects".into(),
    );
    for rel in ["7.3.0", "6.2.0"] {
        let v = m.decide(&release(rel), "0000:03:00.0", "0000:04:00.0");
        assert_eq!(v.map_type, MapType::NotSupported, "{rel}");
        assert_eq!(v.distance, 4, "the distance is still the kernel's");
        assert!(v.blocked_by.as_deref().unwrap().contains("xen-swiotlb"));
        assert!(v.kernel_messages.is_empty());
    }
    let v = m.decide(&newest(), "0000:03:00.0", "0000:03:00.0");
    assert_eq!(v.map_type, MapType::NotSupported);
}

/// Item 7: the PCH quirks the kernel has, and which of them P2PDMA sees.
#[test]
fn intel_pch_acs_quirks_are_recognised() {
    // Sunrise Point and Union Point root ports: the dword layout.
    assert_eq!(intel_pch_acs_quirk(0x8086, 0xa110, true), Some("spt"));
    assert_eq!(intel_pch_acs_quirk(0x8086, 0xa2eb, true), Some("spt"));
    // Only root ports (pci_quirk_intel_spt_pch_acs_match()).
    assert_eq!(intel_pch_acs_quirk(0x8086, 0xa110, false), None);
    // Cannon Lake PCH root ports (0xa338..) are not in the kernel's list.
    assert_eq!(intel_pch_acs_quirk(0x8086, 0xa338, true), None);
    // Older PCHs: no capability, a vendor register.
    assert_eq!(intel_pch_acs_quirk(0x8086, 0x1c10, true), Some("pch"));
    assert_eq!(intel_pch_acs_quirk(0x1022, 0xa110, true), None);
    // What P2PDMA reads on an SPT root port is the word at acs_cap + 6, the
    // upper half of the 32-bit capability register: with the real control
    // (at +8) full of RR/CR, the verdict stays bus_addr as the kernel's.
    let spt_upper_cap_word = AcsState::Control {
        ctrl: p2pdoctor::pci::AcsFlags(0x0000),
    };
    let m = switch_machine(&[("0000:00:03.0", spt_upper_cap_word)], Q35);
    let v = m.decide(&newest(), "0000:03:00.0", "0000:04:00.0");
    assert_eq!(v.map_type, MapType::BusAddr);
}

/// Item 8: nvme_map_cmb() per release, on a machine with a 4 MiB-BAR CMB
/// misaligned in size and a 1 MiB one (rule_cmb_misaligned.toml): since
/// 56cf7ef0d490 (6.15; 6.12.23 by stable) the driver skips them without a
/// word; before, pci_p2pdma_add_resource() failed and it logged "failed to
/// register the CMB".
#[test]
fn cmb_publication_follows_the_release() {
    use p2pdoctor::root::SystemRoot;
    use p2pdoctor::scan::{self, ScanOptions};
    use p2pdoctor::topology::Tree;
    let built = common::build("rule_cmb_misaligned");
    let root = SystemRoot::open(&built.root()).unwrap();
    let tree = Tree::build(scan::scan(
        &root,
        &ScanOptions {
            no_names: true,
            ..Default::default()
        },
    ));
    let at = |rel: &str| {
        let mut t = tree.clone();
        t.host.kernel_release = Some(rel.to_string());
        let d = p2pdoctor::diagnose::diagnose(&t, &Default::default());
        d.findings
            .into_iter()
            .filter(|f| f.rule == "P2P203" || f.rule == "P2P204")
            .collect::<Vec<_>>()
    };
    for (rel, silent) in [
        ("7.2.0", true),
        ("6.15.0", true),
        ("6.12.23", true),
        ("6.12.22", false),
        ("6.14.11", false),
        ("6.2.0", false),
    ] {
        let f = at(rel);
        assert_eq!(f.len(), 2, "{rel}: {f:#?}");
        for x in &f {
            let logs = x
                .evidence
                .iter()
                .any(|e| e.contains("failed to register the CMB"));
            assert_eq!(!logs, silent, "{rel}: {x:#?}");
            if silent {
                assert!(
                    x.message.contains("skips it silently"),
                    "{rel}: {}",
                    x.message
                );
            } else {
                assert!(
                    x.message.contains("predates the silent skip"),
                    "{rel}: {}",
                    x.message
                );
            }
        }
    }
}

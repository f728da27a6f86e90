//! Whole-buffer tests of [`decode`]: realistic devices, the non-root 64-byte
//! view, hostile config space, and property tests.

use super::testutil::{Config, ExpressBody, dwords, words};
use super::*;

/// An Intel-style root port: PM, MSI, Express v2 (root port, slot), SSVID;
/// AER, ACS with SV RR CR UF enabled (control 0x001d), DPC.
fn root_port() -> Vec<u8> {
    let mut c = Config::bridge(0x8086, 0x347a, (0x00, 0x17, 0x17));
    c.u16(0x04, 0x0407).u8(0x0e, 0x81);
    let mut exp = ExpressBody::v2(0x4);
    exp.flags |= 0x0100; // slot implemented
    exp.devcap = 0x0000_8002; // MPS 512
    exp.devctl = 0x0020; // MPS 256
    exp.lnkcap = 0x0100_0000 | 0x0010_0000 | 0x0c00 | (16 << 4) | 4; // port 1, DLLA, x16, 16GT/s
    exp.lnksta = 0x2000 | (16 << 4) | 4;
    exp.devcap2 = (1 << 16) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 11);
    c.cap(CAP_ID_PM, 0x40, &words(&[0xc803, 0x0008, 0, 0]));
    c.cap(CAP_ID_MSI, 0x50, &words(&[0x0080, 0, 0, 0, 0, 0]));
    c.cap(CAP_ID_EXPRESS, 0x60, &exp.bytes());
    c.cap(CAP_ID_SSVID, 0xa0, &[0, 0, 0x86, 0x80, 0x00, 0x00]);
    let mut aer = dwords(&[0, 0x0040_0000, 0x0046_2030, 0, 0x2000]);
    aer.resize(0x44, 0);
    c.ecap(ECAP_ID_AER, 2, 0x100, &aer);
    c.ecap(ECAP_ID_ACS, 1, 0x148, &words(&[0x001f, 0x001d]));
    c.ecap(ECAP_ID_DPC, 1, 0x200, &words(&[0x00e8, 0x0001, 0x0000]));
    c.build()
}

/// A TI XIO3130 switch downstream port (104c:8233) as QEMU models it: MSI,
/// SSVID, Express v2 downstream port with a slot, AER, and no ACS.
fn x3130_downstream() -> Vec<u8> {
    let mut c = Config::bridge(0x104c, 0x8233, (0x02, 0x03, 0x03));
    c.u16(0x04, 0x0407);
    let mut exp = ExpressBody::v2(0x6);
    exp.flags |= 0x0100;
    exp.lnkcap = (1 << 24) | (1 << 4) | 1; // port 1, x1, 2.5GT/s
    exp.lnksta = (1 << 4) | 1;
    c.cap(CAP_ID_MSI, 0x70, &words(&[0x0080, 0, 0, 0, 0, 0]));
    c.cap(CAP_ID_SSVID, 0x80, &[0, 0, 0x4c, 0x10, 0x33, 0x82]);
    c.cap(CAP_ID_EXPRESS, 0x90, &exp.bytes());
    c.ecap(ECAP_ID_AER, 2, 0x100, &[0; 0x44]);
    c.build()
}

/// A Samsung-style NVMe SSD: PM, MSI, Express v2 endpoint (16GT/s x4),
/// MSI-X; AER, DSN, ARI, L1 PM Substates.
fn nvme() -> Vec<u8> {
    let mut c = Config::endpoint(0x144d, 0xa80a, 0x010802);
    c.u16(0x04, 0x0406).u16(0x2c, 0x144d).u16(0x2e, 0xa801);
    let mut exp = ExpressBody::v2(0x0);
    exp.devcap = 0x1000_8fc2; // FLR, MPS 512
    exp.devctl = 0x5000 | 0x0800 | 0x0020 | 0x0010; // MRRS 4096, no snoop, MPS 256, RO
    exp.lnkcap = 0x0047_5c44; // 16GT/s x4, ASPM L1
    exp.lnksta = 0x2044; // 16GT/s x4, DL active
    exp.devcap2 = 0x0070_0b1f;
    exp.devctl2 = 0x0400; // LTR enabled
    c.cap(CAP_ID_PM, 0x40, &words(&[0x0003, 0x0008, 0, 0]));
    c.cap(
        CAP_ID_MSI,
        0x50,
        &words(&[0x0180, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    c.cap(CAP_ID_EXPRESS, 0x70, &exp.bytes());
    c.cap(CAP_ID_MSIX, 0xb0, &words(&[0x0020, 0x3000, 0, 0x2000, 0]));
    let mut aer = vec![0u8; 0x44];
    aer[0x0c..0x10].copy_from_slice(&0x2000u32.to_le_bytes()); // correctable status, +0x10
    c.ecap(ECAP_ID_AER, 2, 0x100, &aer);
    c.ecap(ECAP_ID_DSN, 1, 0x148, &dwords(&[0x9061_8f01, 0x0025_3852]));
    c.ecap(ECAP_ID_ARI, 1, 0x158, &words(&[0x0000, 0x0000]));
    c.ecap(ECAP_ID_L1PM, 1, 0x168, &[0; 0x10]);
    c.build()
}

#[test]
fn realistic_root_port() {
    let d = decode(&root_port());
    assert_eq!(d.length, 4096);
    assert_eq!((d.vendor_id, d.device_id), (Some(0x8086), Some(0x347a)));
    assert_eq!(d.class_code, Some(0x060400));
    assert_eq!(d.header_type, Some(HeaderType::Bridge));
    assert!(d.multifunction);
    assert!(d.is_bridge());
    assert_eq!(d.bus_master(), Some(true));
    assert_eq!(
        d.buses,
        Some(BridgeBuses {
            primary: 0,
            secondary: 0x17,
            subordinate: 0x17
        })
    );
    assert_eq!(d.subsystem, Some((0x8086, 0x0000)));
    let ids: Vec<u8> = d.capabilities.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![0x01, 0x05, 0x10, 0x0d]);
    let eids: Vec<(u16, u16)> = d
        .extended_capabilities
        .iter()
        .map(|c| (c.id, c.offset))
        .collect();
    assert_eq!(
        eids,
        vec![(0x0001, 0x100), (0x000d, 0x148), (0x001d, 0x200)]
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert!(d.capabilities_readable && d.extended_readable);

    let e = d.express.unwrap();
    assert_eq!(e.offset, 0x60);
    assert_eq!(e.port_type, PortType::RootPort);
    assert!(e.port_type.is_downstream_facing());
    assert!(e.slot_implemented);
    assert_eq!(e.dev_cap.max_payload_supported, 512);
    assert_eq!(e.dev_ctl.max_payload, 256);
    let link = e.link.unwrap();
    assert_eq!(link.cap.max_speed.to_string(), "16GT/s");
    assert_eq!(link.cap.max_width, 16);
    assert_eq!(link.cap.port_number, 1);
    assert_eq!(link.status.width, 16);
    assert!(link.status.dll_active);
    let c2 = e.dev_cap2.unwrap();
    assert!(c2.ten_bit_tag_completer && !c2.ten_bit_tag_requester && c2.atomic_op_routing);

    let acs = d.acs.unwrap();
    assert_eq!(acs.offset, 0x148);
    assert_eq!(acs.cap, AcsFlags(0x1f));
    let ctrl = acs.ctrl.unwrap();
    assert_eq!(ctrl.names(), vec!["SV", "RR", "CR", "UF"]);
    assert!(ctrl.redirects());
    assert_eq!(
        ctrl.to_string(),
        "SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-"
    );
    assert_eq!(d.aer.unwrap().uncorrectable_severity, 0x0046_2030);
    assert_eq!(d.dpc.unwrap().trigger_enabled, 1);
    assert_eq!(d.dsn, None);
    assert_eq!(
        d.find_extended_capability(ECAP_ID_ACS).map(|c| c.offset),
        Some(0x148)
    );
}

#[test]
fn x3130_downstream_port_without_acs() {
    let d = decode(&x3130_downstream());
    assert_eq!((d.vendor_id, d.device_id), (Some(0x104c), Some(0x8233)));
    assert!(d.is_bridge());
    assert_eq!(d.subsystem, Some((0x104c, 0x8233)));
    let e = d.express.unwrap();
    assert_eq!(e.port_type, PortType::DownstreamPort);
    assert!(e.port_type.is_downstream_facing());
    assert_eq!(e.link.unwrap().status.speed.gts(), Some(2.5));
    assert_eq!(d.acs, None);
    assert!(d.aer.is_some());
    assert_eq!(d.extended_capabilities.len(), 1);
    assert!(d.problems.is_empty());
}

#[test]
fn nvme_endpoint() {
    let d = decode(&nvme());
    assert_eq!(d.class_code, Some(0x010802));
    assert_eq!(d.subsystem, Some((0x144d, 0xa801)));
    assert!(!d.is_bridge());
    assert_eq!(d.buses, None);
    let e = d.express.unwrap();
    assert_eq!(e.port_type, PortType::Endpoint);
    assert!(!e.port_type.is_downstream_facing());
    assert!(e.dev_cap.flr);
    assert!(e.dev_ctl.relaxed_ordering && e.dev_ctl.no_snoop);
    assert_eq!(e.dev_ctl.max_payload, 256);
    assert_eq!(e.dev_ctl.max_read_request, 4096);
    let link = e.link.unwrap();
    assert_eq!(link.cap.max_speed.generation(), Some(4));
    assert_eq!((link.cap.max_width, link.status.width), (4, 4));
    assert!(e.dev_ctl2.unwrap().ltr_enable);
    assert_eq!(d.dsn, Some(0x0025_3852_9061_8f01));
    assert_eq!(d.ari.unwrap().next_function, 0);
    assert_eq!(d.aer.unwrap().correctable_status, 0x2000);
    assert_eq!(d.acs, None);
    assert_eq!(d.find_capability(CAP_ID_MSIX).map(|c| c.offset), Some(0xb0));
    assert_eq!(
        d.extended_capabilities.last().map(|c| c.id),
        Some(ECAP_ID_L1PM)
    );
}

#[test]
fn non_root_64_byte_view() {
    for bytes in [nvme(), root_port()] {
        let d = decode(&bytes[..64]);
        assert_eq!(d.length, 64);
        assert!(d.vendor_id.is_some() && d.device_id.is_some());
        assert!(d.class_code.is_some() && d.header_type.is_some());
        assert!(!d.capabilities_readable);
        assert!(!d.extended_readable);
        assert!(d.capabilities.is_empty() && d.extended_capabilities.is_empty());
        assert!(d.problems.is_empty(), "truncation is not a device problem");
        assert_eq!(d.express, None);
    }
    let d = decode(&nvme()[..64]);
    assert_eq!(d.subsystem, Some((0x144d, 0xa801)));
    let d = decode(&root_port()[..64]);
    assert!(d.buses.is_some());
    assert_eq!(
        d.subsystem, None,
        "a bridge's subsystem lives in a capability"
    );
}

#[test]
fn buffer_of_256_bytes_has_caps_but_no_extended_space() {
    let d = decode(&root_port()[..256]);
    assert!(d.capabilities_readable);
    assert!(!d.extended_readable);
    assert!(d.express.is_some());
    assert!(d.extended_capabilities.is_empty());
    assert_eq!(d.acs, None);
}

#[test]
fn no_capability_list_is_readable() {
    let c = Config::endpoint(0x8086, 0x7000, 0x060100);
    let d = decode(&c.truncated(64));
    assert!(d.capabilities_readable);
    assert!(d.capabilities.is_empty());
}

#[test]
fn odd_lengths_never_panic() {
    let full = root_port();
    for len in [
        0, 1, 2, 3, 7, 8, 15, 63, 64, 65, 255, 256, 257, 259, 260, 4095, 4096,
    ] {
        let d = decode(&full[..len]);
        assert_eq!(d.length, len);
        assert_eq!(d.extended_readable, len >= 4096);
    }
    let d = decode(&[]);
    assert_eq!(d.vendor_id, None);
    assert!(!d.capabilities_readable);
    let d = decode(&full[..1]);
    assert_eq!(d.vendor_id, None);
    let d = decode(&full[..3]);
    assert_eq!((d.vendor_id, d.device_id), (Some(0x8086), None));
    let d = decode(&full[..4095]);
    assert!(d.acs.is_some(), "ACS at 0x148 fits in 4095 bytes");
    // Longer than 4096: the extra bytes are ignored.
    let mut long = full.clone();
    long.extend([0xff; 100]);
    let d = decode(&long);
    assert_eq!(d.length, 4196);
    assert_eq!(d.extended_capabilities.len(), 3);
}

#[test]
fn all_ones_config_space() {
    let d = decode(&[0xff; 4096]);
    assert_eq!(d.vendor_id, Some(0xffff));
    assert_eq!(d.header_type, Some(HeaderType::Unknown(0x7f)));
    assert!(d.capabilities.is_empty());
    assert!(d.extended_capabilities.is_empty());
    assert_eq!(d.problems, vec![WalkProblem::AllOnes { offset: 0x100 }]);
    assert_eq!(d.express, None);

    // With a walkable header type, the all-ones capability is reported too.
    let mut bytes = vec![0xff; 4096];
    bytes[0x0e] = 0x00;
    let d = decode(&bytes);
    assert_eq!(
        d.problems,
        vec![
            WalkProblem::Misaligned { offset: 0xff },
            WalkProblem::AllOnes { offset: 0xfc },
            WalkProblem::AllOnes { offset: 0x100 },
        ]
    );
}

#[test]
fn hostile_standard_lists() {
    // Self-pointing capability.
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.cap(CAP_ID_EXPRESS, 0x40, &ExpressBody::v2(0).bytes())
        .u8(0x41, 0x40);
    let d = decode(&c.build());
    assert_eq!(d.capabilities.len(), 1);
    assert!(d.express.is_some());
    assert_eq!(d.problems, vec![WalkProblem::Loop { offset: 0x40 }]);

    // Two capabilities pointing at each other.
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.cap(CAP_ID_PM, 0x40, &[0; 6])
        .cap(CAP_ID_MSI, 0x48, &[0; 6])
        .u8(0x49, 0x40);
    let d = decode(&c.build());
    assert_eq!(d.capabilities.len(), 2);
    assert_eq!(d.problems, vec![WalkProblem::Loop { offset: 0x40 }]);

    // Pointer past the end of a short buffer.
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.cap(CAP_ID_PM, 0xf0, &[0; 6]);
    let d = decode(&c.truncated(0x80));
    assert!(d.capabilities.is_empty());
    assert!(!d.capabilities_readable);

    // Truncated Express capability at the end of the standard space.
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.cap(CAP_ID_EXPRESS, 0xf8, &ExpressBody::v2(0).bytes()[..6]);
    let d = decode(&c.build());
    assert_eq!(d.capabilities.len(), 1);
    assert_eq!(
        d.express, None,
        "must not read the extended header as DevCtl"
    );
}

#[test]
fn hostile_extended_lists() {
    // A loop between two extended capabilities.
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.ecap(ECAP_ID_AER, 2, 0x100, &[])
        .ecap(ECAP_ID_ACS, 1, 0x180, &words(&[0x1f, 0x1d]));
    c.u32(0x180, 0x0001_000d | (0x100 << 20));
    let d = decode(&c.build());
    assert_eq!(d.extended_capabilities.len(), 2);
    assert_eq!(d.problems, vec![WalkProblem::Loop { offset: 0x100 }]);
    assert_eq!(d.acs.unwrap().ctrl, Some(AcsFlags(0x1d)));

    // Truncated capabilities at the very end of extended space.
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.ecap(ECAP_ID_DSN, 1, 0x100, &dwords(&[1, 2]));
    c.ecap(ECAP_ID_AER, 2, 0xff0, &[])
        .ecap(ECAP_ID_ACS, 1, 0xffc, &[]);
    let d = decode(&c.build());
    assert_eq!(d.extended_capabilities.len(), 3);
    assert!(d.problems.is_empty());
    assert_eq!(d.dsn, Some(0x2_0000_0001));
    assert_eq!(d.aer, None);
    assert_eq!(d.acs, None);
}

#[test]
fn first_capability_of_an_id_wins() {
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.ecap(ECAP_ID_ACS, 1, 0x100, &words(&[0x1f, 0x00]));
    c.ecap(ECAP_ID_ACS, 1, 0x110, &words(&[0x1f, 0x1d]));
    let d = decode(&c.build());
    assert_eq!(d.acs.unwrap().offset, 0x100);
    assert_eq!(d.acs.unwrap().ctrl, Some(AcsFlags(0)));
}

#[test]
fn ssvid_is_ignored_on_endpoints() {
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.u16(0x2c, 0x1111).u16(0x2e, 0x2222);
    c.cap(CAP_ID_SSVID, 0x40, &[0, 0, 0x33, 0x33, 0x44, 0x44]);
    assert_eq!(decode(&c.build()).subsystem, Some((0x1111, 0x2222)));
}

#[test]
fn extended_capabilities_without_express() {
    // pciutils only scans extended space behind an Express capability; we
    // walk whatever is there, so a damaged standard list cannot hide ACS.
    let mut c = Config::bridge(0x10b5, 0x8747, (1, 2, 3));
    c.ecap(ECAP_ID_ACS, 1, 0x100, &words(&[0x5f, 0x1d]));
    let d = decode(&c.build());
    assert_eq!(d.express, None);
    assert!(d.acs.unwrap().ctrl.unwrap().redirects());
}

#[test]
fn decoded_serializes_to_json() {
    let d = decode(&root_port());
    let v: serde_json::Value = serde_json::to_value(&d).unwrap();
    assert_eq!(v["express"]["port_type"], "root_port");
    assert_eq!(v["express"]["link"]["cap"]["max_speed"], 16.0);
    assert_eq!(v["header_type"], "bridge");
    assert_eq!(v["acs"]["ctrl"], 0x1d);
    let v = serde_json::to_value(decode(&[0xff; 4096])).unwrap();
    assert_eq!(v["problems"][0]["kind"], "all_ones");
}

#[test]
fn bus_master_and_defaults() {
    let d = Decoded::default();
    assert_eq!(d.bus_master(), None);
    assert!(!d.is_bridge());
    let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
    c.u16(0x04, 0x0002);
    assert_eq!(decode(&c.build()).bus_master(), Some(false));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..=4096)) {
            let d = decode(&bytes);
            prop_assert_eq!(d.length, bytes.len());
            prop_assert!(d.capabilities.len() <= walk::STD_CAP_TTL);
            prop_assert!(d.extended_capabilities.len() <= walk::EXT_CAP_TTL);
        }

        #[test]
        fn never_panics_with_seeded_pointers(
            mut bytes in proptest::collection::vec(any::<u8>(), 4096),
            cap_ptr in any::<u8>(),
            ext_header in any::<u32>(),
            header_type in 0u8..3,
        ) {
            bytes[0x06] |= 0x10;
            bytes[0x0e] = header_type;
            bytes[0x34] = cap_ptr;
            bytes[0x14] = cap_ptr;
            bytes[0x100..0x104].copy_from_slice(&ext_header.to_le_bytes());
            let d = decode(&bytes);
            for c in &d.capabilities {
                prop_assert!((0x40..0x100).contains(&c.offset));
                prop_assert_eq!(c.offset % 4, 0);
            }
            for c in &d.extended_capabilities {
                prop_assert!((0x100..0x1000).contains(&c.offset));
                prop_assert_eq!(c.offset % 4, 0);
            }
            let _ = serde_json::to_string(&d).unwrap();
        }

        /// extended_reads() names every byte decode() reads: config space
        /// put together from the first 256 bytes, the headers it asked
        /// for and the ranges it returned decodes as the whole does,
        /// whatever fills the rest. Random bytes, with a capability list
        /// of decodable and other IDs laid over them at random offsets.
        #[test]
        fn the_parts_extended_reads_names_decode_as_the_whole(
            mut bytes in proptest::collection::vec(any::<u8>(), 4096),
            chain in proptest::collection::vec((0x40usize..0x400, 0usize..14, 0u32..16), 0..12),
            len in prop_oneof![Just(4096usize), 256usize..4096],
        ) {
            let ids: Vec<u16> = EXT_CAP_EXTENTS.iter().map(|(id, _)| *id).collect();
            // The list starts at 0x100.
            let mut chain = chain;
            if let Some(first) = chain.first_mut() {
                first.0 = 0x40;
            }
            for (i, &(slot, pick, version)) in chain.iter().enumerate() {
                let id = ids.get(pick).copied().unwrap_or(0x000b + pick as u16);
                let next = chain.get(i + 1).map_or(0, |n| n.0 as u32 * 4);
                let header = u32::from(id) | version << 16 | next << 20;
                bytes[slot * 4..slot * 4 + 4].copy_from_slice(&header.to_le_bytes());
            }
            let whole = &bytes[..len];
            for fill in [0x00, 0xff, 0xa5] {
                prop_assert_eq!(decode(&assemble(whole, fill)), decode(whole));
            }
        }

        #[test]
        fn every_prefix_decodes(bytes in proptest::collection::vec(any::<u8>(), 4096), len in 0usize..=4096) {
            let d = decode(&bytes[..len]);
            prop_assert_eq!(d.extended_readable, len >= 4096);
        }
    }
}

/// `whole` as a reader that follows [`extended_reads`] would see it: the
/// first 256 bytes, the headers asked for and the ranges returned, `fill`
/// everywhere else.
fn assemble(whole: &[u8], fill: u8) -> Vec<u8> {
    let mut parts = vec![fill; whole.len()];
    let std = whole.len().min(256);
    parts[..std].copy_from_slice(&whole[..std]);
    let mut headers = Vec::new();
    let ranges = extended_reads(|off| {
        let at = usize::from(off);
        let h = whole.get(at..at + 4)?;
        headers.push(at);
        Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]))
    });
    let mut copy = |from: usize, to: usize| {
        let to = to.min(whole.len());
        if from < to {
            parts[from..to].copy_from_slice(&whole[from..to]);
        }
    };
    for at in headers {
        copy(at, at + 4);
    }
    for r in ranges {
        copy(usize::from(r.start), usize::from(r.end));
    }
    parts
}

#[test]
fn every_extended_decoder_declares_its_extent() {
    let decoders: Vec<u16> = EXT_CAP_DECODERS.iter().map(|(id, _)| *id).collect();
    let extents: Vec<u16> = EXT_CAP_EXTENTS.iter().map(|(id, _)| *id).collect();
    assert_eq!(decoders, extents);
}

#[test]
fn extended_reads_of_a_real_layout() {
    // AER at 0x100, ACS at 0x148, a vendor capability at 0x150, a second
    // AER at 0x200 (only the first is decoded), SR-IOV at 0x300.
    let mut c = vec![0u8; 4096];
    let mut put = |at: usize, id: u32, next: u32| {
        c[at..at + 4].copy_from_slice(&(id | 1 << 16 | next << 20).to_le_bytes());
    };
    put(0x100, u32::from(ECAP_ID_AER), 0x148);
    put(0x148, u32::from(ECAP_ID_ACS), 0x150);
    put(0x150, u32::from(ECAP_ID_VNDR), 0x200);
    put(0x200, u32::from(ECAP_ID_AER), 0x300);
    put(0x300, u32::from(ECAP_ID_SRIOV), 0);
    let mut asked = Vec::new();
    let ranges = extended_reads(|off| {
        asked.push(off);
        let at = usize::from(off);
        Some(u32::from_le_bytes(c[at..at + 4].try_into().unwrap()))
    });
    assert_eq!(asked, vec![0x100, 0x148, 0x150, 0x200, 0x300]);
    assert_eq!(ranges, vec![0x104..0x118, 0x14c..0x150, 0x304..0x31c]);
    // A header that cannot be read ends the walk.
    let ranges =
        extended_reads(|off| (off == 0x100).then_some(u32::from(ECAP_ID_DSN) | 0x148 << 20));
    assert_eq!(ranges, vec![0x104..0x10c]);
}

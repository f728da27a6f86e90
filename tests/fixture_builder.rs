//! The fixture builder against its shipped specs and against lspci.
//!
//! lspci (pciutils) reads a fixture exactly as it reads a live /sys when
//! pointed at it with `-A linux-sysfs -O sysfs.path=<root>/sys/bus/pci`; it
//! finds parents by resolving `<dev>/..` and decodes the config bytes with its
//! own code, so agreement here shows the layout and the encoder are right.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use p2pdoctor_fixture::{FixtureError, Spec, build, large_server};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/specs")
}

fn load(name: &str) -> Spec {
    let path = specs_dir().join(format!("{name}.toml"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Spec::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn built(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build(&load(name), dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
    dir
}

fn spec_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(specs_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_shipped_spec_parses_and_builds() {
    let names = spec_names();
    for required in [
        "two_socket_server",
        "desktop_rc_only",
        "amd_host",
        "intel_whitelisted",
        "acs_switch",
        "multifunction",
        "nonroot",
        "hostile",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing spec {required}"
        );
    }
    for name in &names {
        let text = fs::read_to_string(specs_dir().join(format!("{name}.toml"))).unwrap();
        assert!(
            text.starts_with('#'),
            "{name}.toml must start with a comment header saying what it is"
        );
        let spec = Spec::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dir = tempfile::tempdir().unwrap();
        build(&spec, dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let devices = fs::read_dir(dir.path().join("sys/bus/pci/devices"))
            .unwrap()
            .count();
        assert!(devices >= spec.function_count().unwrap(), "{name}");
        for f in ["proc/cmdline", "proc/cpuinfo", "proc/sys/kernel/osrelease"] {
            assert!(dir.path().join(f).is_file(), "{name}: {f}");
        }
    }
}

#[test]
fn specs_survive_a_toml_round_trip() {
    for name in spec_names() {
        let spec = load(&name);
        let text = spec.to_toml().unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = Spec::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(spec, again, "{name}");
    }
}

#[test]
fn typos_fail_loudly() {
    let err = Spec::from_toml(
        "[[host_bridge]]\n[[host_bridge.device]]\nslot = \"00.0\"\nvendor = 1\ndevice = 2\nacs = { cap = 1, ctlr = 2 }\n",
    )
    .unwrap_err();
    assert!(matches!(err, FixtureError::Parse(_)), "{err}");
    assert!(err.to_string().contains("ctlr"), "{err}");
    let err = Spec::from_toml("[host]\niommu = \"intell\"\n").unwrap_err();
    assert!(err.to_string().contains("intell"), "{err}");
}

#[test]
fn build_refuses_a_non_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("precious"), "x").unwrap();
    let err = build(&load("multifunction"), dir.path()).unwrap_err();
    assert!(matches!(err, FixtureError::RootNotEmpty(_)), "{err}");
    assert!(dir.path().join("precious").exists());
}

#[test]
fn sysfs_links_are_relative_and_nested_like_the_kernel() {
    let dir = built("two_socket_server");
    let root = dir.path();
    let link = |p: &str| fs::read_link(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(
        link("sys/bus/pci/devices/0000:47:00.0"),
        Path::new(
            "../../../devices/pci0000:40/0000:40:02.0/0000:41:00.0/0000:42:04.0/0000:47:00.0"
        )
    );
    let dev = "sys/devices/pci0000:40/0000:40:02.0/0000:41:00.0/0000:42:04.0/0000:47:00.0";
    assert_eq!(
        link(&format!("{dev}/driver")),
        Path::new("../../../../../../bus/pci/drivers/nvme")
    );
    assert_eq!(
        link(&format!("{dev}/nvme/nvme1/device")),
        Path::new("../../../0000:47:00.0")
    );
    // Parents resolve through `..` of the bus/pci/devices symlink.
    let parent = fs::canonicalize(root.join("sys/bus/pci/devices/0000:47:00.0/..")).unwrap();
    assert!(parent.ends_with("0000:42:04.0"), "{}", parent.display());
    // VFs are siblings of their PF with physfn/virtfnN links.
    assert_eq!(
        link("sys/bus/pci/devices/0000:48:00.2/physfn"),
        Path::new("../0000:48:00.0")
    );
    assert_eq!(
        link("sys/bus/pci/devices/0000:48:00.0/virtfn1"),
        Path::new("../0000:48:00.3")
    );
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    let nic = "sys/bus/pci/devices/0000:48:00.0";
    assert_eq!(read(&format!("{nic}/sriov_numvfs")), "2\n");
    assert_eq!(read(&format!("{nic}/sriov_offset")), "2\n");
    assert_eq!(read("sys/bus/pci/devices/0000:48:00.2/device"), "0x101e\n");
    // IOMMU groups link both ways.
    let group = link(&format!("{dev}/iommu_group"));
    let gname = group.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        root.join(format!(
            "sys/kernel/iommu_groups/{gname}/devices/0000:47:00.0"
        ))
        .exists()
    );
    assert_eq!(
        read(&format!("sys/kernel/iommu_groups/{gname}/type")),
        "DMA-FQ\n"
    );
    assert!(
        root.join("sys/class/iommu/dmar0/devices/0000:47:00.0")
            .exists()
    );
    // Text attributes as pci-sysfs.c prints them.
    assert_eq!(read(&format!("{dev}/vendor")), "0x144d\n");
    assert_eq!(read(&format!("{dev}/class")), "0x010802\n");
    assert_eq!(read(&format!("{dev}/numa_node")), "0\n");
    assert_eq!(
        read(&format!("{dev}/current_link_speed")),
        "16.0 GT/s PCIe\n"
    );
    assert_eq!(read(&format!("{dev}/current_link_width")), "4\n");
    assert_eq!(
        read("sys/bus/pci/devices/0000:46:00.0/max_link_speed"),
        "32.0 GT/s PCIe\n"
    );
    assert_eq!(read(&format!("{dev}/p2pmem/size")), "67108864\n");
    assert_eq!(read(&format!("{dev}/p2pmem/published")), "1\n");
    assert_eq!(
        read(&format!("{dev}/nvme/nvme1/cmbsz")),
        format!("{}\n", 0x4021f)
    );
    assert_eq!(read(&format!("{dev}/resource")).lines().count(), 13);
    assert_eq!(
        read("sys/bus/pci/devices/0000:42:04.0/resource")
            .lines()
            .count(),
        17
    );
    assert_eq!(
        read("sys/bus/pci/devices/0000:42:04.0/secondary_bus_number"),
        "71\n"
    );
    assert_eq!(
        fs::metadata(root.join(format!("{dev}/config")))
            .unwrap()
            .len(),
        4096
    );
    assert_eq!(
        fs::metadata(root.join("sys/bus/pci/devices/0000:00:00.0/config"))
            .unwrap()
            .len(),
        256
    );
    // Native multipath: head under the subsystem, hidden path under the controller.
    assert_eq!(
        link("sys/class/block/nvme1n1"),
        Path::new("../../devices/virtual/nvme-subsystem/nvme-subsys1/nvme1n1")
    );
    assert_eq!(read(&format!("{dev}/nvme/nvme1/nvme1c1n1/hidden")), "1\n");
    assert!(
        root.join("sys/devices/virtual/nvme-subsystem/nvme-subsys1/nvme1n1/multipath/nvme1c1n1")
            .exists()
    );
    assert_eq!(
        read("p2pdoctor-kernel.log").lines().count(),
        load("two_socket_server").host.kernel_log.len()
    );
    assert!(read("boot/config-7.2.0-1-amd64").contains("CONFIG_PCI_P2PDMA=y\n"));
    assert!(read("boot/config-7.2.0-1-amd64").contains("# CONFIG_PCI_PASID is not set\n"));
}

#[test]
fn nonroot_view_keeps_text_attributes() {
    let dir = built("nonroot");
    let dev = dir.path().join("sys/bus/pci/devices/0000:43:00.0");
    assert_eq!(fs::metadata(dev.join("config")).unwrap().len(), 64);
    assert_eq!(
        fs::read_to_string(dev.join("current_link_speed")).unwrap(),
        "16.0 GT/s PCIe\n"
    );
    assert_eq!(
        fs::read_to_string(dev.join("max_link_width")).unwrap(),
        "16\n"
    );
}

#[test]
fn hostile_spec_builds_its_traps() {
    let dir = built("hostile");
    let root = dir.path();
    let devs = root.join("sys/bus/pci/devices");
    assert_eq!(
        fs::metadata(devs.join("0000:00:01.0/config"))
            .unwrap()
            .len(),
        30
    );
    let dead = fs::read(devs.join("0000:02:00.0/config")).unwrap();
    assert!(dead.iter().all(|&b| b == 0xff));
    let looped = fs::read(devs.join("0000:01:00.0/config")).unwrap();
    assert_eq!(looped[0x41], 0x40);
    assert!(!devs.join("0000:03:00.0/config").exists());
    assert_eq!(
        fs::read_to_string(devs.join("0000:00:03.0/numa_node")).unwrap(),
        "garbage\n"
    );
    assert_eq!(
        fs::read_to_string(devs.join("0000:03:00.0/p2pmem/size")).unwrap(),
        "lots\n"
    );
    assert!(
        fs::symlink_metadata(devs.join("0000:ff:00.0"))
            .unwrap()
            .is_symlink()
    );
    assert!(
        !devs.join("0000:fe:00.0").exists(),
        "dangling link must dangle"
    );
    assert!(
        !devs.join("0000:03:00.0/iommu_group").exists(),
        "dangling group link"
    );
}

#[test]
fn large_server_has_the_requested_function_count() {
    for n in [1, 5, 17, 100, 600, 4096] {
        assert_eq!(large_server(n).function_count().unwrap(), n, "n = {n}");
    }
    let spec = large_server(4096);
    // ~190k files: tmpfs takes about a second, a slow disk can take a minute.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let started = Instant::now();
    build(&spec, dir.path()).unwrap();
    let took = started.elapsed();
    let devices = fs::read_dir(dir.path().join("sys/bus/pci/devices"))
        .unwrap()
        .count();
    assert_eq!(devices, 4096);
    println!("large_server(4096): built {devices} functions in {took:.2?}");
    let nodes: std::collections::BTreeSet<String> = ["0000:00:00.0", "0000:e0:00.0"]
        .iter()
        .filter_map(|b| {
            fs::read_to_string(
                dir.path()
                    .join("sys/bus/pci/devices")
                    .join(b)
                    .join("numa_node"),
            )
            .ok()
        })
        .collect();
    assert_eq!(nodes.len(), 2, "both sockets are used: {nodes:?}");
}

// ---------------------------------------------------------------------------
// lspci oracle

fn lspci(root: &Path, args: &[&str]) -> Option<String> {
    let sysfs = format!("sysfs.path={}", root.join("sys/bus/pci").display());
    let out = Command::new("lspci")
        .args(["-A", "linux-sysfs", "-O", &sysfs])
        .args(args)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "lspci {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn have_lspci() -> bool {
    let ok = Command::new("lspci")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: lspci not found; skipping the lspci oracle test");
    }
    ok
}

/// `lspci -vvv` split into one block per device, keyed by `bb:dd.f`.
fn blocks(vvv: &str) -> BTreeMap<String, String> {
    vvv.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let b = b.trim_start_matches('\n');
            let slot = b.split_whitespace().next().unwrap();
            // lspci prints domains on every line once any domain is non-zero.
            let slot = slot.strip_prefix("0000:").unwrap_or(slot);
            (slot.to_string(), b.to_string())
        })
        .collect()
}

fn assert_has(blocks: &BTreeMap<String, String>, dev: &str, wanted: &[&str]) {
    let b = blocks
        .get(dev)
        .unwrap_or_else(|| panic!("lspci did not list {dev}"));
    for w in wanted {
        assert!(b.contains(w), "lspci block for {dev} lacks {w:?}:\n{b}");
    }
}

/// No decoding noise anywhere, and every sysfs device listed with the
/// IOMMU group and NUMA node the fixture gave it.
fn assert_clean(root: &Path, vvv: &str) {
    for noise in [
        "<?>",
        "<unavailable>",
        "chain broken",
        "chain looped",
        "!!!",
        "<access denied>",
        "Unknown header",
    ] {
        assert!(!vvv.contains(noise), "lspci printed {noise:?}:\n{vvv}");
    }
    let blocks = blocks(vvv);
    let devices: Vec<String> = fs::read_dir(root.join("sys/bus/pci/devices"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(blocks.len(), devices.len());
    for bdf in devices {
        let short = bdf.strip_prefix("0000:").unwrap_or(&bdf).to_string();
        let dir = root.join("sys/bus/pci/devices").join(&bdf);
        let mut wanted = Vec::new();
        if let Ok(g) = fs::read_link(dir.join("iommu_group")) {
            wanted.push(format!(
                "IOMMU group: {}",
                g.file_name().unwrap().to_str().unwrap()
            ));
        }
        let numa = fs::read_to_string(dir.join("numa_node")).unwrap();
        if numa.trim() != "-1" {
            wanted.push(format!("NUMA node: {}", numa.trim()));
        }
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        assert_has(&blocks, &short, &wanted);
    }
}

#[test]
fn lspci_agrees_with_two_socket_server() {
    if !have_lspci() {
        return;
    }
    let dir = built("two_socket_server");
    let root = dir.path();
    let tree = lspci(root, &["-tv"]).unwrap();
    for line in [
        "-[0000:40]-+-00.0",
        "\\-02.0-[41-48]----00.0-[42-48]--+-00.0-[43]----00.0  NVIDIA Corporation",
        "+-04.0-[47]----00.0  Samsung Electronics Co Ltd NVMe SSD Controller PM173X",
        "\\-05.0-[48]--+-00.0  Mellanox Technologies MT2892 Family [ConnectX-6 Dx]",
        "\\-00.3  Mellanox Technologies ConnectX Family mlx5Gen Virtual Function",
        "\\-[0000:c0]-+-00.0",
    ] {
        assert!(tree.contains(line), "lspci -tv lacks {line:?}:\n{tree}");
    }
    let vvv = lspci(root, &["-vvv"]).unwrap();
    assert_clean(root, &vvv);
    let b = blocks(&vvv);
    assert_has(
        &b,
        "00:00.1",
        &["Express (v2) Root Complex Integrated Endpoint"],
    );
    assert_has(
        &b,
        "00:00.4",
        &["Express (v2) Root Complex Event Collector"],
    );
    assert_has(
        &b,
        "40:02.0",
        &[
            "Express (v2) Root Port (Slot+)",
            "LnkCap:\tPort #2, Speed 16GT/s, Width x16",
            "LnkSta:\tSpeed 16GT/s, Width x16",
            "Bus: primary=40, secondary=41, subordinate=48",
            "ACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans+",
            "ACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-",
            "Downstream Port Containment",
            "Kernel driver in use: pcieport",
        ],
    );
    assert_has(
        &b,
        "41:00.0",
        &[
            "Express (v2) Upstream Port",
            "Bus: primary=41, secondary=42, subordinate=48",
        ],
    );
    assert_has(
        &b,
        "42:04.0",
        &[
            "Express (v2) Downstream Port (Slot+)",
            "Slot #24",
            "ACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+",
        ],
    );
    assert_has(
        &b,
        "43:00.0",
        &[
            "3D controller: NVIDIA Corporation",
            "Express (v2) Endpoint",
            "LnkCap:\tPort #0, Speed 32GT/s, Width x16",
            "LnkSta:\tSpeed 16GT/s (downgraded), Width x16",
            "Region 1: Memory at",
            "(64-bit, prefetchable) [size=128G]",
            "Physical Resizable BAR",
            "Device Serial Number 48-b0-2d-03-00-00-00-01",
            "DeviceName: GPU0",
            "Kernel driver in use: nvidia",
        ],
    );
    assert_has(
        &b,
        "46:00.0",
        &[
            "LnkSta:\tSpeed 8GT/s (downgraded), Width x8 (downgraded)",
            "CESta:\tRxErr+",
        ],
    );
    assert_has(
        &b,
        "47:00.0",
        &[
            "Non-Volatile memory controller",
            "Region 2: Memory at",
            "[size=64M]",
            "Kernel driver in use: nvme",
        ],
    );
    assert_has(
        &b,
        "48:00.0",
        &[
            "ATSCtl:\tEnable+",
            "Alternative Routing-ID Interpretation (ARI)",
            "Single Root I/O Virtualization (SR-IOV)",
            "Number of VFs: 2",
            "VF offset: 2, stride: 1, Device ID: 101e",
        ],
    );
    assert_has(
        &b,
        "48:00.2",
        &["[virtual] [size=1M]", "Kernel driver in use: mlx5_core"],
    );
    assert_has(
        &b,
        "c1:00.0",
        &["NUMA node: 1", "LnkSta:\tSpeed 32GT/s, Width x16"],
    );
}

#[test]
fn lspci_agrees_with_acs_switch() {
    if !have_lspci() {
        return;
    }
    let dir = built("acs_switch");
    let root = dir.path();
    let tree = lspci(root, &["-tv"]).unwrap();
    for line in [
        "+-02.0-[01-04]----00.0",
        "\\-03.0-[05-0a]----00.0-[06-0a]--+-08.0-[07]----00.0",
        "+-0a.0-[09]----00.0",
        "\\-10.0-[0a]----00.0  NVIDIA Corporation GA100 [A100 PCIe 80GB]",
    ] {
        assert!(tree.contains(line), "lspci -tv lacks {line:?}:\n{tree}");
    }
    let vvv = lspci(root, &["-vvv"]).unwrap();
    assert_clean(root, &vvv);
    let b = blocks(&vvv);
    let cap =
        "ACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl+ DirectTrans+";
    let port = "Express (v2) Downstream Port (Slot+)";
    assert_has(
        &b,
        "05:00.0",
        &[
            "Express (v2) Upstream Port",
            "LnkSta:\tSpeed 8GT/s, Width x16",
        ],
    );
    assert_has(
        &b,
        "06:08.0",
        &[
            port,
            cap,
            "ACSCtl:\tSrcValid- TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd- EgressCtrl- DirectTrans-",
        ],
    );
    assert_has(
        &b,
        "06:09.0",
        &[
            port,
            cap,
            "ACSCtl:\tSrcValid- TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd- EgressCtrl- DirectTrans-",
        ],
    );
    assert_has(
        &b,
        "06:0a.0",
        &[
            port,
            cap,
            "ACSCtl:\tSrcValid- TransBlk- ReqRedir+ CmpltRedir- UpstreamFwd- EgressCtrl- DirectTrans-",
        ],
    );
    assert_has(
        &b,
        "06:10.0",
        &[
            port,
            cap,
            "ACSCtl:\tSrcValid- TransBlk- ReqRedir- CmpltRedir- UpstreamFwd- EgressCtrl+ DirectTrans+",
        ],
    );
    assert_has(
        &b,
        "07:00.0",
        &[
            "Express (v2) Endpoint",
            "LnkCap:\tPort #0, Speed 16GT/s, Width x4",
            "LnkSta:\tSpeed 8GT/s (downgraded), Width x4",
        ],
    );
    assert_has(&b, "0a:00.0", &["ATSCtl:\tEnable+"]);
}

#[test]
fn lspci_agrees_with_multifunction() {
    if !have_lspci() {
        return;
    }
    let dir = built("multifunction");
    let root = dir.path();
    let tree = lspci(root, &["-tv"]).unwrap();
    assert!(
        tree.contains("\\-03.0-[01]--+-00.0  Red Hat, Inc. QEMU NVM Express Controller"),
        "{tree}"
    );
    assert!(
        tree.contains("\\-00.1  Red Hat, Inc. QEMU NVM Express Controller"),
        "{tree}"
    );
    let vvv = lspci(root, &["-vvv"]).unwrap();
    assert_clean(root, &vvv);
    let b = blocks(&vvv);
    assert_has(
        &b,
        "00:03.0",
        &[
            "Express (v2) Root Port (Slot+)",
            "LnkCap:\tPort #3, Speed 2.5GT/s, Width x1",
            "ACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-",
            "ACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-",
        ],
    );
    // The two functions of one device without ACS share an IOMMU group.
    assert_has(&b, "01:00.0", &["IOMMU group: 2", "Express (v2) Endpoint"]);
    assert_has(&b, "01:00.1", &["IOMMU group: 2"]);
    // Header type byte 0x0e carries the multi-function bit.
    let hex = lspci(root, &["-xxx", "-s", "01:00.1"]).unwrap();
    let row0 = hex.lines().find(|l| l.starts_with("00:")).unwrap();
    let header_type = row0.split_whitespace().nth(15).unwrap();
    assert_eq!(header_type, "80", "{hex}");
}

#[test]
fn lspci_sees_only_the_header_in_the_nonroot_view() {
    if !have_lspci() {
        return;
    }
    let dir = built("nonroot");
    let vvv = lspci(dir.path(), &["-vvv"]).unwrap();
    let b = blocks(&vvv);
    assert_has(
        &b,
        "43:00.0",
        &["Capabilities: <access denied>", "NUMA node: 0"],
    );
    assert!(!vvv.contains("ACSCtl"));
}

#[test]
fn lspci_follows_the_vmd_domain() {
    if !have_lspci() {
        return;
    }
    let dir = built("vmd");
    let tree = lspci(dir.path(), &["-tv"]).unwrap();
    assert!(tree.contains("[10000:e0]-+-02.0-[e1]----00.0"), "{tree}");
}

#[test]
fn lspci_decodes_the_other_specs_without_noise() {
    if !have_lspci() {
        return;
    }
    for name in ["desktop_rc_only", "amd_host", "intel_whitelisted", "vmd"] {
        let dir = built(name);
        let vvv = lspci(dir.path(), &["-vvv"]).unwrap();
        assert_clean(dir.path(), &vvv);
    }
}

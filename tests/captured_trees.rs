//! Captured trees as people really make them: copies that followed the
//! sysfs links (`cp -rL`, `tar -h`), and captures that pruned a bridge.
//! Built from the fixture specs at test time and run through the binary.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

/// Copies `from` to `to` keeping links as links (`cp -a`).
fn copy_tree(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// What a copy that followed links leaves of one device directory: its
/// regular files, its `p2pmem/` directory, and its `iommu_group` link as
/// a directory holding the group's `type` and its members' directories. Child devices, `driver`,
/// `subsystem` and the other links are left out (a real `cp -rL` of sysfs
/// loops through them; collection tools skip them).
fn followed_copy_of_device(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let ty = e.file_type().unwrap();
        let from = e.path();
        let to = dst.join(&name);
        if ty.is_file() {
            fs::copy(&from, &to).unwrap();
        } else if name == "p2pmem" && ty.is_dir() {
            followed_copy_of_device(&from, &to);
        } else if name == "iommu_group" && ty.is_symlink() {
            fs::create_dir_all(&to).unwrap();
            if let Ok(t) = fs::read(from.join("type")) {
                fs::write(to.join("type"), t).unwrap();
            }
            // devices/<member>: links there, directories in the copy.
            for m in fs::read_dir(from.join("devices")).into_iter().flatten() {
                let m = m.unwrap();
                fs::create_dir_all(to.join("devices").join(m.file_name())).unwrap();
            }
        }
    }
}

/// The spec's tree, with every `sys/bus/pci/devices/<bdf>` link replaced
/// by a followed copy of its directory and `sys/devices` gone.
fn followed_copy(spec: &str) -> (Built, tempfile::TempDir) {
    let built = build(spec);
    let out = tempfile::tempdir().unwrap();
    let root = out.path().join("root");
    copy_tree(&built.root(), &root);
    let bus = root.join("sys/bus/pci/devices");
    for e in fs::read_dir(&bus).unwrap() {
        let e = e.unwrap();
        let original = built.root().join("sys/bus/pci/devices").join(e.file_name());
        if !original.is_dir() {
            continue; // a dangling link (the hostile spec has some) stays one
        }
        fs::remove_file(e.path()).unwrap();
        followed_copy_of_device(&original, &e.path());
    }
    fs::remove_dir_all(root.join("sys/devices")).unwrap();
    (built, out)
}

/// (bdf, parent, host_bridge, role, depth) of every device.
fn placement(doc: &Value) -> Vec<(String, Value, Value, Value, Value)> {
    doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["bdf"].as_str().unwrap().to_string(),
                d["parent"].clone(),
                d["host_bridge"].clone(),
                d["role"].clone(),
                d["depth"].clone(),
            )
        })
        .collect()
}

/// What the kernel decides for every pair, by (provider, client).
fn decisions(doc: &Value) -> Vec<Value> {
    doc["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            serde_json::json!([
                p["provider"],
                p["client"],
                p["map_type"],
                p["distance"],
                p["acs_redirect"],
                p["common_upstream"],
                p["certain"],
                p["path_class"]
            ])
        })
        .collect()
}

fn kinds(doc: &Value) -> Vec<String> {
    doc["limitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Every spec but two: a VMD domain hangs a host bridge below an
/// endpoint, which bus numbers cannot show (each VMD domain numbers its
/// buses from its own start); the hostile spec's links point outside
/// sys/devices on purpose, which a followed copy cannot keep.
#[test]
fn followed_copies_are_nested_by_bus_numbers_exactly_as_sysfs_nests_them() {
    for spec in spec_names()
        .iter()
        .filter(|s| !["vmd", "hostile"].contains(&s.as_str()))
    {
        let (built, copy) = followed_copy(spec);
        let copy_root = copy.path().join("root");
        let want = json_on(&built.root(), &["topo", "--format", "json"]);
        let got = json_on(&copy_root, &["topo", "--format", "json"]);
        assert_eq!(placement(&got), placement(&want), "{spec}: placement");
        assert!(
            kinds(&got).contains(&"nesting_inferred".to_string()),
            "{spec}: {:?}",
            kinds(&got)
        );
        let want = json_on(&built.root(), &["check", "--all-pairs", "--format", "json"]);
        let got = json_on(&copy_root, &["check", "--all-pairs", "--format", "json"]);
        assert_eq!(decisions(&got), decisions(&want), "{spec}: pairs");
        // Drivers come from uevent when the driver link is gone.
        let drivers = |d: &Value| -> Vec<Value> {
            d["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["driver"].clone())
                .collect()
        };
        assert_eq!(drivers(&got), drivers(&want), "{spec}: drivers");
    }
}

/// The same on the trees a real kernel made in the lab (snapshots
/// unpacked): placement and every pair's decision agree. (Drivers are not
/// compared: a snapshot keeps the `driver` link, not `uevent`.)
#[test]
fn followed_copies_of_lab_trees_nest_like_the_kernel() {
    let lab = fixtures_dir().join("lab");
    let mut names: Vec<_> = fs::read_dir(&lab)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for archive in names {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(&tree).unwrap();
        let ok = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&tree)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tar -xzf {}", archive.display());
        let copy = dir.path().join("copy");
        copy_tree(&tree, &copy);
        let bus = copy.join("sys/bus/pci/devices");
        for e in fs::read_dir(&bus).unwrap() {
            let e = e.unwrap();
            let original = tree.join("sys/bus/pci/devices").join(e.file_name());
            fs::remove_file(e.path()).unwrap();
            followed_copy_of_device(&original, &e.path());
        }
        fs::remove_dir_all(copy.join("sys/devices")).unwrap();
        let name = archive.display();
        let want = json_on(&tree, &["topo", "--format", "json"]);
        let got = json_on(&copy, &["topo", "--format", "json"]);
        assert_eq!(placement(&got), placement(&want), "{name}: placement");
        let want = json_on(&tree, &["check", "--all-pairs", "--format", "json"]);
        let got = json_on(&copy, &["check", "--all-pairs", "--format", "json"]);
        assert_eq!(decisions(&got), decisions(&want), "{name}: pairs");
    }
}

/// A capture that pruned switch downstream port 06:08.0 (above the P2P
/// provider 07:00.0): the provider keeps the switch and root port above
/// it, the gap stays in the tree with unknown registers, and pairs through
/// it are uncertain rather than called not_supported.
#[test]
fn a_pruned_bridge_is_kept_as_a_gap_not_dropped_with_the_bridges_above_it() {
    let built = build("acs_switch");
    let root = built.root();
    fs::remove_file(root.join("sys/bus/pci/devices/0000:06:08.0")).unwrap();
    let topo = json_on(&root, &["topo", "--format", "json"]);
    let dev = |bdf: &str| -> Value {
        topo["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["bdf"] == bdf)
            .cloned()
            .unwrap_or_else(|| panic!("{bdf} not in the tree"))
    };
    let gap = dev("0000:06:08.0");
    assert_eq!(gap["missing"], true);
    assert_eq!(gap["parent"], "0000:05:00.0");
    assert_eq!(gap["role"], "switch_downstream_port");
    assert_eq!(gap["role_inferred"], true);
    assert_eq!(dev("0000:07:00.0")["parent"], "0000:06:08.0");
    assert_eq!(dev("0000:07:00.0")["depth"], 3);
    assert_eq!(dev("0000:06:09.0").get("missing"), None);
    assert!(kinds(&topo).contains(&"bridge_missing".to_string()));

    let check = expand_pairs(&json_on(
        &root,
        &["check", "--all-pairs", "--format", "json"],
    ));
    let pair = check["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "0000:07:00.0" && p["client"] == "0000:08:00.0")
        .unwrap()
        .clone();
    // Still below one switch (06:09.0 has RR CR, so through the host
    // bridge), and the gap's ACS is named as unknown.
    assert_eq!(pair["common_upstream"], "0000:05:00.0");
    assert_eq!(pair["distance"], 4);
    assert_ne!(pair["map_type"], "not_supported");
    assert_eq!(pair["certain"], false);
    assert!(
        pair["unknown"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str().unwrap().contains("0000:06:08.0")),
        "{pair}"
    );
    let text = stdout_ok(&root, &["topo", "--color", "never"]);
    assert!(
        text.contains("0000:06:08.0 switch downstream? (not in the input"),
        "{text}"
    );
}

/// A bridge with only endpoints below it, its registers unreadable (not
/// root), below a root port: a PCIe-to-PCI bridge (a BMC's VGA bridge),
/// never inferred to be a switch upstream port without downstream ports.
#[test]
fn a_bridge_with_only_endpoints_below_is_not_inferred_to_be_a_switch() {
    let built = build("nonroot");
    let topo = json_on(&built.root(), &["topo", "--format", "json"]);
    for d in topo["devices"].as_array().unwrap() {
        if d["role"] == "switch_upstream_port" && d["role_inferred"] == true {
            let bdf = d["bdf"].as_str().unwrap();
            let has_port_below = topo["devices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["parent"] == bdf && c["role"].as_str().unwrap().contains("port"));
            assert!(
                has_port_below,
                "{bdf} inferred a switch with no ports below"
            );
        }
    }
    // The shape in isolation: root port → bridge → VGA endpoint.
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"
config_truncate = 64
[host]
hostname = "bmc-vga"
[[host_bridge]]
domain = 0
bus = 0
  [[host_bridge.device]]
  slot = "00.0"
  kind = "host_bridge_device"
  vendor = 0x8086
  device = 0x09a2
  class = 0x060000
  [[host_bridge.device]]
  slot = "1c.0"
  kind = "root_port"
  vendor = 0x8086
  device = 0xa190
  link = { speed = 1, width = 1 }
    [[host_bridge.device.children]]
    slot = "00.0"
    kind = "pcie_to_pci_bridge"
    vendor = 0x1a03
    device = 0x1150
      [[host_bridge.device.children.children]]
      slot = "00.0"
      kind = "conventional"
      vendor = 0x1a03
      device = 0x2000
      class = 0x030000
"#;
    let spec = p2pdoctor_fixture::Spec::from_toml(spec).unwrap();
    p2pdoctor_fixture::build(&spec, &dir.path().join("root")).unwrap();
    let topo = json_on(&dir.path().join("root"), &["topo", "--format", "json"]);
    let bridge = topo["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["bdf"] == "0000:01:00.0")
        .unwrap()
        .clone();
    assert_eq!(bridge["role"], "pcie_to_pci_bridge", "{bridge}");
    assert_eq!(bridge["role_inferred"], true);
    assert!(topo["switches"].as_array().unwrap().is_empty());
}

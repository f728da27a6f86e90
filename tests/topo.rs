//! `p2pdoctor topo` and `snapshot` run as a user would, on fixture trees.

mod common;

use common::*;
use serde_json::Value;

fn schema() -> Value {
    common::schema::load("topo")
}

fn device<'a>(doc: &'a Value, bdf: &str) -> &'a Value {
    doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["bdf"] == bdf)
        .unwrap_or_else(|| panic!("no device {bdf}"))
}

/// Every fixture: every format works, and the JSON keeps its contract.
#[test]
fn every_fixture_renders_in_every_format_and_json_matches_the_schema() {
    let schema = schema();
    for name in spec_names() {
        let built = build(&name);
        let root = built.root();
        for args in [
            &["topo"][..],
            &["topo", "--format", "dot"],
            &["topo", "--dot"],
            &["topo", "--color", "always"],
        ] {
            let out = stdout_ok(&root, args);
            assert!(!out.is_empty(), "{name} {args:?}: empty output");
        }
        let doc = topo_json(&root);
        let errors = common::schema::validate(&schema, &doc);
        assert!(
            errors.is_empty(),
            "{name}: JSON breaks its schema:\n{}",
            errors.join("\n")
        );
        let devices = doc["devices"].as_array().unwrap();
        assert!(!devices.is_empty(), "{name}: no devices");
        let bdfs: std::collections::HashSet<&str> =
            devices.iter().map(|d| d["bdf"].as_str().unwrap()).collect();
        for d in devices {
            d["bdf"]
                .as_str()
                .unwrap()
                .parse::<p2pdoctor::pci::Bdf>()
                .unwrap();
            if let Some(p) = d["parent"].as_str() {
                assert!(
                    bdfs.contains(p),
                    "{name}: parent {p} of {} is not a device",
                    d["bdf"]
                );
            }
        }
    }
}

/// A snapshot of a tree analyses to the same model as the tree itself.
#[test]
fn snapshot_round_trip_gives_the_same_model() {
    for name in spec_names() {
        let built = build(&name);
        let root = built.root();
        let archive = built.dir.path().join("snap.tar.gz");
        let out = run(&root, &["snapshot", "-o", archive.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut direct = topo_json(&root);
        let mut again = topo_json(&archive);
        direct["source"] = Value::Null;
        again["source"] = Value::Null;
        assert_eq!(direct, again, "{name}: snapshot analyses differently");
        let direct_text = stdout_ok(&root, &["topo", "--color", "never"]);
        let again_text = stdout_ok(&archive, &["topo", "--color", "never"]);
        let strip = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("source:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&direct_text), strip(&again_text), "{name}");
    }
}

#[test]
fn snapshot_manifest_lists_what_is_inside_and_refuses_to_overwrite() {
    let built = build("two_socket_server");
    let root = built.root();
    let archive = built.dir.path().join("snap.tar.gz");
    assert!(
        run(&root, &["snapshot", "-o", archive.to_str().unwrap()])
            .status
            .success()
    );
    let out = run(&root, &["snapshot", "-o", archive.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(
        run(
            &root,
            &["snapshot", "-o", archive.to_str().unwrap(), "--force"]
        )
        .status
        .success()
    );

    let file = std::fs::File::open(&archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut names = Vec::new();
    let mut manifest = None;
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "p2pdoctor-manifest.json" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(serde_json::from_str::<Value>(&s).unwrap());
        }
        names.push(name);
    }
    let manifest = manifest.expect("manifest");
    common::schema::assert_valid("snapshot", &manifest);
    assert_eq!(manifest["format"], "p2pdoctor-snapshot");
    assert_eq!(manifest["schema_version"], 1);
    assert!(manifest["contents"].as_array().unwrap().len() >= 5);
    assert!(names.iter().any(|n| n.ends_with("/config")));
    // Only what the analysis reads: nothing outside sys/, proc/, boot/ and our own files.
    for n in &names {
        assert!(
            n.starts_with("sys/")
                || n.starts_with("proc/")
                || n.starts_with("boot/")
                || n.starts_with("p2pdoctor-"),
            "unexpected member {n}"
        );
    }
}

#[test]
fn dot_output_is_valid_graphviz() {
    if !have_tool("dot") {
        return;
    }
    for name in spec_names() {
        let built = build(&name);
        let dot = stdout_ok(&built.root(), &["topo", "--dot"]);
        let mut child = std::process::Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), dot.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name}: dot rejected:\n{}\n{dot}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
        assert!(
            String::from_utf8_lossy(&out.stderr).trim().is_empty(),
            "{name}: dot warned: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_roots_fail_with_exit_3_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tar.gz");
    std::fs::write(&junk, b"not an archive").unwrap();
    for (root, needle) in [
        (dir.path().join("missing"), "cannot open"),
        (junk, "not a gzip or tar file"),
    ] {
        let out = run(&root, &["topo"]);
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
    let out = p2pdoctor()
        .args(["topo", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn output_file_is_written_whole() {
    let built = build("desktop_rc_only");
    let out_file = built.dir.path().join("t.json");
    let out = run(
        &built.root(),
        &["topo", "--format", "json", "-o", out_file.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let v: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1);
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let built = build("acs_switch");
    let root = built.root();
    assert!(stdout_ok(&root, &["topo", "--color", "always"]).contains("\x1b["));
    assert!(!stdout_ok(&root, &["topo", "--color", "never"]).contains("\x1b["));
    // Piped stdout under auto: no colour.
    assert!(!stdout_ok(&root, &["topo"]).contains("\x1b["));
    let out = p2pdoctor()
        .env("NO_COLOR", "1")
        .arg("--root")
        .arg(&root)
        .arg("topo")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\x1b["));
}

/// Real kernel-made trees captured with `p2pdoctor snapshot` on a CI-like
/// VM (virtio devices on conventional PCI), as root and as a plain user.
#[test]
fn captures_from_a_real_kernel_as_root_and_not() {
    let dir = fixtures_dir().join("captures");
    let root_doc = topo_json(&dir.join("ci_vm_root.tar.gz"));
    let blk = device(&root_doc, "0000:00:02.0");
    assert_eq!(blk["block_devices"], serde_json::json!(["vda"]));
    assert_eq!(blk["role"], "pci_device");
    assert_eq!(blk["role_inferred"], false);
    assert_eq!(blk["config_bytes"], 256);
    assert!(root_doc["limitations"].as_array().unwrap().is_empty());
    assert_eq!(
        device(&root_doc, "0000:00:00.0")["role"],
        "host_bridge_device"
    );

    let user = dir.join("ci_vm_nonroot.tar.gz");
    let doc = topo_json(&user);
    let blk = device(&doc, "0000:00:02.0");
    assert_eq!(blk["config_bytes"], 64);
    assert_eq!(blk["role_inferred"], true);
    assert_eq!(blk["port_type"], Value::Null);
    assert_eq!(blk["acs"], Value::Null);
    let kinds: Vec<&str> = doc["limitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["config_truncated"]);
    // Said once, clearly, in the human output too.
    let text = stdout_ok(&user, &["topo", "--color", "never"]);
    assert_eq!(text.matches("Run as root").count(), 1, "{text}");
    assert!(text.contains("endpoint?"), "{text}");
}

/// Snapshots a real Linux 7.2 kernel made of itself in the QEMU lab
/// (lab/README.md): the model must show the emulated hardware as built.
#[test]
fn lab_snapshots_from_a_real_kernel_read_as_built() {
    let lab = fixtures_dir().join("lab");
    let doc = |name: &str| topo_json(&lab.join(format!("{name}.tar.gz")));
    let role = |d: &Value, bdf: &str| device(d, bdf)["role"].as_str().unwrap().to_string();
    let acs_ctrl = |d: &Value, bdf: &str| device(d, bdf)["acs"]["ctrl"].as_u64();

    // 1: one x3130 switch, two downstream ports, the CMB published as p2pmem.
    let d = doc("01-switch");
    assert_eq!(d["switches"].as_array().unwrap().len(), 1);
    assert_eq!(d["switches"][0]["upstream"], "0000:01:00.0");
    assert_eq!(
        d["switches"][0]["downstream"],
        serde_json::json!(["0000:02:00.0", "0000:02:01.0"])
    );
    assert_eq!(role(&d, "0000:00:03.0"), "root_port");
    assert_eq!(device(&d, "0000:03:00.0")["p2pmem"]["published"], true);
    assert_eq!(device(&d, "0000:03:00.0")["p2pmem"]["size"], 16 << 20);
    assert_eq!(device(&d, "0000:03:00.0")["parent"], "0000:02:00.0");
    assert_eq!(d["host_bridges"][0]["first_device_id"], "8086:29c0");
    assert_eq!(d["host"]["p2pdma_config"], true);
    assert_eq!(d["nvme"].as_array().unwrap().len(), 2);

    // 3: the IOMMU made the kernel enable ACS on the root port: SV RR CR UF.
    let d = doc("03-multifunction-iommu");
    assert_eq!(acs_ctrl(&d, "0000:00:03.0"), Some(0x1d));
    assert_eq!(device(&d, "0000:00:03.0")["acs"]["redirects"], true);
    assert_eq!(
        device(&d, "0000:01:00.0")["iommu_group"],
        device(&d, "0000:01:00.1")["iommu_group"]
    );
    assert!(d["kernel_log"].as_array().unwrap().iter().any(|l| {
        l.as_str()
            .unwrap()
            .contains("pci=disable_acs_redir=0000:00:03.0")
    }));

    // 7: the same with pci=disable_acs_redir=: the kernel cleared RR CR EC.
    let d = doc("07-disable-acs-redir");
    assert_eq!(
        d["host"]["cmdline"]["disable_acs_redir"],
        serde_json::json!(["0000:00:03.0"])
    );
    assert_eq!(acs_ctrl(&d, "0000:00:03.0").map(|c| c & 0x2c), Some(0));

    // 5: -cpu EPYC is AMD family 0x17, what cpu_supports_p2pdma() wants.
    let d = doc("05-epyc-root-ports");
    assert_eq!(d["host"]["cpu"]["vendor"], "AuthenticAMD");
    assert_eq!(d["host"]["cpu"]["family"], 0x17);

    // 8: pxb-pcie adds host bridges; each device sits below its own.
    let d = doc("08-host-bridges");
    let ids: Vec<&str> = d["host_bridges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pci0000:00", "pci0000:20", "pci0000:40"]);
    assert_eq!(device(&d, "0000:21:00.0")["host_bridge"], "pci0000:20");

    // 9: a switch below a switch.
    let d = doc("09-cascaded-switches");
    assert_eq!(d["switches"].as_array().unwrap().len(), 2);
    assert_eq!(role(&d, "0000:03:00.0"), "switch_upstream_port");
    assert_eq!(device(&d, "0000:05:00.0")["depth"], 5);

    // 10: no CMB, no provider.
    let d = doc("10-no-cmb");
    assert!(
        d["devices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["p2pmem"].is_null())
    );
}

/// SR-IOV virtual functions read all ones in their Vendor and Device ID
/// registers by design; their identity comes from the kernel's attributes.
#[test]
fn virtual_functions_take_their_ids_from_sysfs() {
    let built = common::build("two_socket_server");
    let v = common::topo_json(&built.root());
    let vfs: Vec<&serde_json::Value> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| ["0000:48:00.2", "0000:48:00.3"].contains(&d["bdf"].as_str().unwrap()))
        .collect();
    assert_eq!(vfs.len(), 2);
    for d in vfs {
        assert_eq!(d["vendor_id"], "15b3", "{d:#}");
        assert_eq!(d["device_id"], "101e", "{d:#}");
    }
}

/// An SR-IOV VF's Vendor and Device ID registers read all ones; the scan
/// takes the kernel's values from the PF (its vendor, and the VF Device ID
/// of its SR-IOV capability) instead of two more files per VF. They must
/// be what sysfs' `vendor` and `device` attributes say, also when the PF's
/// extended space cannot be read (a non-root scan), where the scan falls
/// back to those attributes.
#[test]
fn virtual_functions_have_the_identity_sysfs_gives_them() {
    let built = build("two_socket_server");
    let root = built.root();
    let devices = root.join("sys/bus/pci/devices");
    let attr = |bdf: &str, a: &str| {
        let s = std::fs::read_to_string(devices.join(bdf).join(a)).unwrap();
        s.trim().trim_start_matches("0x").to_string()
    };
    let check = |doc: &Value| {
        let vfs: Vec<&Value> = doc["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                devices
                    .join(d["bdf"].as_str().unwrap())
                    .join("physfn")
                    .exists()
            })
            .collect();
        assert!(!vfs.is_empty(), "the fixture has VFs");
        for vf in vfs {
            let bdf = vf["bdf"].as_str().unwrap();
            let config = std::fs::read(devices.join(bdf).join("config")).unwrap();
            assert_eq!(
                &config[..4],
                &[0xff; 4],
                "{bdf}: a VF's ID registers read all ones"
            );
            assert_eq!(vf["vendor_id"], attr(bdf, "vendor"), "{bdf}");
            assert_eq!(vf["device_id"], attr(bdf, "device"), "{bdf}");
        }
    };
    check(&topo_json(&root));
    // The PFs as a non-root scan sees them: 64 bytes of config space.
    let mut pfs = 0;
    for entry in std::fs::read_dir(&devices).unwrap() {
        let dir = entry.unwrap().path();
        if std::fs::read_dir(&dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("virtfn")
        }) {
            let config = std::fs::read(dir.join("config")).unwrap();
            std::fs::write(dir.join("config"), &config[..64]).unwrap();
            pfs += 1;
        }
    }
    assert!(pfs > 0, "the fixture's PFs link their VFs");
    check(&topo_json(&root));
}

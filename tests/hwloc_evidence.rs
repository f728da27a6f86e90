//! hwloc exports as evidence: `lstopo --of xml --whole-io`, run by the
//! real hwloc on every fixture tree (HWLOC_FSROOT points its Linux
//! discovery at the tree), read back with `--root FILE.xml`. The PCI tree
//! (nesting, host bridges, IDs, class) must equal the tree's own; what an
//! export does not carry (config space: port types, ACS) must be unknown,
//! and pairs where the evidence is certain must agree with the tree.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

fn by(doc: &Value, key: &str, f: impl Fn(&Value) -> String) -> BTreeMap<String, Value> {
    doc[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (f(d), d.clone()))
        .collect()
}

#[test]
fn hwloc_exports_give_the_trees_pci_hierarchy() {
    if !have_tool("lstopo-no-graphics") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut compared = 0;
    // hwloc does not look below VMD domains; `hostile` breaks readers.
    for name in spec_names()
        .into_iter()
        .filter(|n| n != "hostile" && n != "vmd")
    {
        let built = build(&name);
        let root = built.root();
        let out = std::process::Command::new("lstopo-no-graphics")
            .args(["--of", "xml", "--whole-io"])
            .env("HWLOC_FSROOT", &root)
            .output()
            .unwrap();
        // The CPU and OS lines describe the machine running the test, not
        // the fixture: dropped, as an export of the fixture would not have
        // them. (On a real export they are the exporter's, and are used.)
        let xml: String = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                !["name=\"OS", "name=\"CPU", "name=\"HostName"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let file = work.path().join(format!("{name}.xml"));
        std::fs::write(&file, &xml).unwrap();
        let topo = json_on(&file, &["topo", "--format", "json"]);
        common::schema::assert_valid("topo", &topo);
        let truth = topo_json(&root);
        let bdf = |d: &Value| d["bdf"].as_str().unwrap().to_string();
        let (ours, theirs) = (by(&topo, "devices", bdf), by(&truth, "devices", bdf));
        for (b, t) in &theirs {
            let o = ours.get(b).unwrap_or_else(|| panic!("{name}: {b} missing"));
            for k in ["parent", "host_bridge", "vendor_id", "device_id"] {
                assert_eq!(o[k], t[k], "{name} {b}: {k}");
            }
            // hwloc keeps base class and sub-class, not the prog-if.
            let class = |v: &Value| v.as_str().map(|s| s[..4].to_string());
            assert_eq!(class(&o["class"]), class(&t["class"]), "{name} {b}: class");
            assert_eq!(o["source"], "hwloc", "{name} {b}");
            assert!(
                o["acs"].is_null() && o["port_type"].is_null(),
                "{name} {b}: config is not in an export"
            );
            compared += 1;
        }
        let check = json_on(&file, &["check", "--format", "json"]);
        let truth = serde_json::from_str::<Value>(
            &String::from_utf8(run(&root, &["check", "--all-pairs", "--format", "json"]).stdout)
                .unwrap(),
        )
        .unwrap();
        let pair = |p: &Value| format!("{} {}", p["provider"], p["client"]);
        let (ours, theirs) = (by(&check, "pairs", pair), by(&truth, "pairs", pair));
        for (k, t) in &theirs {
            let Some(o) = ours.get(k) else { continue };
            if o["certain"] == true {
                for f in ["map_type", "distance", "acs_redirect", "path_class"] {
                    assert_eq!(o[f], t[f], "{name} {k}: {f}");
                }
            }
        }
    }
    assert!(compared > 100, "{compared} devices compared");
}

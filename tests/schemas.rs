//! The schemas in schema/ are closed contracts, and the checker in
//! tests/common/schema.rs holds them so: every object schema declares
//! `additionalProperties`, and a field the output carries that its schema
//! does not name fails validation (planted here, at several depths, into
//! real output).

mod common;

use common::schema::{lint, load, validate};
use common::*;
use serde_json::{Value, json};

/// Every schema file, by name (`topo` for schema/topo.schema.json).
fn schema_names() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".schema.json")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_schema_closes_every_object() {
    let names = schema_names();
    assert!(
        names.len() >= 7,
        "schema/ holds the seven documents: {names:?}"
    );
    for name in names {
        let errors = lint(&load(&name));
        assert!(
            errors.is_empty(),
            "schema/{name}.schema.json leaves objects open:\n{}",
            errors.join("\n")
        );
    }
}

#[test]
fn an_object_schema_without_additional_properties_is_an_error() {
    let open = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "a": { "type": "object", "properties": { "b": { "type": "integer" } } },
            "c": { "type": "array", "items": { "anyOf": [{ "type": "null" }, { "type": ["object", "null"] }] } },
            "d": { "type": "object", "additionalProperties": true, "properties": {} }
        },
        "$defs": { "e": { "properties": {} } }
    });
    let errors = lint(&open);
    for at in [
        "#/properties/a:",
        "#/properties/c/items/anyOf/1:",
        "#/properties/d:",
        "#/$defs/e:",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(at)),
            "{at} not reported: {errors:#?}"
        );
    }
    assert_eq!(errors.len(), 4, "{errors:#?}");
    // A lax schema fails validation even of a value it would accept.
    assert!(!validate(&open, &json!({ "a": { "b": 1 } })).is_empty());
    // A map's values typed by a schema are closed too.
    let map = json!({
        "type": "object",
        "additionalProperties": { "type": "integer" }
    });
    assert!(lint(&map).is_empty());
    assert!(validate(&map, &json!({ "x": 1, "y": 2 })).is_empty());
    assert!(!validate(&map, &json!({ "x": "one" })).is_empty());
}

/// `doc` is valid; with `field` planted into the object at `pointer` it is
/// not, and the error names the field.
fn assert_plant_caught(schema: &Value, doc: &Value, pointer: &str, what: &str) {
    let errors = validate(schema, doc);
    assert!(
        errors.is_empty(),
        "{what}: valid before planting: {errors:#?}"
    );
    let mut planted = doc.clone();
    planted
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{what}: no object at {pointer}"))
        .insert("planted_extra".into(), json!(true));
    let errors = validate(schema, &planted);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`planted_extra` is not in the schema")),
        "{what}: a planted field at {pointer} passed: {errors:#?}"
    );
}

#[test]
fn a_field_planted_into_topo_output_fails_validation() {
    let schema = load("topo");
    let built = build("acs_switch");
    let doc = topo_json(&built.root());
    let link = doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .position(|d| d["link"].is_object())
        .expect("a device with a link");
    for pointer in [
        "",
        "/tool",
        "/host",
        "/host/cpu",
        "/devices/0",
        &format!("/devices/{link}/link"),
        "/host_bridges/0",
    ] {
        assert_plant_caught(&schema, &doc, pointer, "topo");
    }
}

#[test]
fn a_field_planted_into_check_output_fails_validation() {
    let schema = load("check");
    let built = build("acs_switch");
    let out = p2pdoctor()
        .args(["--root"])
        .arg(built.root())
        .args(["check", "--all-pairs", "--expand-pairs", "--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!doc["findings"].as_array().unwrap().is_empty());
    for pointer in [
        "",
        "/host",
        "/host/iommu",
        "/summary",
        "/devices/0",
        "/paths/0",
        "/pairs/0",
        "/findings/0",
        "/selection",
    ] {
        assert_plant_caught(&schema, &doc, pointer, "check");
    }
}

#[test]
fn a_field_planted_into_a_copy_report_fails_validation() {
    let schema = load("copy");
    // The shape `copy --format json` writes for a read that failed before
    // any pass (tests/confirm_copy.rs validates real runs).
    let pass = json!({
        "bytes": 4096, "seconds": 0.001, "gbps": 4.096, "iops": 1000.0,
        "latency_us": { "p50": 1.0, "p90": 1.0, "p99": 1.0, "p999": 1.0, "max": 1.0 },
        "failure": {
            "stage": "read /dev/nvme0n1", "offset": 0, "len": 4096, "errno": 22,
            "short": null, "errno_name": "EINVAL", "message": "read /dev/nvme0n1 at 0: EINVAL"
        }
    });
    let doc = json!({
        "schema_version": 1,
        "tool": { "name": "p2pdoctor", "version": "0.1.0" },
        "mode": "read",
        "src": { "path": "/dev/nvme0n1", "kind": "block-device", "size": 1048576, "offset": 0 },
        "dst": null,
        "via": { "kind": "p2pmem", "path": "/sys/bus/pci/devices/0000:03:00.0/p2pmem/allocate", "bdf": "0000:03:00.0", "buffer_bytes": 131072 },
        "params": { "chunk": 131072, "qd": 32, "engine": "uring", "size": 1048576, "duration_s": null, "repeat": 1, "verify": true, "baseline": true },
        "outcome": "refused",
        "errno": 22,
        "errno_name": "EINVAL",
        "message": "the kernel refused the P2P transfer",
        "runs": [{ "main": pass, "baseline": null, "verify": null }],
        "main": pass,
        "baseline": null,
        "ratio": null,
        "verify": { "bytes_compared": 0, "bytes_differ": 0, "first_mismatch": null, "untouched": 0, "stale_buffer": 0 },
        "kernel_log": [],
        "kernel_log_unavailable": null,
        "restore": { "journal": "/run/p2pdoctor/j", "restored": true, "bytes": 0, "message": "nothing written" },
        "notes": []
    });
    for pointer in [
        "",
        "/tool",
        "/src",
        "/via",
        "/params",
        "/runs/0",
        "/main/latency_us",
        "/main/failure",
        "/verify",
        "/restore",
    ] {
        assert_plant_caught(&schema, &doc, pointer, "copy");
    }
}

#[test]
fn a_field_planted_into_a_snapshot_manifest_fails_validation() {
    let schema = load("snapshot");
    let built = build("acs_switch");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("s.tar.gz");
    for redact in [false, true] {
        let mut cmd = p2pdoctor();
        cmd.arg("--root")
            .arg(built.root())
            .arg("snapshot")
            .arg("-o");
        cmd.arg(&archive).arg("--force");
        if redact {
            cmd.arg("--redact");
        }
        assert!(cmd.output().unwrap().status.success());
        let file = std::fs::File::open(&archive).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let manifest: Value = tar
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap().to_str() == Some("p2pdoctor-manifest.json"))
            .map(|e| serde_json::from_reader(e).unwrap())
            .expect("a manifest");
        let mut pointers = vec!["", "/tool"];
        if redact {
            assert!(
                !manifest["redacted"].as_array().unwrap().is_empty(),
                "the fixture has a host name to redact"
            );
            pointers.push("/redacted/0");
        }
        for pointer in pointers {
            assert_plant_caught(&schema, &manifest, pointer, "snapshot manifest");
        }
    }
}

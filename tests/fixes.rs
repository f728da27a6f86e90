//! Fixes people can paste (issue 14.6), through the real binary: kernel
//! parameters made persistent with the boot loader the fixture's files
//! show, an unbound device's driver named from its modules.alias, every
//! command whole on a line of its own and none ending in punctuation, and
//! the JSON `fix` object held to schema/check.schema.json.

mod common;

use std::path::{Path, PathBuf};

use common::{p2pdoctor, schema::assert_valid, snapshot, spec_names, variant_of};
use serde_json::Value;

/// `[host] key = value` in a spec.
fn set_host(v: &mut toml::Value, key: &str, value: toml::Value) {
    v.as_table_mut()
        .unwrap()
        .entry("host")
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .unwrap()
        .insert(key.to_string(), value);
}

fn with_boot(spec: &str, loader: &str) -> (tempfile::TempDir, PathBuf) {
    variant_of(spec, |v| {
        set_host(v, "boot_loader", toml::Value::String(loader.into()));
    })
}

fn check(root: &Path, args: &[&str]) -> String {
    let out = p2pdoctor()
        .arg("--root")
        .arg(root)
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "check {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn check_json(root: &Path) -> Value {
    let v: Value = serde_json::from_str(&check(root, &["--format", "json"])).unwrap();
    assert_valid("check", &v);
    v
}

fn fix_of<'a>(v: &'a Value, rule: &str) -> &'a Value {
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {v:#}"));
    &f["fix"]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Every line of the text report, trimmed.
fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

const ACS_PARAM: &str = "pci=disable_acs_redir=0000:00:03.0";

#[test]
fn debian_grub_edits_etc_default_grub_and_runs_update_grub() {
    let (_d, root) = with_boot("rule_acs_redirect", "grub_debian");
    let v = check_json(&root);
    let fix = fix_of(&v, "P2P301");
    assert_eq!(fix["kernel_params"][0]["name"], "pci");
    assert_eq!(
        fix["kernel_params"][0]["value"],
        "disable_acs_redir=0000:00:03.0"
    );
    let persist = fix["persist"].as_array().unwrap();
    assert_eq!(persist.len(), 1, "{persist:#?}");
    assert_eq!(persist[0]["boot_loader"], "grub-update-grub");
    assert_eq!(persist[0]["detected"], true);
    let sed = format!(
        r#"sudo sed -i 's|^GRUB_CMDLINE_LINUX_DEFAULT="\(.*\)"|GRUB_CMDLINE_LINUX_DEFAULT="\1 {ACS_PARAM}"|' /etc/default/grub"#
    );
    assert_eq!(
        strings(&persist[0]["commands"]),
        [sed.clone(), "sudo update-grub".into()]
    );
    let text = check(&root, &[]);
    let l = lines(&text);
    assert!(l.contains(&sed.as_str()), "{text}");
    assert!(l.contains(&"sudo update-grub"), "{text}");
    assert!(
        l.contains(&"sudo setpci -s 0000:00:03.0 ECAP_ACS+6.w=0000:002c"),
        "{text}"
    );
    assert!(
        !text.contains("grubby"),
        "only the detected boot loader: {text}"
    );
}

#[test]
fn fedora_uses_grubby() {
    let (_d, root) = with_boot("rule_acs_redirect", "grub_fedora");
    let v = check_json(&root);
    let persist = fix_of(&v, "P2P301")["persist"].as_array().unwrap().clone();
    assert_eq!(persist.len(), 1);
    assert_eq!(persist[0]["boot_loader"], "grubby");
    let cmd = format!("sudo grubby --update-kernel=ALL --args=\"{ACS_PARAM}\"");
    assert_eq!(strings(&persist[0]["commands"]), std::slice::from_ref(&cmd));
    assert!(lines(&check(&root, &[])).contains(&cmd.as_str()));
}

#[test]
fn kernelstub_kernel_install_and_systemd_boot() {
    for (loader, kind, first) in [
        (
            "kernelstub",
            "kernelstub",
            format!("sudo kernelstub -a \"{ACS_PARAM}\""),
        ),
        (
            "kernel_install",
            "kernel-install",
            format!("sudo sed -i '$ s|$| {ACS_PARAM}|' /etc/kernel/cmdline"),
        ),
        (
            "systemd_boot",
            "systemd-boot",
            format!("sudo sed -i '/^options / s|$| {ACS_PARAM}|' /boot/loader/entries/*.conf"),
        ),
    ] {
        let (_d, root) = with_boot("rule_acs_redirect", loader);
        let v = check_json(&root);
        let persist = fix_of(&v, "P2P301")["persist"].as_array().unwrap().clone();
        assert_eq!(persist.len(), 1, "{loader}: {persist:#?}");
        assert_eq!(persist[0]["boot_loader"], kind, "{loader}");
        assert_eq!(persist[0]["commands"][0], first, "{loader}");
    }
}

#[test]
fn no_boot_loader_files_list_every_candidate_labelled() {
    let root = common::build("rule_acs_redirect");
    let v = check_json(&root.root());
    let persist = fix_of(&v, "P2P301")["persist"].as_array().unwrap().clone();
    assert!(persist.len() >= 4, "{persist:#?}");
    assert!(persist.iter().all(|p| p["detected"] == false));
    let kinds: Vec<&str> = persist
        .iter()
        .map(|p| p["boot_loader"].as_str().unwrap())
        .collect();
    for k in ["grub-update-grub", "grubby", "kernelstub", "kernel-install"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let text = check(&root.root(), &[]);
    assert!(text.contains("no boot loader recognised"), "{text}");
    for p in &persist {
        assert!(text.contains(p["label"].as_str().unwrap()), "{text}");
    }
}

/// `check --format json` on a snapshot of `root`.
fn through_snapshot(root: &Path) -> Value {
    let mut cmd = p2pdoctor();
    cmd.arg("--root").arg(root);
    let (_dir, snap) = snapshot(cmd);
    check_json(&snap)
}

fn fixes(v: &Value) -> Vec<Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fix"].clone())
        .collect()
}

#[test]
fn a_snapshot_keeps_the_boot_loader_and_the_alias_lines() {
    let (_d, root) = with_boot("rule_acs_redirect", "grub_fedora");
    let again = through_snapshot(&root);
    assert_eq!(fixes(&check_json(&root)), fixes(&again));
    assert_eq!(
        fix_of(&again, "P2P301")["persist"][0]["boot_loader"],
        "grubby"
    );

    let (_d, root) = variant_of("rule_device_problems", |v| {
        set_host(
            v,
            "module_aliases",
            toml::Value::try_from(vec![
                ("pci:v000010DEd*sv*sd*bc03sc*i*", "nouveau"),
                ("usb:v1D6Bp0002d*dc*dsc*dp*ic*isc*ip*in*", "hub"),
            ])
            .unwrap(),
        );
    });
    let again = through_snapshot(&root);
    assert_eq!(fixes(&check_json(&root)), fixes(&again));
    assert_eq!(
        fix_of(&again, "P2P801")["commands"][0],
        "sudo modprobe nouveau"
    );
}

/// The GPU without a driver in rule_device_problems.
fn unbound_gpu(v: &Value) -> String {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "P2P801")
        .unwrap()["subjects"][0]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_unbound_device_gets_the_driver_modules_alias_names() {
    let (_d, root) = variant_of("rule_device_problems", |v| {
        set_host(
            v,
            "module_aliases",
            toml::Value::try_from(vec![
                ("pci:v0000144Dd0000A824sv*sd*bc*sc*i*", "nvme"),
                ("pci:v000010DEd000020B5sv*sd*bc*sc*i*", "nvidia"),
                ("pci:v000010DEd*sv*sd*bc03sc*i*", "nouveau"),
                ("pci:v000010DEd*sv*sd*bc02sc00i*", "not_this_class"),
            ])
            .unwrap(),
        );
    });
    let v = check_json(&root);
    let gpu = unbound_gpu(&v);
    let fix = fix_of(&v, "P2P801");
    assert_eq!(
        strings(&fix["commands"]),
        [
            "sudo modprobe nvidia".to_string(),
            format!("echo {gpu} | sudo tee /sys/bus/pci/drivers_probe")
        ]
    );
    let text = fix["text"].as_str().unwrap();
    assert!(text.contains("also names nouveau"), "{text}");
    assert!(
        !text.contains("not_this_class") && !text.contains("<driver>"),
        "{text}"
    );
    let report = check(&root, &[]);
    assert!(lines(&report).contains(&"sudo modprobe nvidia"), "{report}");
}

#[test]
fn an_unbound_device_without_a_match_or_without_modules_alias_says_so() {
    let (_d, root) = variant_of("rule_device_problems", |v| {
        set_host(
            v,
            "module_aliases",
            toml::Value::try_from(vec![("pci:v00008086d*sv*sd*bc02sc00i*", "e1000e")]).unwrap(),
        );
    });
    let v = check_json(&root);
    let fix = fix_of(&v, "P2P801");
    assert!(
        fix["text"]
            .as_str()
            .unwrap()
            .contains("No module of this kernel claims")
    );
    assert_eq!(fix["commands"].as_array().unwrap().len(), 1);

    let plain = common::build("rule_device_problems");
    let v = check_json(&plain.root());
    let gpu = unbound_gpu(&v);
    let fix = fix_of(&v, "P2P801");
    assert_eq!(
        fix["commands"][0],
        format!("modprobe -R \"$(cat /sys/bus/pci/devices/{gpu}/modalias)\"")
    );
}

/// On every fixture: each command is one line, whole in the text report,
/// with no placeholder and no trailing punctuation; the JSON validates.
#[test]
fn every_command_is_pasteable_on_every_fixture() {
    for name in spec_names() {
        let b = common::build(&name);
        let v = check_json(&b.root());
        let text = check(&b.root(), &["--width", "60"]);
        let text_lines = lines(&text);
        for f in v["findings"].as_array().unwrap() {
            let Some(fix) = f.get("fix").filter(|x| !x.is_null()) else {
                continue;
            };
            let mut commands = strings(&fix["commands"]);
            for p in fix["persist"].as_array().unwrap() {
                commands.extend(strings(&p["commands"]));
            }
            if !fix["kernel_params"].as_array().unwrap().is_empty() {
                assert!(
                    !fix["persist"].as_array().unwrap().is_empty(),
                    "{name}: {fix:#}"
                );
            }
            for c in commands {
                assert!(!c.contains('\n'), "{name}: {c:?}");
                assert!(
                    !c.ends_with(['.', ',', ';', ':']),
                    "{name}: {} ends in punctuation: {c:?}",
                    f["rule"]
                );
                assert!(
                    !c.contains("<driver>") && !c.contains("<release>"),
                    "{name}: {c}"
                );
                assert!(
                    text_lines.contains(&c.as_str()),
                    "{name}: {c:?} not whole on a line:\n{text}"
                );
            }
        }
    }
}

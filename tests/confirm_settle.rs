//! `check --confirm` without hardware: the pipeline run over lab snapshots
//! with stand-in files for p2pmem and the namespaces, and the settling of
//! findings from injected experiment results (what the lab's real kernel
//! produced: refusals in 02/03/08, a silent mismatch in 04).

mod common;

use std::path::{Path, PathBuf};

use p2pdoctor::confirm::engine::EngineKind;
use p2pdoctor::confirm::pairs::{self, ConfirmOptions};
use p2pdoctor::diagnose::settle::{Direction, DirectionOutcome, IoPath};
use p2pdoctor::diagnose::{self, Diagnosis, PairConfirm, PairOutcome, PairResult, Status};
use p2pdoctor::root::SystemRoot;
use p2pdoctor::scan::{self, ScanOptions};
use p2pdoctor::topology::Tree;

fn lab(name: &str) -> Diagnosis {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/lab/{name}.tar.gz"));
    let root = SystemRoot::open(&path).unwrap();
    let tree = Tree::build(scan::scan(
        &root,
        &ScanOptions {
            no_names: true,
            ..Default::default()
        },
    ));
    diagnose::diagnose(&tree, &diagnose::Options::default())
}

/// A fake /sys and /dev: every provider's allocate is a stand-in file,
/// every block device a regular file holding data.
fn fake_machine(d: &Diagnosis, dir: &Path) -> (PathBuf, PathBuf) {
    let sys = dir.join("sys");
    let dev = dir.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::create_dir_all(&sys).unwrap();
    for x in &d.devices {
        if x.provider {
            let p = sys.join(format!("bus/pci/devices/{}/p2pmem", x.bdf));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("allocate"), b"").unwrap();
        }
        for b in &x.block_devices {
            let data: Vec<u8> = (0..4 << 20)
                .map(|i: u32| (i.wrapping_mul(31) >> 3) as u8)
                .collect();
            std::fs::write(dev.join(b), data).unwrap();
        }
    }
    (sys, dev)
}

fn options(root_dir: &Path, journal: PathBuf, write: Vec<PathBuf>) -> ConfirmOptions {
    ConfirmOptions {
        size: 1 << 20,
        chunk: 128 << 10,
        qd: 4,
        engine: EngineKind::Uring,
        write,
        force: false,
        journal_dir: journal,
        progress: false,
        root_dir: root_dir.to_path_buf(),
    }
}

/// Runs the experiments on the fake machine in `dir` (read through a
/// system root opened on it) and settles the diagnosis with them.
fn confirm(d: Diagnosis, dir: &Path, opts: &ConfirmOptions) -> Diagnosis {
    let root = SystemRoot::open(dir).unwrap();
    let results = pairs::confirm(&d, &root, opts);
    assert_eq!(results.len(), d.pairs.len(), "a result for every pair");
    d.settle(results)
}

#[test]
fn the_pipeline_runs_every_pair_with_a_namespace_and_skips_the_rest() {
    let mut d = lab("01-switch");
    let dir = tempfile::tempdir().unwrap();
    let (_, dev) = fake_machine(&d, dir.path());
    // the client's namespace may be written
    let client = d
        .pairs
        .iter()
        .find(|p| p.client().to_string() == "0000:04:00.0")
        .unwrap()
        .client();
    let client_dev = d
        .devices
        .iter()
        .find(|x| x.bdf == client)
        .unwrap()
        .block_devices[0]
        .clone();
    let before = std::fs::read(dev.join(&client_dev)).unwrap();
    let opts = options(
        dir.path(),
        dir.path().join("j"),
        vec![dev.join(&client_dev)],
    );
    d = confirm(d, dir.path(), &opts);
    for p in &d.pairs {
        let c = p.confirm().expect("every pair has a result");
        match p.client().to_string().as_str() {
            "0000:04:00.0" => {
                assert_eq!(c.outcome, PairOutcome::Ok, "{c:#?}");
                assert_eq!(c.agrees, Some(true), "bus_addr predicted, transfer allowed");
                let dirs: Vec<_> = c.directions.iter().map(|x| x.direction).collect();
                assert_eq!(dirs, ["read", "write"]);
                assert!(
                    c.directions
                        .iter()
                        .all(|x| x.verify.unwrap().bytes_compared == 1 << 20)
                );
                assert_eq!(c.directions[1].restored, Some(true));
                assert!(c.throughput.unwrap() > 0.0 && c.host_throughput.unwrap() > 0.0);
            }
            // the provider with itself (issue 11 item 1): the NVMe reads
            // its own namespace into its own CMB.
            "0000:03:00.0" => {
                assert_eq!(c.outcome, PairOutcome::Ok, "{c:#?}");
                assert_eq!(c.agrees, Some(true));
            }
            // the SATA controller has no namespace
            _ => {
                assert_eq!(c.outcome, PairOutcome::Skipped);
                assert!(c.reason.contains("no block device"), "{}", c.reason);
            }
        }
    }
    assert_eq!(
        std::fs::read(dev.join(&client_dev)).unwrap(),
        before,
        "restored"
    );
    assert!(
        d.summary.headline.contains("experiments: 2 ok, 1 skipped"),
        "{}",
        d.summary.headline
    );
    // JSON carries it and validates
    let v = p2pdoctor::render::check_json::check_value_of(&d, "test");
    let pair = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["client"] == "0000:04:00.0")
        .unwrap();
    assert_eq!(pair["confirm"]["outcome"], "ok");
    assert_eq!(pair["confirm"]["directions"][1]["direction"], "write");
    common::schema::assert_valid("check", &v);
}

#[test]
fn without_p2pmem_or_permission_it_says_what_it_could_not_do() {
    let d = lab("01-switch");
    let dir = tempfile::tempdir().unwrap();
    let (sys, _) = fake_machine(&d, dir.path());
    // a sysfs without the provider's p2pmem/
    std::fs::remove_dir_all(&sys).unwrap();
    std::fs::create_dir_all(&sys).unwrap();
    let d = confirm(
        d,
        dir.path(),
        &options(dir.path(), dir.path().join("j"), vec![]),
    );
    for p in &d.pairs {
        let c = p.confirm().unwrap();
        assert_eq!(c.outcome, PairOutcome::Skipped);
        assert!(c.reason.contains("offers no P2P memory"), "{}", c.reason);
    }
    // ... and says once that nothing was confirmed, with the first reason.
    let note = pairs::nothing_confirmed(&d).expect("every pair was skipped");
    assert!(note.contains("nothing could be confirmed"), "{note}");
    assert!(note.contains("offers no P2P memory"), "{note}");
}

#[test]
fn with_no_pair_or_with_one_transfer_it_says_so_or_nothing() {
    // No pair predicted: nothing to confirm.
    let mut d = lab("01-switch");
    d.pairs.retain(|_| false);
    let note = pairs::nothing_confirmed(&d).unwrap();
    assert!(note.contains("nothing to confirm"), "{note}");
    // One pair that ran: no note.
    let d = lab("01-switch");
    let dir = tempfile::tempdir().unwrap();
    fake_machine(&d, dir.path());
    let d = confirm(
        d,
        dir.path(),
        &options(dir.path(), dir.path().join("j"), vec![]),
    );
    assert_eq!(pairs::nothing_confirmed(&d), None);
}

fn result(outcome: PairOutcome, errno: Option<i32>, log: &[&str]) -> PairConfirm {
    let o = match outcome {
        PairOutcome::Ok => DirectionOutcome::Ok,
        PairOutcome::Refused => DirectionOutcome::Refused,
        PairOutcome::Mismatch => DirectionOutcome::Mismatch,
        _ => DirectionOutcome::Error,
    };
    PairConfirm {
        outcome,
        errno,
        errno_name: errno.map(p2pdoctor::confirm::engine::errno_name),
        throughput: (outcome == PairOutcome::Ok).then_some(1.0),
        host_throughput: (outcome == PairOutcome::Ok).then_some(1.1),
        reason: String::new(),
        agrees: None,
        directions: vec![Direction {
            direction: "read",
            block_device: "/dev/nvme1n1".into(),
            outcome: o,
            errno,
            errno_name: None,
            message: if outcome == PairOutcome::Mismatch {
                "the transfer reported success but 65536 of 65536 bytes differ".into()
            } else {
                String::new()
            },
            bytes: 65536,
            gbps: None,
            host_gbps: None,
            verify: None,
            restored: None,
        }],
        log: log.iter().map(|s| s.to_string()).collect(),
        namespace: Some("nvme1n1".into()),
        carried_by: Vec::new(),
        settles_pair: true,
        unsettled: None,
    }
}

/// The result `r` for the pair with `client`, with agreement worked out
/// as `pairs::confirm` does it (over a root with no sysfs to read).
fn result_for(d: &Diagnosis, client: &str, mut r: PairConfirm) -> PairResult {
    let p = d
        .pairs
        .iter()
        .find(|p| p.client().to_string() == client && p.client() != p.provider())
        .unwrap();
    let empty = SystemRoot::from_entries(Path::new("empty"), Default::default());
    pairs::judge(
        &mut r,
        p.provider(),
        p.client(),
        p.verdict().map_type,
        &empty,
    );
    PairResult {
        provider: p.provider(),
        client: p.client(),
        confirm: r,
    }
}

/// Settles `d` with the one result `r` for the pair with `client`.
fn settle_one(d: Diagnosis, client: &str, r: PairConfirm) -> Diagnosis {
    let result = result_for(&d, client, r);
    d.settle(vec![result])
}

fn status_of(d: &Diagnosis, rule: &str) -> Option<Status> {
    d.findings.iter().find(|f| f.rule == rule).map(|f| f.status)
}

#[test]
fn a_refusal_confirms_acs_redirect_and_a_pass_refutes_it() {
    let mut d = lab("03-multifunction-iommu");
    assert_eq!(status_of(&d, "P2P301"), Some(Status::Predicted));
    assert_eq!(d.exit_code(diagnose::FailOn::Warning), 2);
    d = settle_one(
        d,
        "0000:01:00.1",
        result(
            PairOutcome::Refused,
            Some(libc::EREMOTEIO),
            &[
                "pci 0000:00:03.0: ACS redirect is set between the client and provider (0000:01:00.0)",
            ],
        ),
    );
    let f = d.findings.iter().find(|f| f.rule == "P2P301").unwrap();
    assert_eq!(f.status, Status::Confirmed);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("refused with EREMOTEIO")),
        "{:?}",
        f.evidence
    );
    assert!(
        !d.findings.iter().any(|f| f.rule == "P2P902"),
        "as predicted"
    );
    // The second tier: a transfer settled the pair as predicted.
    let v = d.summary.verdict.verified.as_ref().expect("a transfer ran");
    assert_eq!(v.outcome, diagnose::Verified::AsPredicted);
    assert_eq!((v.pairs_tried, v.pairs_settled, v.pairs_ok), (1, 1, 0));
    assert_eq!(d.summary.verdict.established(), "verified by a transfer");

    let mut d = lab("03-multifunction-iommu");
    d = settle_one(d, "0000:01:00.1", result(PairOutcome::Ok, None, &[]));
    assert_eq!(status_of(&d, "P2P301"), Some(Status::Refuted));
    // the model was wrong: say so, as a confirmed warning
    let c = d
        .findings
        .iter()
        .find(|f| f.rule == "P2P902")
        .expect("contradiction");
    assert_eq!(c.status, Status::Confirmed);
    assert!(
        c.message.contains("but the kernel allowed it"),
        "{}",
        c.message
    );
    assert_eq!(
        d.summary.verdict.verified.as_ref().map(|v| v.outcome),
        Some(diagnose::Verified::NotAsPredicted)
    );
    // a refuted error no longer counts
    assert_eq!(d.summary.errors, 0);
    assert_eq!(d.exit_code(diagnose::FailOn::Warning), 1);
}

#[test]
fn a_refusal_confirms_the_whitelist_rule() {
    let mut d = lab("02-root-ports");
    d = settle_one(
        d,
        "0000:02:00.0",
        result(PairOutcome::Refused, Some(libc::EREMOTEIO), &[]),
    );
    assert_eq!(status_of(&d, "P2P401"), Some(Status::Confirmed));
    assert_eq!(d.summary.errors, 1);
}

#[test]
fn a_silent_mismatch_is_an_error_with_the_iommu_faults_as_evidence() {
    let mut d = lab("04-switch-iommu");
    let before = d.summary.errors;
    d = settle_one(
        d,
        "0000:04:00.0",
        result(
            PairOutcome::Mismatch,
            None,
            &[
                "DMAR: [DMA Write NO_PASID] Request device [04:00.0] fault addr 0xfe800000 [fault reason 0x05] PTE Write access is not set",
            ],
        ),
    );
    let m = d
        .findings
        .iter()
        .find(|f| f.rule == "P2P903")
        .expect("mismatch finding");
    assert_eq!(m.status, Status::Confirmed);
    assert!(m.message.contains("1 fault line"), "{}", m.message);
    assert!(m.evidence.iter().any(|e| e.contains("PTE Write access")));
    assert_eq!(d.summary.errors, before + 1);
    assert_eq!(d.summary.verdict.predicted.as_str(), "errors");
    assert_eq!(
        d.summary.verdict.verified.as_ref().map(|v| v.outcome),
        Some(diagnose::Verified::DataMismatch)
    );
    // bus address was predicted and the kernel allowed it: no contradiction
    assert!(!d.findings.iter().any(|f| f.rule == "P2P902"));
    assert!(
        d.summary.headline.contains("experiments: 1 mismatch"),
        "{}",
        d.summary.headline
    );
}

#[test]
fn a_verified_transfer_lifts_the_iommu_caveat_and_a_skip_settles_nothing() {
    use p2pdoctor::diagnose::CaveatKind;
    let caveat = |d: &Diagnosis| {
        d.summary
            .verdict
            .caveats
            .iter()
            .any(|c| c.kind == CaveatKind::IommuWithoutAcs)
    };
    let mut d = lab("04-switch-iommu");
    assert!(caveat(&d), "predicted only: the lab's case 4 caveat");
    assert!(d.summary.verdict.verified.is_none());
    assert_eq!(
        d.summary.verdict.established(),
        "predicted by the kernel's rules"
    );
    d = settle_one(d, "0000:04:00.0", result(PairOutcome::Ok, None, &[]));
    assert!(!caveat(&d), "the pair moved data that verified");
    let v = d.summary.verdict.verified.as_ref().unwrap();
    assert_eq!(
        (v.outcome, v.pairs_ok),
        (diagnose::Verified::AsPredicted, 1)
    );

    let mut d = lab("04-switch-iommu");
    let mut skipped = result(PairOutcome::Skipped, None, &[]);
    skipped.directions.clear();
    d = settle_one(d, "0000:04:00.0", skipped);
    assert!(caveat(&d));
    let v = d.summary.verdict.verified.as_ref().unwrap();
    assert_eq!(v.outcome, diagnose::Verified::Unsettled);
    assert_eq!(
        d.summary.verdict.established(),
        "predicted by the kernel's rules"
    );
}

#[test]
fn an_enomem_mapping_confirms_the_exhausted_pool_and_a_mapped_buffer_refutes_it() {
    let built = common::build("rule_cmb_unpublished");
    let diagnose_built = || {
        let root = SystemRoot::open(&built.root()).unwrap();
        let tree = Tree::build(scan::scan(
            &root,
            &ScanOptions {
                no_names: true,
                ..Default::default()
            },
        ));
        diagnose::diagnose(&tree, &diagnose::Options::default())
    };
    let mut d = diagnose_built();
    let f = d
        .findings
        .iter()
        .find(|f| f.rule == "P2P205")
        .expect("fires on this fixture");
    let provider = f.subjects[0];
    let client = d
        .pairs
        .iter()
        .find(|p| p.provider() == provider && p.client() != provider)
        .expect("a pair with the exhausted provider")
        .client()
        .to_string();
    let mut enomem = result(PairOutcome::Error, Some(libc::ENOMEM), &[]);
    enomem.reason =
        "read: cannot map 524288 bytes of .../p2pmem/allocate: Cannot allocate memory".into();
    d = settle_one(d, &client, enomem);
    let f = d.findings.iter().find(|f| f.rule == "P2P205").unwrap();
    assert_eq!(f.status, Status::Confirmed);
    assert!(
        f.evidence.iter().any(|e| e.contains("ENOMEM")),
        "{:?}",
        f.evidence
    );

    let mut d = diagnose_built();
    d = settle_one(d, &client, result(PairOutcome::Ok, None, &[]));
    assert_eq!(status_of(&d, "P2P205"), Some(Status::Refuted));
}

/// The command line: --confirm needs the live machine, its options need
/// --confirm, and on this machine (no P2P memory at all) it runs, says why
/// nothing was tried, and writes valid JSON.
#[test]
fn check_confirm_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        common::p2pdoctor()
            .env("P2PDOCTOR_JOURNAL_DIR", dir.path())
            .env_remove("P2PDOCTOR_ROOT")
            .args(args)
            .output()
            .unwrap()
    };
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab/01-switch.tar.gz");
    let out = run(&["--root", lab.to_str().unwrap(), "check", "--confirm"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("capture"));
    let out = run(&["check", "--write", "/dev/null"]);
    assert_eq!(out.status.code(), Some(3), "--write requires --confirm");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--confirm"));

    let out = run(&["--no-names", "check", "--confirm", "--format", "json"]);
    let code = out.status.code().unwrap();
    assert!(
        (0..=2).contains(&code),
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    common::schema::assert_valid("check", &v);
    for p in v["pairs"].as_array().unwrap() {
        let c = &p["confirm"];
        assert!(
            c.is_object(),
            "every pair has a result with --confirm: {p:#}"
        );
        if c["outcome"] == "skipped" {
            assert!(!c["reason"].as_str().unwrap().is_empty());
        }
    }
}

/// An IOMMU fault of some other device during the experiment is not
/// evidence about this pair.
#[test]
fn only_fault_lines_naming_the_pair_count() {
    let mut d = lab("04-switch-iommu");
    d = settle_one(
        d,
        "0000:04:00.0",
        result(
            PairOutcome::Mismatch,
            None,
            &[
                "DMAR: [DMA Read NO_PASID] Request device [0000:65:00.0] fault addr 0x1000 [fault reason 0x06] PTE Read access is not set",
            ],
        ),
    );
    let m = d.findings.iter().find(|f| f.rule == "P2P903").unwrap();
    assert!(
        m.message.contains("no IOMMU fault was logged"),
        "{}",
        m.message
    );
}

/// Issue 11 item 9: native NVMe multipath carried the I/O through another
/// controller of the subsystem (the provider's own): the experiment does
/// not test the named client, so a "verified" transfer neither refutes the
/// prediction nor raises P2P902.
#[test]
fn an_experiment_carried_by_another_controller_settles_nothing() {
    let mut d = lab("02-root-ports");
    assert_eq!(status_of(&d, "P2P401"), Some(Status::Predicted));
    let pair = d
        .pairs
        .iter()
        .find(|p| p.client().to_string() == "0000:02:00.0" && p.client() != p.provider())
        .unwrap();
    let provider = pair.provider();
    let mut r = result(PairOutcome::Ok, None, &[]);
    r.carried_by = vec![IoPath {
        controller: "nvme0".into(),
        pci: Some(provider),
        path: "nvme0c0n1".into(),
        ios: 512,
    }];
    d = settle_one(d, "0000:02:00.0", r);
    let c = d
        .pairs
        .iter()
        .find(|p| p.client().to_string() == "0000:02:00.0" && p.client() != p.provider())
        .unwrap()
        .confirm()
        .cloned()
        .unwrap();
    assert!(!c.settles_pair);
    assert_eq!(c.agrees, None);
    assert!(
        c.unsettled
            .as_deref()
            .unwrap()
            .contains("nvme0 (nvme0c0n1)")
    );
    assert!(c.path().iter().any(|l| l.contains("via controller nvme0")));
    assert_eq!(
        status_of(&d, "P2P401"),
        Some(Status::Predicted),
        "not refuted"
    );
    assert!(!d.findings.iter().any(|f| f.rule == "P2P902"));
    // The same transfer carried by the client's own controller settles it.
    let mut d = lab("02-root-ports");
    let client: p2pdoctor::pci::Bdf = "0000:02:00.0".parse().unwrap();
    let mut r = result(PairOutcome::Refused, Some(libc::EINVAL), &[]);
    r.carried_by = vec![IoPath {
        controller: "nvme1".into(),
        pci: Some(client),
        path: "nvme1n1".into(),
        ios: 3,
    }];
    d = settle_one(d, "0000:02:00.0", r);
    assert_eq!(status_of(&d, "P2P401"), Some(Status::Confirmed));
    let v = p2pdoctor::render::check_json::check_value_of(&d, "test");
    common::schema::assert_valid("check", &v);
}

/// Issue 11 item 9: an outcome that disagrees with the prediction and with
/// the kernel's own log lines for that pair is suspect, not the prediction.
#[test]
fn an_outcome_the_kernel_log_contradicts_is_suspect() {
    let mut d = lab("02-root-ports");
    let pair = d
        .pairs
        .iter()
        .find(|p| p.client().to_string() == "0000:02:00.0" && p.client() != p.provider())
        .unwrap();
    let line = format!(
        "nvme 0000:02:00.0: cannot be used for peer-to-peer DMA as the client and provider ({}) do not share an upstream bridge or whitelisted host bridge",
        pair.provider()
    );
    d = settle_one(d, "0000:02:00.0", result(PairOutcome::Ok, None, &[&line]));
    assert_eq!(status_of(&d, "P2P401"), Some(Status::Predicted));
    assert!(!d.findings.iter().any(|f| f.rule == "P2P902"));
}

/// Issue 11 item 10: the controller, namespace and path that carried the
/// I/O, read from per-path statistics (a fake sysfs with a two-controller
/// subsystem: head nvme0n1, paths nvme0c0n1 and nvme0c1n1), through a
/// system root opened on it.
#[test]
fn the_path_that_carried_the_io_is_read_from_per_path_stats() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let mk = |ctrl: &str, bdf: &str, path: &str, reads: u64| {
        let c = sys.join("class/nvme").join(ctrl);
        std::fs::create_dir_all(c.join(path)).unwrap();
        let dev = sys.join("devices/pci0000:00").join(bdf);
        std::fs::create_dir_all(&dev).unwrap();
        let _ = std::os::unix::fs::symlink(
            format!("../../../devices/pci0000:00/{bdf}"),
            c.join("device"),
        );
        std::fs::write(
            c.join(path).join("stat"),
            format!("{reads} 0 {} 0 7 0 0 0 0 0 0 0 0 0 0 0 0\n", reads * 8),
        )
        .unwrap();
    };
    mk("nvme0", "0000:03:00.0", "nvme0c0n1", 100);
    mk("nvme1", "0000:04:00.0", "nvme0c1n1", 40);
    std::fs::create_dir_all(sys.join("class/nvme/nvme1/ng0n2")).unwrap();
    let root = SystemRoot::open(dir.path()).unwrap();
    let before = pairs::namespace_paths(&root, "nvme0n1");
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(before[0].ios, 107, "reads + writes completed");
    mk("nvme1", "0000:04:00.0", "nvme0c1n1", 140);
    let used = pairs::paths_used(&before, &pairs::namespace_paths(&root, "nvme0n1"));
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].controller, "nvme1");
    assert_eq!(used[0].pci, Some("0000:04:00.0".parse().unwrap()));
    assert_eq!(used[0].ios, 100);
    assert_eq!(
        pairs::carried_by_client(&used, "0000:04:00.0".parse().unwrap()),
        Some(true)
    );
    assert_eq!(
        pairs::carried_by_client(&used, "0000:03:00.0".parse().unwrap()),
        Some(false)
    );
    // Without multipath the namespace sits under its only controller.
    mk("nvme2", "0000:05:00.0", "nvme2n1", 1);
    assert_eq!(
        pairs::namespace_paths(&root, "nvme2n1")[0].controller,
        "nvme2"
    );
}

/// The statistics and the subsystem's I/O policy come from the system root
/// the diagnosis was read from, never from this machine's /sys: over a
/// snapshot (an in-memory root) a multipath experiment is judged with the
/// snapshot's per-path counts and iopolicy.
#[test]
fn confirm_reads_sysfs_through_the_root() {
    use p2pdoctor::root::Entry;
    let file = |t: &str| Entry::File(t.as_bytes().to_vec());
    let entries: std::collections::BTreeMap<String, Entry> = [
        ("sys", Entry::Dir),
        ("sys/class", Entry::Dir),
        ("sys/class/nvme", Entry::Dir),
        ("sys/class/nvme/nvme7", Entry::Dir),
        (
            "sys/class/nvme/nvme7/device",
            Entry::Symlink("../../../devices/pci0000:00/0000:07:00.0".into()),
        ),
        ("sys/class/nvme/nvme7/nvme9c7n1", Entry::Dir),
        (
            "sys/class/nvme/nvme7/nvme9c7n1/stat",
            file("5 0 0 0 6 0 0\n"),
        ),
        ("sys/class/nvme-subsystem", Entry::Dir),
        ("sys/class/nvme-subsystem/nvme-subsys9", Entry::Dir),
        (
            "sys/class/nvme-subsystem/nvme-subsys9/iopolicy",
            file("round-robin\n"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let root = SystemRoot::from_entries(Path::new("snapshot"), entries);
    let paths = pairs::namespace_paths(&root, "nvme9n1");
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert_eq!(paths[0].ios, 11);
    assert_eq!(paths[0].pci, Some("0000:07:00.0".parse().unwrap()));
    let mut r = result(PairOutcome::Ok, None, &[]);
    r.namespace = Some("nvme9n1".into());
    r.carried_by = paths;
    pairs::judge(
        &mut r,
        "0000:03:00.0".parse().unwrap(),
        "0000:04:00.0".parse().unwrap(),
        diagnose::MapType::BusAddr,
        &root,
    );
    assert!(!r.settles_pair);
    let why = r.unsettled.unwrap();
    assert!(why.contains("(iopolicy round-robin)"), "{why}");
}

//! Every rule against a fixture where it must fire and fixtures where it
//! must not (tests/fixtures/specs/rule_*.toml; rule_clean.toml is the
//! healthy machine where nothing may fire). The diagnosis runs in-process
//! on the built sysfs tree, exactly as `p2pdoctor check` reads it.

mod common;

use std::collections::HashMap;

use common::build;
use p2pdoctor::diagnose::{self, Catalog, Diagnosis, Options, RULES, Severity, Stage, Status};
use p2pdoctor::root::SystemRoot;
use p2pdoctor::scan::{self, ScanOptions};
use p2pdoctor::topology::Tree;

use Severity::{Error, Info, Warning};
use Status::{Inconclusive, Predicted};

/// A rule, where it fires (spec, severity, status), where it stays silent.
struct Case {
    rule: &'static str,
    fires: &'static [(&'static str, Severity, Status)],
    silent: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        rule: "P2P101",
        fires: &[("rule_kernel_no_p2pdma", Error, Predicted)],
        silent: &["rule_clean", "rule_kernel_old"],
    },
    Case {
        rule: "P2P102",
        fires: &[("rule_kernel_old", Error, Predicted)],
        silent: &["rule_clean", "rule_kernel_no_p2pdma"],
    },
    Case {
        rule: "P2P103",
        fires: &[("rule_xen_dom0", Error, Predicted)],
        silent: &["rule_clean", "rule_kernel_old"],
    },
    Case {
        rule: "P2P110",
        fires: &[("cloud_vm_gpus", Warning, Predicted)],
        silent: &["rule_clean", "two_socket_server"],
    },
    Case {
        rule: "P2P111",
        fires: &[("intel_client_gpus", Warning, Predicted)],
        silent: &["rule_clean", "two_socket_server"],
    },
    Case {
        rule: "P2P503",
        fires: &[
            ("two_socket_server", Warning, Predicted),
            // No group type (Linux 5.10): the driver's debugfs decides.
            ("rule_iommu_debugfs_translated", Warning, Predicted),
        ],
        silent: &[
            "rule_clean",
            "intel_client_gpus",
            "amd_host",
            "rule_iommu_debugfs_identity",
        ],
    },
    Case {
        rule: "P2P201",
        fires: &[
            ("rule_no_provider", Error, Predicted),
            ("rule_cmb_misaligned", Error, Predicted),
        ],
        // The kernel, not a missing provider, is the cause there.
        silent: &["rule_clean", "rule_kernel_no_p2pdma"],
    },
    Case {
        rule: "P2P202",
        fires: &[("rule_cmb_unpublished", Warning, Predicted)],
        silent: &["rule_clean", "rule_cmb_misaligned"],
    },
    Case {
        rule: "P2P203",
        fires: &[("rule_cmb_misaligned", Warning, Predicted)],
        silent: &["rule_clean", "rule_cmb_unpublished"],
    },
    Case {
        rule: "P2P204",
        fires: &[("rule_cmb_misaligned", Warning, Predicted)],
        silent: &["rule_clean", "rule_no_provider"],
    },
    Case {
        rule: "P2P205",
        fires: &[("rule_cmb_unpublished", Warning, Predicted)],
        silent: &["rule_clean"],
    },
    Case {
        rule: "P2P301",
        fires: &[
            ("rule_acs_redirect", Error, Predicted),
            ("rule_acs_detour", Warning, Predicted),
            ("rule_acs_param", Warning, Predicted),
            ("rule_nonroot", Warning, Inconclusive),
        ],
        // Different root ports: no common bridge, ACS is not the question.
        silent: &["rule_clean", "rule_not_whitelisted"],
    },
    Case {
        rule: "P2P302",
        fires: &[("rule_acs_ordering", Warning, Predicted)],
        silent: &["rule_clean", "rule_acs_redirect"],
    },
    Case {
        rule: "P2P303",
        fires: &[("rule_acs_ordering", Warning, Predicted)],
        silent: &["rule_clean", "rule_acs_param"],
    },
    Case {
        rule: "P2P304",
        fires: &[("rule_acs_ordering", Info, Predicted)],
        silent: &["rule_clean", "rule_acs_redirect"],
    },
    Case {
        rule: "P2P305",
        fires: &[("rule_acs_param", Warning, Predicted)],
        silent: &["rule_clean", "rule_acs_redirect"],
    },
    Case {
        rule: "P2P306",
        fires: &[("rule_acs_drift", Warning, Predicted)],
        silent: &["rule_clean", "rule_acs_redirect"],
    },
    Case {
        rule: "P2P401",
        fires: &[("rule_not_whitelisted", Error, Predicted)],
        // The same machine on AMD Zen: the CPU rule admits it.
        silent: &[
            "rule_clean",
            "rule_root_complex_amd",
            "rule_host_bridges_numa",
        ],
    },
    Case {
        rule: "P2P402",
        fires: &[
            ("rule_root_complex_amd", Info, Predicted),
            ("rule_host_bridges_numa", Info, Predicted),
        ],
        silent: &["rule_clean", "rule_not_whitelisted"],
    },
    Case {
        rule: "P2P403",
        fires: &[("rule_host_bridges_numa", Warning, Predicted)],
        silent: &["rule_clean", "rule_root_complex_amd"],
    },
    Case {
        rule: "P2P404",
        fires: &[("rule_host_bridges_numa", Warning, Predicted)],
        silent: &["rule_clean", "rule_dual_path"],
    },
    Case {
        rule: "P2P501",
        fires: &[
            ("rule_acs_detour", Warning, Predicted),
            ("rule_root_complex_amd", Warning, Predicted),
        ],
        // Refused pairs are never mapped: nothing for the IOMMU to do.
        silent: &["rule_clean", "rule_acs_redirect"],
    },
    Case {
        rule: "P2P502",
        fires: &[("rule_acs_redirect", Info, Predicted)],
        // A root port sharing an endpoint's group is the normal case.
        silent: &["rule_clean", "rule_root_complex_amd"],
    },
    Case {
        rule: "P2P601",
        fires: &[("rule_dual_path", Warning, Predicted)],
        silent: &["rule_clean", "rule_host_bridges_numa"],
    },
    Case {
        rule: "P2P602",
        fires: &[("rule_cascaded_narrow", Info, Predicted)],
        silent: &["rule_clean", "rule_acs_ordering"],
    },
    Case {
        rule: "P2P603",
        fires: &[("rule_cascaded_narrow", Info, Predicted)],
        // There P2P604 speaks, or RO is off.
        silent: &[
            "rule_clean",
            "rule_relaxed_ordering_quirk",
            "rule_gpudirect_ro_off",
        ],
    },
    Case {
        rule: "P2P604",
        fires: &[("rule_relaxed_ordering_quirk", Warning, Predicted)],
        silent: &["rule_clean", "rule_gpudirect_ro_off", "two_socket_server"],
    },
    Case {
        rule: "P2P605",
        fires: &[("rule_gpudirect_ro_off", Info, Predicted)],
        // The NIC there is off because a quirked root port asks for it.
        silent: &[
            "rule_clean",
            "rule_relaxed_ordering_quirk",
            "two_socket_server",
        ],
    },
    Case {
        rule: "P2P701",
        fires: &[("rule_cascaded_narrow", Info, Predicted)],
        silent: &["rule_clean", "rule_link_problems"],
    },
    Case {
        rule: "P2P702",
        fires: &[("rule_link_problems", Warning, Predicted)],
        // A QEMU root port claims x32 Gen4 but its partner is x1 Gen1.
        silent: &["rule_clean", "rule_acs_redirect"],
    },
    Case {
        rule: "P2P703",
        fires: &[("rule_link_problems", Warning, Predicted)],
        silent: &["rule_clean"],
    },
    Case {
        rule: "P2P704",
        fires: &[("rule_link_problems", Warning, Predicted)],
        silent: &["rule_clean"],
    },
    Case {
        rule: "P2P705",
        fires: &[("rule_mixed_generation", Warning, Predicted)],
        // Gen5 devices on Gen5 links (or all Gen4) are not bound below
        // what they can do.
        silent: &[
            "rule_clean",
            "hgx_8gpu_two_level_switches",
            "rule_gpudirect_ro_off",
        ],
    },
    Case {
        rule: "P2P801",
        fires: &[("rule_device_problems", Warning, Predicted)],
        silent: &["rule_clean"],
    },
    Case {
        rule: "P2P802",
        fires: &[("rule_device_problems", Warning, Predicted)],
        silent: &["rule_clean"],
    },
    Case {
        rule: "P2P803",
        fires: &[("rule_vendor_topology", Warning, Inconclusive)],
        silent: &["rule_vendor_topology_agrees", "rule_clean"],
    },
    Case {
        rule: "P2P804",
        fires: &[("rule_small_bar", Warning, Predicted)],
        silent: &["rule_clean", "two_socket_server"],
    },
    Case {
        rule: "P2P805",
        fires: &[("rule_vendor_p2p_read", Warning, Predicted)],
        // There nvidia-smi topo -p2p r agrees on every pair; elsewhere
        // none was saved.
        silent: &[
            "rule_vendor_topology_agrees",
            "rule_clean",
            "rule_vendor_topology",
        ],
    },
    Case {
        rule: "P2P901",
        fires: &[("rule_nonroot", Warning, Inconclusive)],
        silent: &["rule_clean"],
    },
];

/// What a stage rule is checked against: a baseline recorded from a spec,
/// or a policy file in tests/fixtures/policies.
#[derive(Clone, Copy)]
enum Against {
    Baseline(&'static str),
    Policy(&'static str),
}

/// A rule of the stages after the diagnosis (`check --baseline`, `check
/// --policy`): where it fires and where it stays silent, each spec checked
/// against `against`.
struct StageCase {
    rule: &'static str,
    against: Against,
    fires: &'static [(&'static str, Severity, Status)],
    silent: &'static [&'static str],
}

use Against::{Baseline, Policy};

const STAGE_CASES: &[StageCase] = &[
    StageCase {
        rule: "P2P1001",
        against: Baseline("rule_clean"),
        // The same switch with ACS redirect on: 03:00.0 → 04:00.0 goes
        // through the host bridge now.
        fires: &[("rule_acs_ordering", Error, Predicted)],
        // Faster links change no decision.
        silent: &["rule_clean", "rule_link_problems"],
    },
    StageCase {
        rule: "P2P1002",
        against: Baseline("rule_clean"),
        // NVMe drives directly on root ports instead of below the switch.
        fires: &[("rule_no_provider", Error, Predicted)],
        silent: &["rule_clean", "rule_link_problems"],
    },
    StageCase {
        rule: "P2P1003",
        against: Baseline("rule_clean"),
        // The root port trained x4 where the good node has x8.
        fires: &[
            ("rule_kernel_old", Warning, Predicted),
            ("rule_link_problems", Info, Predicted),
        ],
        silent: &["rule_clean", "rule_no_provider"],
    },
    StageCase {
        rule: "P2P1004",
        against: Baseline("rule_clean"),
        fires: &[("rule_acs_ordering", Warning, Predicted)],
        silent: &["rule_clean", "rule_link_problems"],
    },
    StageCase {
        rule: "P2P1005",
        against: Baseline("rule_clean"),
        fires: &[("rule_kernel_old", Warning, Predicted)],
        silent: &["rule_clean", "rule_device_problems"],
    },
    StageCase {
        rule: "P2P1101",
        against: Policy("site.toml"),
        fires: &[("rule_acs_redirect", Error, Predicted)],
        silent: &["rule_clean", "rule_kernel_old"],
    },
    StageCase {
        rule: "P2P1102",
        against: Policy("site.toml"),
        fires: &[("rule_acs_redirect", Error, Predicted)],
        silent: &["rule_clean", "rule_acs_ordering"],
    },
    StageCase {
        rule: "P2P1103",
        against: Policy("site.toml"),
        // Redirect on the switch's downstream ports; rule_acs_redirect has
        // it on a root port, which the policy does not name.
        fires: &[("rule_acs_ordering", Error, Predicted)],
        silent: &["rule_clean", "rule_acs_redirect"],
    },
    StageCase {
        rule: "P2P1104",
        against: Policy("site.toml"),
        fires: &[("rule_acs_redirect", Error, Predicted)],
        silent: &["rule_clean", "rule_acs_ordering"],
    },
    StageCase {
        rule: "P2P1105",
        against: Policy("site.toml"),
        fires: &[("rule_kernel_old", Error, Predicted)],
        silent: &["rule_clean", "rule_acs_redirect"],
    },
];

fn tree_of(name: &str) -> Tree {
    tree_at(&build(name).root())
}

/// The tree of a fixture already built at `root`.
fn tree_at(root: &std::path::Path) -> Tree {
    let root = SystemRoot::open(root).unwrap();
    Tree::build(scan::scan(
        &root,
        &ScanOptions {
            no_names: true,
            ..Default::default()
        },
    ))
}

/// The findings the stage adds for `spec` checked against `against`.
fn stage_findings(against: Against, spec: &str) -> Vec<p2pdoctor::diagnose::Finding> {
    let tree = tree_of(spec);
    let d = diagnose::diagnose(&tree, &Options::default());
    match against {
        Baseline(good) => {
            let gt = tree_of(good);
            let gd = diagnose::diagnose(&gt, &Options::default());
            let record = p2pdoctor::baseline::record(&gt, &gd);
            p2pdoctor::baseline::deviations(&record, &tree, &d)
        }
        Policy(file) => {
            let path = common::fixtures_dir().join("policies").join(file);
            let policy = p2pdoctor::policy::Policy::load(&path).unwrap();
            p2pdoctor::policy::evaluate(&policy, &tree, &d)
        }
    }
}

#[test]
fn every_stage_rule_fires_where_it_must_and_nowhere_else() {
    let mut failures = Vec::new();
    for case in STAGE_CASES {
        for &(spec, severity, status) in case.fires {
            let found: Vec<_> = stage_findings(case.against, spec)
                .into_iter()
                .filter(|f| f.rule == case.rule)
                .collect();
            if !found
                .iter()
                .any(|f| f.severity == severity && f.status == status)
            {
                failures.push(format!(
                    "{} should fire in {spec} as {severity:?}/{status:?}; found {:?}",
                    case.rule,
                    found
                        .iter()
                        .map(|f| (f.severity, f.status))
                        .collect::<Vec<_>>()
                ));
            }
            if found
                .iter()
                .any(|f| f.message.is_empty() || f.fix.as_ref().is_none_or(|x| x.text.is_empty()))
            {
                failures.push(format!(
                    "{} in {spec}: a finding without message or fix",
                    case.rule
                ));
            }
        }
        for &spec in case.silent {
            if let Some(f) = stage_findings(case.against, spec)
                .iter()
                .find(|f| f.rule == case.rule)
            {
                failures.push(format!(
                    "{} must not fire in {spec}: {}",
                    case.rule, f.message
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn diagnose_spec(name: &str) -> Diagnosis {
    diagnose::diagnose(&tree_of(name), &Options::default())
}

struct Cache(HashMap<&'static str, Diagnosis>);

impl Cache {
    fn get(&mut self, name: &'static str) -> &Diagnosis {
        self.0.entry(name).or_insert_with(|| diagnose_spec(name))
    }
}

#[test]
fn every_rule_fires_where_it_must_and_nowhere_else() {
    let mut cache = Cache(HashMap::new());
    let mut failures = Vec::new();
    for case in CASES {
        for &(spec, severity, status) in case.fires {
            let d = cache.get(spec);
            let found: Vec<_> = d.findings.iter().filter(|f| f.rule == case.rule).collect();
            if !found
                .iter()
                .any(|f| f.severity == severity && f.status == status)
            {
                failures.push(format!(
                    "{} should fire in {spec} as {severity:?}/{status:?}; found {:?}",
                    case.rule,
                    found
                        .iter()
                        .map(|f| (f.severity, f.status))
                        .collect::<Vec<_>>()
                ));
            }
            for f in &found {
                if f.message.is_empty() || f.fix.as_ref().is_none_or(|x| x.text.is_empty()) {
                    failures.push(format!(
                        "{} in {spec}: a finding without message or fix",
                        case.rule
                    ));
                }
            }
        }
        for &spec in case.silent {
            let d = cache.get(spec);
            if let Some(f) = d.findings.iter().find(|f| f.rule == case.rule) {
                failures.push(format!(
                    "{} must not fire in {spec}: {}",
                    case.rule, f.message
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_firing_and_a_silent_fixture() {
    let mut confirm = 0;
    for r in &RULES {
        let id = r.id();
        match r.stage() {
            // Set by `check --confirm` from experiments: tested with
            // injected experiment results in tests/confirm_settle.rs.
            Stage::Confirm => {
                confirm += 1;
                continue;
            }
            Stage::Baseline | Stage::Policy => {
                let case = STAGE_CASES
                    .iter()
                    .find(|c| c.rule == id)
                    .unwrap_or_else(|| panic!("{id} has no case in STAGE_CASES"));
                assert!(!case.fires.is_empty() && !case.silent.is_empty(), "{id}");
                assert!(
                    matches!(
                        (r.stage(), case.against),
                        (Stage::Baseline, Baseline(_)) | (Stage::Policy, Policy(_))
                    ),
                    "{id} is tested against another stage than its own"
                );
            }
            Stage::Diagnose | Stage::VendorTopology => {
                let case = CASES
                    .iter()
                    .find(|c| c.rule == id)
                    .unwrap_or_else(|| panic!("{id} has no case in the table"));
                assert!(!case.fires.is_empty() && !case.silent.is_empty(), "{id}");
            }
        }
    }
    assert_eq!(CASES.len() + STAGE_CASES.len() + confirm, RULES.len());
}

/// On every fixture of the corpus, each finding is of a rule the
/// diagnosis finds, at most as severe as the catalog says. In debug builds
/// (the tests') the diagnosis also holds each finding to the registry
/// entry whose check returned it (checks::run_all panics when a rule
/// emits another rule's ID), so this diagnosis of every fixture is that
/// test as well.
#[test]
fn every_fixture_s_findings_keep_to_their_rule_and_catalog_severity() {
    let catalog = Catalog::embedded();
    let mut failures = Vec::new();
    let specs = common::spec_names();
    assert!(specs.len() > 10, "the corpus is in tests/fixtures/specs");
    for spec in &specs {
        let d = match std::panic::catch_unwind(|| diagnose_spec(spec)) {
            Ok(d) => d,
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{spec}: the diagnosis panicked: {why}"));
                continue;
            }
        };
        for f in &d.findings {
            let Some(entry) = RULES.iter().find(|r| r.id() == f.rule) else {
                failures.push(format!("{spec}: {} has no registry entry", f.rule));
                continue;
            };
            if !matches!(entry.stage(), Stage::Diagnose | Stage::VendorTopology) {
                failures.push(format!(
                    "{spec}: {} is a rule of {:?}, yet the diagnosis found it",
                    f.rule,
                    entry.stage()
                ));
            }
            let most = catalog.find(&f.rule).map(|i| i.severity);
            // Error < Warning < Info: a smaller severity is a worse one.
            if most.is_none_or(|m| f.severity < m) {
                failures.push(format!(
                    "{spec}: {} found at {:?}, above its catalog severity {most:?}: {}",
                    f.rule, f.severity, f.message
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_clean_machine_has_no_finding_and_exits_zero() {
    let d = diagnose_spec("rule_clean");
    assert!(d.findings.is_empty(), "{:#?}", d.findings);
    assert_eq!(d.summary.verdict.predicted.as_str(), "clear");
    assert_eq!(d.exit_code(diagnose::FailOn::Warning), 0);
    assert_eq!(d.pairs.len(), 2, "the pair and the provider with itself");
    let own = d.pairs.iter().find(|p| p.provider() == p.client()).unwrap();
    assert_eq!(
        (own.verdict().map_type, own.verdict().distance),
        (diagnose::MapType::BusAddr, 0)
    );
    let p = d.pairs.iter().find(|p| p.provider() != p.client()).unwrap();
    assert_eq!(p.verdict().map_type, diagnose::MapType::BusAddr);
    assert_eq!(p.verdict().distance, 4);
    let b = p.bottleneck().unwrap();
    assert_eq!(b.link, "Gen3 x4");
}

#[test]
fn acs_fix_is_the_kernels_parameter_and_a_setpci_alternative() {
    let d = diagnose_spec("rule_acs_redirect");
    let f = d.findings.iter().find(|f| f.rule == "P2P301").unwrap();
    let fix = f.fix.as_ref().unwrap();
    assert_eq!(
        fix.params_line(),
        "pci=disable_acs_redir=0000:00:03.0",
        "{fix:?}"
    );
    assert!(
        fix.commands
            .iter()
            .any(|c| c == "sudo setpci -s 0000:00:03.0 ECAP_ACS+6.w=0000:002c"),
        "{fix:?}"
    );
    assert!(f.evidence.iter().any(|e| e
        == "kernel: nvme 0000:01:00.1: to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir=0000:00:03.0"));
    assert!(
        f.evidence.iter().any(
            |e| e == "kernel: pci 0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:29c0"
        )
    );
    assert_eq!(d.exit_code(diagnose::FailOn::Warning), 2);
    assert_eq!(d.exit_code(diagnose::FailOn::Error), 2);
}

#[test]
fn the_acs_fix_keeps_what_the_command_line_already_has() {
    // rule_acs_param keeps `0000:00:03.0/00.0/01.0;0000:09:00.0;0000:00:03.0`;
    // the fix must add 02:00.0 to that list, not replace it.
    let d = diagnose_spec("rule_acs_param");
    let f = d.findings.iter().find(|f| f.rule == "P2P301").unwrap();
    let fix = f.fix.as_ref().unwrap().to_string();
    assert!(
        fix.contains(
            "pci=disable_acs_redir=0000:00:03.0/00.0/01.0;0000:09:00.0;0000:00:03.0;0000:02:00.0"
        ),
        "{fix}"
    );
    let p305: Vec<_> = d.findings.iter().filter(|f| f.rule == "P2P305").collect();
    assert!(p305.iter().any(|f| f.message.contains("given 2 times")));
    assert!(
        p305.iter()
            .any(|f| f.message.contains("names no PCI device"))
    );
    assert!(p305.iter().any(|f| f.message.contains("no ACS capability")));
}

#[test]
fn warnings_exit_one_unless_fail_on_error() {
    let d = diagnose_spec("rule_acs_detour");
    assert_eq!(d.summary.verdict.predicted.as_str(), "warnings");
    assert_eq!(d.exit_code(diagnose::FailOn::Warning), 1);
    assert_eq!(d.exit_code(diagnose::FailOn::Error), 0);
    // Inconclusive is never "all clear".
    let d = diagnose_spec("rule_nonroot");
    assert!(
        d.findings
            .iter()
            .all(|f| f.status == Status::Inconclusive || f.severity == Info)
    );
    assert_eq!(d.exit_code(diagnose::FailOn::Warning), 1);
    assert!(d.pairs.iter().all(|p| !p.verdict().certain()));
}

#[test]
fn all_pairs_takes_every_endpoint_as_a_provider() {
    let tree = tree_of("rule_acs_ordering");
    let default = diagnose::diagnose(&tree, &Options::default());
    let all = diagnose::diagnose(
        &tree,
        &Options {
            all_pairs: true,
            ..Options::default()
        },
    );
    // one provider, three clients: itself (distance 0) and the other two
    assert_eq!(default.pairs.len(), 3);
    assert_eq!(all.pairs.len(), 9); // three endpoints, each to all three
    assert!(all.all_pairs && !default.all_pairs);
}

/// `nvidia-smi topo -m` kept in a capture: each column tied to its PCI
/// function (by the saved --query-gpu, /sys/class/infiniband, or order)
/// and every PCIe pair compared with p2pdoctor's class.
#[test]
fn the_vendor_matrix_is_compared_pair_by_pair() {
    use diagnose::Mapping;
    let d = diagnose_spec("rule_vendor_topology_agrees");
    let v = d
        .vendor_topology
        .as_ref()
        .expect("the saved matrix is read");
    let mapping: Vec<(&str, String, Mapping)> = v
        .devices
        .iter()
        .map(|x| (x.name.as_str(), x.bdf.unwrap().to_string(), x.mapping))
        .collect();
    assert_eq!(
        mapping,
        [
            ("GPU0", "0000:03:00.0".to_string(), Mapping::QueryGpu),
            ("GPU1", "0000:04:00.0".to_string(), Mapping::QueryGpu),
            ("GPU2", "0000:06:00.0".to_string(), Mapping::QueryGpu),
            ("NIC0", "0000:05:00.0".to_string(), Mapping::RdmaSysfs),
        ]
    );
    assert_eq!(v.pairs.len(), 6);
    assert_eq!(v.pairs.iter().filter(|p| p.agree == Some(true)).count(), 5);
    let nvlink = v.pairs.iter().find(|p| p.vendor == "NV18").unwrap();
    assert_eq!(nvlink.agree, None);

    let d = diagnose_spec("rule_vendor_topology");
    let f = d.findings.iter().find(|f| f.rule == "P2P803").unwrap();
    assert_eq!(
        f.evidence,
        ["GPU0 = 0000:03:00.0 ↔ NIC0 (mlx5_0) = 0000:05:00.0: nvidia-smi PXB, p2pdoctor PIX"]
    );
    assert!(
        f.message
            .contains("NIC0 (0000:05:00.0) was tied to its PCI address by address order"),
        "{}",
        f.message
    );
    // No saved matrix, no comparison.
    assert!(diagnose_spec("rule_clean").vendor_topology.is_none());
}

/// The GPU whose BAR1 is below what its Resizable BAR capability offers is
/// named with both sizes; its twin at the largest size is not.
#[test]
fn a_small_bar_names_the_gpu_the_bar_and_both_sizes() {
    let d = diagnose_spec("rule_small_bar");
    let found: Vec<_> = d.findings.iter().filter(|f| f.rule == "P2P804").collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found[0];
    assert_eq!(f.subjects, ["0000:01:00.0".parse().unwrap()]);
    assert!(f.message.contains("BAR1 at 256 MiB"), "{}", f.message);
    assert!(f.message.contains("up to 32 GiB"), "{}", f.message);
    let fix = f.fix.as_ref().unwrap();
    assert!(
        fix.commands
            .iter()
            .any(|c| c == "echo 15 | sudo tee /sys/bus/pci/devices/0000:01:00.0/resource1_resize"),
        "{fix:?}"
    );
}
#[test]
fn acs_drift_names_what_linux_set_and_what_undoes_a_setpci() {
    let d = diagnose_spec("rule_acs_drift");
    let drift: Vec<_> = d.findings.iter().filter(|f| f.rule == "P2P306").collect();
    assert_eq!(drift.len(), 2, "{drift:#?}");
    let cleared = drift
        .iter()
        .find(|f| f.subjects == ["0000:00:03.0".parse().unwrap()])
        .unwrap();
    assert!(
        cleared.message.contains("RR CR clear"),
        "{}",
        cleared.message
    );
    assert!(cleared.message.contains("pci_restore_state()"));
    assert!(
        cleared
            .evidence
            .iter()
            .any(|e| e.contains("ACS Control 0x001d")),
        "{:?}",
        cleared.evidence
    );
    let set_again = drift
        .iter()
        .find(|f| f.subjects == ["0000:00:04.0".parse().unwrap()])
        .unwrap();
    assert!(
        set_again.message.contains("RR CR set"),
        "{}",
        set_again.message
    );
    // The prediction follows the live registers: 00:03.0 no longer
    // redirects, so the provider with itself and its port are bus_addr.
    let own = d.pairs.iter().find(|p| p.provider() == p.client()).unwrap();
    assert_eq!(own.verdict().map_type, diagnose::MapType::BusAddr);
    assert!(own.verdict().certain());
}

/// Issue 11 item 3, end to end: a GPU server read without root, intel-iommu
/// on. The switch's downstream ports have SV RR CR UF (0x1d), which the
/// reader cannot see; their devices sit in IOMMU groups of their own, so
/// the model takes RR/CR as set (pci_std_enable_acs()) and predicts the
/// detour the kernel takes, marked uncertain.
#[test]
fn unreadable_acs_follows_the_iommu_groups() {
    let d = diagnose_spec("nonroot");
    let cross: Vec<_> = d
        .pairs
        .iter()
        .filter(|p| p.provider() != p.client() && p.verdict().common_upstream.is_some())
        .collect();
    assert!(!cross.is_empty());
    for p in &cross {
        assert!(!p.verdict().certain(), "{p:#?}");
        assert!(
            p.verdict().unknown.iter().any(|u| matches!(
                u,
                p2pdoctor::diagnose::p2pdma::Unknown::Acs {
                    assumed: true,
                    basis: p2pdoctor::diagnose::p2pdma::AcsBasis::GroupsIsolated,
                    ..
                }
            )),
            "{:#?}",
            p.verdict().unknown
        );
        // Ice Lake's 8086:09a2 is whitelisted: the detour is allowed.
        assert_eq!(
            p.verdict().map_type,
            diagnose::MapType::ThruHostBridge,
            "{p:#?}"
        );
    }
    assert!(
        d.pairs
            .iter()
            .all(|p| !p.verdict().certain() || p.verdict().map_type != diagnose::MapType::BusAddr)
    );
}

/// Issue 11 item 5, end to end: a Xen PV dom0 fails every mapping.
#[test]
fn a_xen_pv_dom0_fails_every_mapping() {
    let d = diagnose_spec("rule_xen_dom0");
    assert!(!d.pairs.is_empty());
    for p in &d.pairs {
        assert_eq!(p.verdict().map_type, diagnose::MapType::NotSupported);
        assert!(
            p.verdict()
                .blocked_by
                .as_deref()
                .unwrap()
                .contains("xen-swiotlb")
        );
        assert!(p.kernel_messages().is_empty());
    }
    assert!(
        !d.findings
            .iter()
            .any(|f| f.rule == "P2P401" || f.rule == "P2P301")
    );
    // An HVM guest uses the normal DMA ops.
    let hvm = p2pdoctor::scan::Hypervisor {
        kind: "xen".into(),
        guest_type: Some("HVM".into()),
        control_domain: Some(false),
        proc_xen: true,
    };
    assert_eq!(hvm.p2p_dma_blocker(), None);
}

/// Issue 11 item 6: providers without a p2pmem pool (6.19+ vfio-pci).
#[test]
fn a_vfio_pci_device_is_a_provider_without_a_pool_from_6_19() {
    let tree = tree_of("rule_vfio_provider");
    let at = |rel: &str| {
        let mut t = tree.clone();
        t.host.kernel_release = Some(rel.to_string());
        diagnose::diagnose(&t, &Options::default())
    };
    let d = at("7.2.0-1-amd64");
    let f = d.findings.iter().find(|f| f.rule == "P2P201").unwrap();
    assert_eq!(f.severity, Info, "{}", f.message);
    assert!(f.message.contains("pcim_p2pdma_init()"));
    let gpu = f.subjects[0];
    assert!(
        d.pairs
            .iter()
            .any(|p| p.provider() == gpu && p.client() != gpu)
    );
    assert!(d.devices.iter().any(|x| x.bdf == gpu && x.provider));
    // Before 6.19 vfio-pci registered nothing: no provider at all.
    let d = at("6.18.5");
    let f = d.findings.iter().find(|f| f.rule == "P2P201").unwrap();
    assert_eq!(f.severity, Error);
    assert!(d.pairs.is_empty());
}

/// A guest says so in the header and in a finding with its evidence.
#[test]
fn a_virtual_machine_is_named_with_its_evidence() {
    let d = diagnose_spec("cloud_vm_gpus");
    let v = d.header.virtualization.as_ref().expect("a guest");
    assert_eq!(v.hypervisor, "KVM/QEMU");
    for want in [
        "hypervisor bit",
        "sys/class/dmi/id/sys_vendor: QEMU",
        "subsystem ID 1af4:1100",
        "1 virtio (Red Hat/QEMU) PCI function",
    ] {
        assert!(
            v.evidence.iter().any(|e| e.contains(want)),
            "{want}: {:?}",
            v.evidence
        );
    }
    let f = d.findings.iter().find(|f| f.rule == "P2P110").unwrap();
    assert!(f.subjects.is_empty());
    assert_eq!(f.evidence, v.evidence);
    assert!(
        diagnose_spec("two_socket_server")
            .header
            .virtualization
            .is_none()
    );
}

/// The GPU/NIC/NVMe matrix: labels by kind and address, the OS's names,
/// NUMA and CPU affinity, and the wiring against where the kernel sends it.
#[test]
fn the_class_matrix_reads_like_nvidia_smi_topo() {
    use p2pdoctor::topology::PathClass::*;
    let d = diagnose_spec("rule_vendor_topology_agrees");
    let m = d.class_matrix.as_ref().expect("four devices");
    let labels: Vec<(&str, String)> = m
        .devices
        .iter()
        .map(|x| (x.label.as_str(), x.bdf.to_string()))
        .collect();
    assert_eq!(
        labels,
        [
            ("GPU0", "0000:03:00.0".to_string()),
            ("GPU1", "0000:04:00.0".to_string()),
            ("GPU2", "0000:06:00.0".to_string()),
            ("NIC0", "0000:05:00.0".to_string()),
        ]
    );
    // mlx5_0 from /sys/class/infiniband, NUMA and CPUs from sysfs.
    assert_eq!(m.devices[3].names, ["mlx5_0"]);
    assert_eq!(m.devices[0].numa_node, Some(0));
    assert!(m.devices[0].cpu_affinity.is_some());
    // The same classes nvidia-smi printed in the saved matrix.
    let class = |i: usize, j: usize| (m.cells[i][j].path_class, m.cells[i][j].effective_path_class);
    assert_eq!(class(0, 1), (Pix, Pix));
    assert_eq!(class(0, 3), (Pix, Pix));
    assert_eq!(class(0, 2), (Phb, Phb));
    assert!(m.cells.iter().flatten().all(|c| c.certain));
    // ACS redirect below one root port: wired PIX, behaves as PHB.
    let d = diagnose_spec("rule_acs_redirect");
    let m = d.class_matrix.as_ref().unwrap();
    assert_eq!(
        (m.cells[0][1].path_class, m.cells[0][1].effective_path_class),
        (Pix, Phb)
    );
    assert!(diagnose_spec("rule_clean").class_matrix.is_some());
    assert!(diagnose_spec("rule_small_bar").class_matrix.is_some());
}

/// --role limits pairs and matrix rows to the kinds asked for.
#[test]
fn role_limits_pairs_to_the_kinds_asked_for() {
    use p2pdoctor::diagnose::matrix::DeviceKind;
    let tree = tree_of("two_socket_server");
    let opts = Options {
        all_pairs: true,
        roles: vec![DeviceKind::Gpu, DeviceKind::Nic],
        ..Options::default()
    };
    let d = diagnose::diagnose(&tree, &opts);
    let kind =
        |b: p2pdoctor::pci::Bdf| DeviceKind::of_class(tree.node(tree.find(b).unwrap()).facts.class);
    assert!(!d.pairs.is_empty());
    for p in &d.pairs {
        for end in [p.provider(), p.client()] {
            assert!(
                matches!(kind(end), Some(DeviceKind::Gpu | DeviceKind::Nic)),
                "{end} is neither a GPU nor a NIC"
            );
        }
    }
    let m = d.class_matrix.unwrap();
    assert!(m.devices.iter().all(|x| x.kind != DeviceKind::Nvme));
    // Without --role the NVMe drives are there.
    let all = diagnose::diagnose(
        &tree,
        &Options {
            all_pairs: true,
            ..Options::default()
        },
    );
    assert!(all.pairs.len() > d.pairs.len());
}

/// The 8-GPU box with two levels of switches per socket: PIX below one
/// level-2 switch, PXB across the level-1 switch, SYS across sockets, and
/// with Linux's ACS redirect on every port, effective PHB for all of them.
#[test]
fn an_8_gpu_box_with_two_switch_levels_classes_like_nvml() {
    use p2pdoctor::topology::PathClass::*;
    let d = diagnose_spec("hgx_8gpu_two_level_switches");
    let m = d.class_matrix.as_ref().unwrap();
    let gpus = m
        .devices
        .iter()
        .filter(|x| x.label.starts_with("GPU"))
        .count();
    let nics = m
        .devices
        .iter()
        .filter(|x| x.label.starts_with("NIC"))
        .count();
    assert_eq!((gpus, nics), (8, 4));
    let class = |i: usize, j: usize| (m.cells[i][j].path_class, m.cells[i][j].effective_path_class);
    assert_eq!(class(0, 1), (Pix, Phb));
    assert_eq!(class(0, 2), (Pxb, Phb));
    assert_eq!(class(0, 4), (Sys, Sys));
    // NIC0 sits with GPU0 and GPU1.
    assert_eq!(class(0, 8), (Pix, Phb));
    assert!(d.findings.iter().any(|f| f.rule == "P2P503"));
}

/// An AMD EPYC box with every GPU on a root port of its own, held to
/// NVML's classes (nvml.h, nvmlGpuTopologyLevel_t): two root ports of one
/// root complex are PHB (NVML_TOPOLOGY_HOSTBRIDGE), two root complexes of
/// one NUMA node NODE (NVML_TOPOLOGY_NODE), across sockets SYS
/// (NVML_TOPOLOGY_SYSTEM). Never PIX or PXB: no switch or bridge is shared.
#[test]
fn epyc_gpus_on_separate_root_ports_have_nvml_classes() {
    use p2pdoctor::topology::PathClass::*;
    let d = diagnose_spec("epyc_gpus_separate_root_ports");
    let m = d.class_matrix.as_ref().expect("four GPUs and a NIC");
    let at = |bdf: &str| {
        m.devices
            .iter()
            .position(|x| x.bdf.to_string() == bdf)
            .unwrap_or_else(|| panic!("{bdf} not in the matrix"))
    };
    let (g0, g1, g2, g3, nic) = (
        at("0000:01:00.0"),
        at("0000:02:00.0"),
        at("0000:41:00.0"),
        at("0000:81:00.0"),
        at("0000:42:00.0"),
    );
    let class = |i: usize, j: usize| m.cells[i][j].path_class;
    assert_eq!(class(g0, g1), Phb, "two root ports of one root complex");
    assert_eq!(class(g2, nic), Phb);
    assert_eq!(class(g0, g2), Node, "two root complexes of NUMA node 0");
    assert_eq!(class(g1, nic), Node);
    for x in [g0, g1, g2, nic] {
        assert_eq!(class(x, g3), Sys, "across sockets");
        assert_eq!(class(g3, x), Sys);
    }
    // The matrix is symmetric, and nothing is wired below one switch.
    for i in 0..m.devices.len() {
        for j in 0..m.devices.len() {
            assert_eq!(class(i, j), class(j, i));
            if i != j {
                assert!(!matches!(class(i, j), Pix | Pxb), "{i} {j}");
                // AMD Zen lets the kernel map through the host bridge, and
                // every such path already goes through it.
                assert_eq!(m.cells[i][j].effective_path_class, class(i, j));
                assert_eq!(m.cells[i][j].bandwidth_bound, Some(63.02));
            }
        }
    }
    // All Gen5 x16 with RO on the NIC: no link or ordering rule speaks.
    for rule in ["P2P603", "P2P604", "P2P605", "P2P701", "P2P702", "P2P705"] {
        assert!(d.findings.iter().all(|f| f.rule != rule), "{rule}");
    }
}

/// P2P805 shows both views for the pair they disagree on, and only that
/// pair: GPU0/GPU1 ↔ GPU2 are OK on both sides.
#[test]
fn the_p2p_read_matrix_is_compared_pair_by_pair() {
    let d = diagnose_spec("rule_vendor_p2p_read");
    let f = d.findings.iter().find(|f| f.rule == "P2P805").unwrap();
    assert_eq!(
        f.evidence,
        [
            "GPU0 = 0000:03:00.0 ↔ GPU1 = 0000:04:00.0: nvidia-smi CNS (chipset not supported); p2pdoctor: direct P2P, bus_addr (PIX)"
        ]
    );
    assert!(
        f.message.contains("1 of 3 GPU pairs compared"),
        "{}",
        f.message
    );
    let subjects: Vec<String> = f.subjects.iter().map(|b| b.to_string()).collect();
    assert_eq!(subjects, ["0000:03:00.0", "0000:04:00.0"]);
}

/// Where the Intel IOMMU driver's debugfs table was read, P2P503 rests on
/// its per-device context entries and says so; the header's IOMMU mode
/// does too.
#[test]
fn iommu_findings_rest_on_the_drivers_debugfs_when_present() {
    let d = diagnose_spec("rule_iommu_debugfs_translated");
    let f = d.findings.iter().find(|f| f.rule == "P2P503").unwrap();
    assert_eq!(f.evidence.len(), 3);
    for line in &f.evidence {
        assert!(
            line.contains("translated per the IOMMU driver")
                && line.contains("/sys/kernel/debug/iommu/intel/dmar_translation_struct"),
            "{line}"
        );
    }
    assert_eq!(
        d.header.iommu.mode,
        p2pdoctor::diagnose::IommuMode::Translated
    );
    let d = diagnose_spec("rule_iommu_debugfs_identity");
    assert_eq!(
        d.header.iommu.mode,
        p2pdoctor::diagnose::IommuMode::Passthrough
    );
    // Without debugfs, the group type is the source, and it says so.
    let d = diagnose_spec("two_socket_server");
    let f = d.findings.iter().find(|f| f.rule == "P2P503").unwrap();
    assert!(
        f.evidence
            .iter()
            .all(|l| l.contains("/sys/kernel/iommu_groups/")),
        "{:?}",
        f.evidence
    );
}

/// P2P304 is about EC on its own: a port with Egress Control and neither
/// RR-without-CR nor DT (rule_acs_ordering's 02:01.0 with DT cleared)
/// still gets it, and P2P303 (DT) no longer does.
#[test]
fn egress_control_alone_is_reported() {
    fn clear_dt(v: &mut toml::Value) -> usize {
        let mut n = 0;
        match v {
            toml::Value::Table(t) => {
                if let Some(acs) = t.get_mut("acs").and_then(|a| a.as_table_mut())
                    && acs.get("ctrl").and_then(toml::Value::as_integer) == Some(0x60)
                {
                    acs.insert("ctrl".into(), toml::Value::Integer(0x20));
                    n += 1;
                }
                for (_, child) in t.iter_mut() {
                    n += clear_dt(child);
                }
            }
            toml::Value::Array(a) => a.iter_mut().for_each(|c| n += clear_dt(c)),
            _ => {}
        }
        n
    }
    let (_dir, root) = common::variant_of("rule_acs_ordering", |v| {
        assert_eq!(clear_dt(v), 1, "one port with ACS Control EC DT");
    });
    let d = diagnose::diagnose(&tree_at(&root), &Options::default());
    let ids: Vec<&str> = d.findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(ids.contains(&"P2P304"), "{ids:?}");
    assert!(!ids.contains(&"P2P303"), "{ids:?}");
}

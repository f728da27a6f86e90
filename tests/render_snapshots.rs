//! Snapshot tests (insta) of the three renderings: the human tree, the JSON
//! document and the DOT graph, on a generated fixture and on a snapshot a
//! real kernel made in the lab. Review changes with `cargo insta review`.

mod common;

use common::*;

fn render(root: &std::path::Path, args: &[&str]) -> String {
    let out = stdout_ok(root, args);
    // The root's path differs between machines and runs.
    out.replace(&root.display().to_string(), "<ROOT>")
}

#[test]
fn acs_switch_renderings() {
    let built = build("acs_switch");
    let root = built.root();
    insta::assert_snapshot!(
        "acs_switch_text",
        render(&root, &["topo", "--color", "never"])
    );
    insta::assert_snapshot!(
        "acs_switch_json",
        render(&root, &["topo", "--format", "json"])
    );
    insta::assert_snapshot!("acs_switch_dot", render(&root, &["topo", "--dot"]));
}

#[test]
fn lab_switch_renderings() {
    let root = fixtures_dir().join("lab/01-switch.tar.gz");
    insta::assert_snapshot!(
        "lab_switch_text",
        render(&root, &["topo", "--color", "never"])
    );
    insta::assert_snapshot!("lab_switch_dot", render(&root, &["topo", "--dot"]));
}

#[test]
fn nonroot_rendering() {
    let built = build("nonroot");
    insta::assert_snapshot!(
        "nonroot_text",
        render(&built.root(), &["topo", "--color", "never"])
    );
}

//! Builds a fixture system tree from a spec.
//!
//!     cargo run --example mkfixture -- SPEC.toml OUT_DIR
//!     cargo run --example mkfixture -- --large 4096 OUT_DIR
//!     cargo run --example mkfixture -- --large 4096 --dump   (print the spec as TOML)
//!
//! OUT_DIR must be absent or empty. Then, for example:
//!     lspci -tv -A linux-sysfs -O sysfs.path=OUT_DIR/sys/bus/pci

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use p2pdoctor_fixture::{Spec, build, large_server};

const USAGE: &str = "usage: mkfixture SPEC.toml OUT_DIR\n       mkfixture --large FUNCTIONS OUT_DIR\n       mkfixture (SPEC.toml | --large FUNCTIONS) --dump";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (spec, rest) = match args.first().map(String::as_str) {
        Some("--large") => {
            let n: usize = args
                .get(1)
                .context(USAGE)?
                .parse()
                .context("--large takes a number of PCI functions, e.g. 4096")?;
            (large_server(n), &args[2..])
        }
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            return Ok(());
        }
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading spec {path}"))?;
            let spec = Spec::from_toml(&text).with_context(|| format!("in spec {path}"))?;
            (spec, &args[1..])
        }
    };
    match rest {
        [flag] if flag == "--dump" => {
            print!("{}", spec.to_toml()?);
        }
        [out] => {
            let out = PathBuf::from(out);
            let started = Instant::now();
            build(&spec, &out).with_context(|| format!("building fixture in {}", out.display()))?;
            eprintln!(
                "built {} PCI functions in {} ({:.2?})",
                spec.function_count()?,
                out.display(),
                started.elapsed()
            );
        }
        _ => bail!("{USAGE}"),
    }
    Ok(())
}

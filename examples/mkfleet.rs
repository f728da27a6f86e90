//! Writes a generated fleet of snapshots for `p2pdoctor fleet`.
//!
//!     cargo run --release --example mkfleet -- 1000 OUT_DIR
//!
//! Node i is a variant of two fixture machines (see
//! p2pdoctor_fixture::fleet): most are the GPU server as it is, one in 25 a
//! storage server, and one in 50 each has ACS cleared on a switch port, a
//! GPU link trained x8, or an NVMe missing; all have their own host name,
//! serial numbers and root=UUID. Each is built as a tree, captured with the
//! same code as `p2pdoctor snapshot`, and written as OUT_DIR/node-NNNN.tar.gz.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use p2pdoctor::root::SystemRoot;
use p2pdoctor_fixture::{build, fleet};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: mkfleet N OUT_DIR";
    let n: usize = args.first().context(usage)?.parse().context(usage)?;
    let out = PathBuf::from(args.get(1).context(usage)?);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok(());
                        }
                        let spec = fleet::fleet_node(i)?;
                        let tmp = tempfile::tempdir()?;
                        let root = tmp.path().join("root");
                        build(&spec, &root)?;
                        let snap = p2pdoctor::snapshot::capture(SystemRoot::open(&root)?, false)?;
                        let path = out.join(format!("{}.tar.gz", fleet::node_name(i)));
                        std::fs::write(&path, &snap.archive)
                            .with_context(|| format!("writing {}", path.display()))?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker panicked")?;
        }
        Ok(())
    })?;
    eprintln!(
        "wrote {n} snapshots to {} in {:.1?}",
        out.display(),
        started.elapsed()
    );
    Ok(())
}

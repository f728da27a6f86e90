//! `p2pdoctor copy` on regular files and loop devices, with a stand-in file
//! for p2pmem (the lab runs the real thing): verification, the write
//! guard, the journal, a kill and a Ctrl-C in the middle of writing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// A scratch disk: a file, and a loop device over it when we may make one.
struct Scratch {
    file: PathBuf,
    loop_dev: Option<String>,
}

impl Scratch {
    fn new(dir: &Path, name: &str, len: usize, seed: u8, want_loop: bool) -> Scratch {
        let file = dir.join(name);
        let data: Vec<u8> = (0..len)
            .map(|i| (((i as u64 * 2654435761) >> 7) as u8) ^ seed)
            .collect();
        std::fs::write(&file, data).unwrap();
        let loop_dev = want_loop
            .then(|| {
                Command::new("losetup")
                    .args(["-f", "--show"])
                    .arg(&file)
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            })
            .flatten();
        Scratch { file, loop_dev }
    }

    /// The path to hand to p2pdoctor.
    fn dev(&self) -> String {
        self.loop_dev
            .clone()
            .unwrap_or_else(|| self.file.display().to_string())
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.file).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(d) = &self.loop_dev {
            let _ = Command::new("losetup").args(["-d", d]).status();
        }
    }
}

fn can_loop() -> bool {
    rustix::process::geteuid().is_root() && Path::new("/dev/loop-control").exists()
}

fn p2pdoctor(journal: &Path) -> Command {
    let mut c = Command::cargo_bin("p2pdoctor").unwrap();
    c.env("P2PDOCTOR_JOURNAL_DIR", journal)
        .env_remove("P2PDOCTOR_ROOT")
        .env("NO_COLOR", "1");
    c
}

/// The report, checked against schema/copy.schema.json.
fn json(out: &std::process::Output) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    common::schema::assert_valid("copy", &v);
    v
}

#[test]
fn read_through_a_stand_in_is_verified_on_files_and_loop_devices() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let stand_in = dir.path().join("p2pmem");
    std::fs::write(&stand_in, b"").unwrap();
    for want_loop in [false, true] {
        if want_loop && !can_loop() {
            eprintln!("skipping loop devices: not root or no /dev/loop-control");
            continue;
        }
        let src = Scratch::new(dir.path(), "src.img", 8 << 20, 1, want_loop);
        for engine in [["--engine", "uring"], ["--threads", "8"]] {
            let out = p2pdoctor(&journal)
                .args(["copy", &src.dev(), "--via"])
                .arg(&stand_in)
                .args(["--size", "4M", "--chunk", "64K"])
                .args(engine)
                .args(["--format", "json", "--repeat", "2"])
                .output()
                .unwrap();
            let v = json(&out);
            assert_eq!(out.status.code(), Some(0), "{v:#}");
            assert_eq!(v["outcome"], "ok");
            assert_eq!(v["mode"], "read");
            assert_eq!(v["via"]["kind"], "stand-in");
            assert_eq!(
                v["verify"]["bytes_compared"],
                2 * 4 * 1024 * 1024,
                "every byte, twice"
            );
            assert_eq!(v["verify"]["bytes_differ"], 0);
            assert_eq!(v["main"]["bytes"], 2 * 4 * 1024 * 1024);
            assert!(v["main"]["gbps"].as_f64().unwrap() > 0.0);
            assert!(v["baseline"]["latency_us"]["p99"].as_f64().unwrap() > 0.0);
            assert!(v["ratio"].as_f64().unwrap() > 0.0);
            assert_eq!(v["runs"].as_array().unwrap().len(), 2);
            let want = if engine[0] == "--threads" {
                "threads"
            } else {
                "uring"
            };
            assert_eq!(v["params"]["engine"], want);
            assert_eq!(v["params"]["qd"], if want == "threads" { 8 } else { 32 });
        }
    }
}

#[test]
fn writing_needs_write_naming_dst_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let stand_in = dir.path().join("p2pmem");
    std::fs::write(&stand_in, b"").unwrap();
    let lp = can_loop();
    let src = Scratch::new(dir.path(), "src.img", 8 << 20, 1, lp);
    let dst = Scratch::new(dir.path(), "dst.img", 8 << 20, 2, lp);
    let before = dst.bytes();

    // no --write: refused before anything is opened for writing
    let out = p2pdoctor(&journal)
        .args(["copy", &src.dev(), &dst.dev(), "--via"])
        .arg(&stand_in)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("--write {}", dst.dev())), "{err}");
    // --write naming another device
    let out = p2pdoctor(&journal)
        .args(["copy", &src.dev(), &dst.dev(), "--via"])
        .arg(&stand_in)
        .args(["--write", &src.dev()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not name DST"));
    // a range outside what --write allows
    let out = p2pdoctor(&journal)
        .args(["copy", &src.dev(), &dst.dev(), "--via"])
        .arg(&stand_in)
        .args(["--write", &format!("{}:4M+1M", dst.dev()), "--size", "2M"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside what --write allows"));
    assert_eq!(dst.bytes(), before);

    // allowed: copied, verified against SRC, then put back
    let out = p2pdoctor(&journal)
        .args(["copy", &src.dev(), &dst.dev(), "--via"])
        .arg(&stand_in)
        .args(["--write", &format!("{}:1M+4M", dst.dev())])
        .args([
            "--offset", "1M", "--size", "4M", "--qd", "4", "--format", "json",
        ])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["mode"], "copy");
    assert_eq!(v["verify"]["bytes_compared"], 4 << 20);
    assert_eq!(v["verify"]["bytes_differ"], 0);
    assert_eq!(v["restore"]["restored"], true);
    assert!(dst.bytes() == before, "DST restored byte for byte");
    assert_eq!(
        std::fs::read_dir(&journal).unwrap().count(),
        0,
        "journal removed"
    );

    // human output says all of it
    let out = p2pdoctor(&journal)
        .args(["copy", &src.dev(), &dst.dev(), "--via"])
        .arg(&stand_in)
        .args(["--write", &dst.dev(), "--size", "1M"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for want in [
        "P2P ",
        "host ",
        "ratio",
        "all 1048576 bytes match",
        "restored the original 1 MiB",
        "OK: ",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(dst.bytes() == before);
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let src = Scratch::new(dir.path(), "src.img", 1 << 20, 1, false);
    let cases: &[(&[&str], &str)] = &[
        (&["--host", "--chunk", "1000"], "multiple of 4096"),
        (&["--host", "--size", "2M"], "runs past its end"),
        (&["--host", "--offset", "100"], "multiples of"),
        (&["--host", "--size", "12Q"], "unknown unit"),
        (&["--via", "0000:ff:1f.7"], "no PCI function"),
        (&["--via", "/nonexistent"], "neither a PCI address"),
        (&["--host", "--duration", "0s"], "must be positive"),
    ];
    for (args, want) in cases {
        let out = p2pdoctor(&journal)
            .args(["copy", &src.dev()])
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
    // --root: a capture cannot run an experiment
    let out = p2pdoctor(&journal)
        .args(["--root", "/tmp", "copy", &src.dev(), "--host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("capture"));
}

/// Starts a long copy that writes DST, waits until it is writing, then
/// sends `signal`.
fn start_and_signal(
    dir: &Path,
    journal: &Path,
    src: &Scratch,
    dst: &Scratch,
    signal: i32,
) -> std::process::Output {
    let stand_in = dir.join("p2pmem-sig");
    std::fs::write(&stand_in, b"").unwrap();
    let child = p2pdoctor(journal)
        .args(["copy", &src.dev(), &dst.dev(), "--via"])
        .arg(&stand_in)
        .args([
            "--write",
            &dst.dev(),
            "--size",
            "4M",
            "--qd",
            "4",
            "--duration",
            "60s",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let before = dst.bytes();
    // the journal appears before the first write; then wait for DST to change
    loop {
        let journal_there = std::fs::read_dir(journal).is_ok_and(|mut d| d.next().is_some());
        if journal_there && dst.bytes() != before {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the copy never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    child.wait_with_output().unwrap()
}

#[test]
fn killed_mid_write_the_journal_restores_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let lp = can_loop();
    let src = Scratch::new(dir.path(), "src.img", 8 << 20, 3, lp);
    let dst = Scratch::new(dir.path(), "dst.img", 8 << 20, 4, lp);
    let original = dst.bytes();
    let out = start_and_signal(dir.path(), &journal, &src, &dst, libc::SIGKILL);
    assert_eq!(out.status.code(), None, "killed");
    assert!(dst.bytes() != original, "the kill left DST changed");
    assert_eq!(
        std::fs::read_dir(&journal).unwrap().count(),
        1,
        "and the journal behind"
    );

    // the next run of anything that writes restores it first
    let out = p2pdoctor(&journal)
        .args(["copy", &src.dev(), "--host", "--size", "1M", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("restored 4194304 bytes at offset 0"), "{err}");
    assert!(dst.bytes() == original, "DST is back byte for byte");
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);

    // and `restore` finds nothing more to do
    let out = p2pdoctor(&journal).arg("restore").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no journal to restore"));
}

#[test]
fn killed_mid_write_then_restore_command() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let src = Scratch::new(dir.path(), "src.img", 8 << 20, 5, false);
    let dst = Scratch::new(dir.path(), "dst.img", 8 << 20, 6, false);
    let original = dst.bytes();
    let out = start_and_signal(dir.path(), &journal, &src, &dst, libc::SIGKILL);
    assert_eq!(out.status.code(), None);
    let out = p2pdoctor(&journal).arg("restore").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("restored"), "{err}");
    assert!(dst.bytes() == original);
}

#[test]
fn ctrl_c_stops_cleanly_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let lp = can_loop();
    let src = Scratch::new(dir.path(), "src.img", 8 << 20, 7, lp);
    let dst = Scratch::new(dir.path(), "dst.img", 8 << 20, 8, lp);
    let original = dst.bytes();
    let out = start_and_signal(dir.path(), &journal, &src, &dst, libc::SIGINT);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["outcome"], "interrupted");
    assert_eq!(v["restore"]["restored"], true);
    assert!(dst.bytes() == original, "DST restored before exiting");
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
}

#[test]
fn a_mounted_device_is_never_written() {
    if !can_loop() || Command::new("mkfs.ext2").arg("-V").output().is_err() {
        eprintln!("skipping: needs root, loop devices and mkfs.ext2");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let src = Scratch::new(dir.path(), "src.img", 8 << 20, 1, true);
    let dst = Scratch::new(dir.path(), "fs.img", 8 << 20, 0, true);
    let Some(dev) = dst.loop_dev.clone() else {
        return;
    };
    assert!(
        Command::new("mkfs.ext2")
            .args(["-q", &dev])
            .status()
            .unwrap()
            .success()
    );
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    if !Command::new("mount")
        .arg(&dev)
        .arg(&mnt)
        .status()
        .unwrap()
        .success()
    {
        eprintln!("skipping: mount is not allowed here");
        return;
    }
    let out = p2pdoctor(&journal)
        .args([
            "copy",
            &src.dev(),
            &dev,
            "--host",
            "--write",
            &dev,
            "--size",
            "1M",
        ])
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(&mnt).status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is mounted on"), "{err}");
    // (the mount itself writes the superblock, so DST's bytes cannot be
    // compared; no journal means nothing was about to be written)
    assert!(!journal.exists() || std::fs::read_dir(&journal).unwrap().count() == 0);
}

/// A time-limited copy that stops part-way through the range verifies
/// exactly what moved: every chunk that started finishes both legs.
#[test]
fn a_duration_cut_short_verifies_what_moved() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let stand_in = dir.path().join("p2pmem");
    std::fs::write(&stand_in, b"").unwrap();
    let src = Scratch::new(dir.path(), "src.img", 64 << 20, 9, false);
    let dst = Scratch::new(dir.path(), "dst.img", 64 << 20, 10, false);
    for engine in ["uring", "threads"] {
        let out = p2pdoctor(&journal)
            .args(["copy", &src.dev(), &dst.dev(), "--via"])
            .arg(&stand_in)
            .args([
                "--write",
                &dst.dev(),
                "--size",
                "64M",
                "--chunk",
                "64K",
                "--qd",
                "16",
            ])
            .args([
                "--duration",
                "10ms",
                "--engine",
                engine,
                "--no-baseline",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        let v = json(&out);
        assert_eq!(out.status.code(), Some(0), "{engine}: {v:#}");
        let moved = v["main"]["bytes"].as_u64().unwrap();
        let checked = v["verify"]["bytes_compared"].as_u64().unwrap();
        assert_eq!(checked, moved.min(64 << 20), "{engine}");
        assert_eq!(v["verify"]["bytes_differ"], 0, "{engine}");
    }
}

/// `--no-verify` says what it skipped, and its rate carries its unit like
/// the verified line does.
#[test]
fn an_unverified_copy_says_so_with_its_rate_in_units() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let stand_in = dir.path().join("p2pmem");
    std::fs::write(&stand_in, b"").unwrap();
    let src = Scratch::new(dir.path(), "src.img", 4 << 20, 1, false);
    let out = p2pdoctor(&journal)
        .args(["copy", &src.dev(), "--via"])
        .arg(&stand_in)
        .args(["--size", "2M", "--no-verify", "--format", "json"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.ends_with(" GB/s (not verified)"),
        "the rate has its unit: {message}"
    );
}

use super::archive::{archive_name, read_archive_within};
use super::*;

fn mem(entries: &[(&str, Entry)]) -> SystemRoot {
    let map = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    SystemRoot::from_entries(Path::new("test"), map)
}

fn file(s: &str) -> Entry {
    Entry::File(s.as_bytes().to_vec())
}

fn link(s: &str) -> Entry {
    Entry::Symlink(s.to_string())
}

#[test]
fn follows_relative_links_like_sysfs() {
    let r = mem(&[
        (
            "sys/bus/pci/devices/0000:01:00.0",
            link("../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0"),
        ),
        (
            "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/vendor",
            file("0x8086\n"),
        ),
    ]);
    assert_eq!(
        r.resolve("sys/bus/pci/devices/0000:01:00.0", true).unwrap(),
        "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"
    );
    assert_eq!(
        r.read_string("sys/bus/pci/devices/0000:01:00.0/vendor")
            .unwrap(),
        "0x8086"
    );
    assert_eq!(
        r.read_dir("sys/bus/pci/devices").unwrap(),
        vec!["0000:01:00.0".to_string()]
    );
}

#[test]
fn absolute_and_escaping_links_stay_inside() {
    let r = mem(&[
        ("etc/passwd", file("inside")),
        ("sys/a", link("/etc/passwd")),
        ("sys/b", link("../../../../../../etc/passwd")),
    ]);
    assert_eq!(r.read_string("sys/a").unwrap(), "inside");
    assert_eq!(r.read_string("sys/b").unwrap(), "inside");
}

#[test]
fn dangling_and_looping_links_are_errors_not_panics() {
    let r = mem(&[
        ("a", link("b")),
        ("b", link("a")),
        ("c", link("nowhere")),
        ("f", file("x")),
    ]);
    assert!(r.read("a").is_err());
    assert!(r.read("c").is_err());
    assert!(r.read("f/under-a-file").is_err());
    assert!(!r.exists("c"));
}

#[test]
fn directory_root_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "secret").unwrap();
    fs::create_dir_all(dir.path().join("sys")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("sys/abs")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../../../etc/hostname",
        dir.path().join("sys/rel"),
    )
    .unwrap();
    let r = SystemRoot::open(dir.path()).unwrap();
    assert!(!r.is_live());
    assert!(
        r.read("sys/abs").is_err(),
        "absolute link must be re-rooted"
    );
    assert!(
        r.read("sys/rel").is_err(),
        "relative escape must stop at the root"
    );
}

#[test]
fn open_dir_follows_links_inside_the_root() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "secret").unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("sys/devices/real")).unwrap();
    fs::create_dir_all(d.join("sys/bus")).unwrap();
    fs::write(d.join("sys/devices/real/config"), "cfg").unwrap();
    symlink(outside.path(), d.join("sys/devices/away")).unwrap();
    symlink(
        outside.path().join("secret"),
        d.join("sys/devices/real/bad"),
    )
    .unwrap();
    symlink("config", d.join("sys/devices/real/alias")).unwrap();
    symlink("../devices/real", d.join("sys/bus/x")).unwrap();
    symlink("/sys/devices/real", d.join("sys/devices/hop")).unwrap();
    symlink("../devices/hop", d.join("sys/bus/two")).unwrap();
    symlink("../devices/away", d.join("sys/bus/esc")).unwrap();
    symlink("../devices/real/config", d.join("sys/bus/file")).unwrap();
    symlink("loop", d.join("sys/bus/loop")).unwrap();
    let r = SystemRoot::open(d).unwrap();

    for link in ["sys/bus/x", "sys/bus/two", "sys/devices/real"] {
        let h = r.open_dir(link).unwrap();
        assert_eq!(h.path(), "sys/devices/real", "{link}");
        assert_eq!(r.read_string_at(&h, "config").unwrap(), "cfg");
        assert_eq!(r.read_string_at(&h, "alias").unwrap(), "cfg");
        assert!(r.exists_at(&h, "config") && r.exists_at(&h, "alias"));
        assert!(!r.exists_at(&h, "missing"));
        assert!(r.read_at(&h, "bad").is_err(), "absolute link re-rooted");
        assert!(!r.exists_at(&h, "bad"));
        assert_eq!(r.link_name_at(&h, "alias").as_deref(), Some("config"));
        assert_eq!(r.link_name_at(&h, "config"), None);
    }
    let bus = r.open_dir("sys/bus").unwrap();
    for name in ["x", "two"] {
        let h = r.open_dir_in(&bus, name).unwrap();
        assert_eq!(h.path(), "sys/devices/real", "{name}");
        assert_eq!(r.read_string_at(&h, "config").unwrap(), "cfg");
    }
    for name in ["esc", "loop", "none"] {
        assert!(r.open_dir_in(&bus, name).is_err(), "{name}");
    }
    // A directory link leading out of the root is re-rooted: nothing.
    assert!(r.open_dir("sys/bus/esc").is_err());
    assert!(r.open_dir("sys/bus/loop").is_err());
    assert!(r.open_dir("sys/bus/none").is_err());
    // A link to a file resolves, but nothing can be read below it.
    let h = r.open_dir("sys/bus/file").unwrap();
    assert_eq!(h.path(), "sys/devices/real/config");
    assert!(r.read_at(&h, "config").is_err());
}

#[test]
fn read_below_checks_the_middle_directory() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(outside.path().join("7")).unwrap();
    fs::write(outside.path().join("7/type"), "outside").unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("sys/kernel/iommu_groups/1")).unwrap();
    fs::create_dir_all(d.join("sys/kernel/real/4")).unwrap();
    fs::write(d.join("sys/kernel/iommu_groups/1/type"), "DMA\n").unwrap();
    fs::write(d.join("sys/kernel/real/4/type"), "identity\n").unwrap();
    symlink("../real/4", d.join("sys/kernel/iommu_groups/4")).unwrap();
    symlink(
        outside.path().join("7"),
        d.join("sys/kernel/iommu_groups/7"),
    )
    .unwrap();
    symlink(
        outside.path().join("7/type"),
        d.join("sys/kernel/iommu_groups/1/link"),
    )
    .unwrap();
    let r = SystemRoot::open(d).unwrap();
    let groups = "sys/kernel/iommu_groups";
    assert_eq!(r.read_string_below(groups, "1", "type").unwrap(), "DMA");
    assert_eq!(
        r.read_string_below(groups, "4", "type").unwrap(),
        "identity"
    );
    assert!(
        r.read_string_below(groups, "7", "type").is_err(),
        "re-rooted"
    );
    assert!(
        r.read_string_below(groups, "1", "link").is_err(),
        "re-rooted"
    );
    assert!(r.read_string_below(groups, "9", "type").is_err());
    assert!(r.read_string_below(groups, "1", "none").is_err());
    assert!(
        r.read_string_below(groups, "..", "iommu_groups/1/type")
            .is_ok()
    );
}

#[test]
fn recording_keeps_links_and_files_read() {
    let r = mem(&[
        ("sys/bus/pci/devices/x", link("../../../devices/x")),
        ("sys/devices/x/config", file("abc")),
        ("sys/devices/x/other", file("unread")),
    ])
    .record();
    r.read_dir("sys/bus/pci/devices").unwrap();
    r.read("sys/bus/pci/devices/x/config").unwrap();
    let rec = r.recorded();
    assert_eq!(
        rec.get("sys/bus/pci/devices/x"),
        Some(&link("../../../devices/x"))
    );
    assert_eq!(rec.get("sys/devices/x/config"), Some(&file("abc")));
    assert!(!rec.contains_key("sys/devices/x/other"));
}

/// A gzip tar of `files`, then `tail` zero bytes after the tar's end.
fn tar_gz(files: &[(&str, &[u8])], links: &[(&str, &str)], tail: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    for (name, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, name, target).unwrap();
    }
    let mut raw = b.into_inner().unwrap();
    raw.resize(raw.len() + tail, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    gz.finish().unwrap()
}

#[test]
fn archive_bounds_say_too_large_and_the_crc_is_checked() {
    // A member larger than its kind can be: refused by its header.
    let big = vec![0u8; 5000];
    let e = read_archive(&tar_gz(&[("sys/devices/x/config", &big)], &[], 0)[..])
        .err()
        .unwrap();
    assert!(e.starts_with("too large: member"), "{e}");
    assert!(e.contains("more than the 4096"), "{e}");
    // A bomb: expands past the bound (here 1 MiB, 4 MiB of zeros).
    let bomb = tar_gz(&[("sys/a", b"x")], &[], 4 << 20);
    let e = read_archive_within(&bomb[..], 1 << 20).err().unwrap();
    assert!(e.starts_with("too large: it expands"), "{e}");
    assert!(read_archive_within(&bomb[..], 8 << 20).is_ok());
    // The gzip trailer's CRC-32 is checked.
    let mut bad = tar_gz(&[("sys/a", b"x")], &[], 0);
    let n = bad.len();
    bad[n - 8] ^= 0xff;
    let e = read_archive(&bad[..]).err().unwrap();
    assert!(e.contains("checksum"), "{e}");
    // Hard links are followed inside the archive, or noted.
    let ok = tar_gz(
        &[("sys/a", b"same")],
        &[("sys/b", "sys/a"), ("sys/c", "nowhere")],
        0,
    );
    let loaded = read_archive(&ok[..]).unwrap();
    assert_eq!(loaded.entries.get("sys/b"), Some(&file("same")));
    assert!(!loaded.entries.contains_key("sys/c"));
    assert!(
        loaded.notes[0].contains("`sys/c` is a hard link"),
        "{:?}",
        loaded.notes
    );
}

#[test]
fn only_regular_files_within_their_bound_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dev = d.join("sys/devices/pci0000:00/0000:00:01.0");
    fs::create_dir_all(&dev).unwrap();
    fs::create_dir_all(d.join("proc")).unwrap();
    let fifo = std::ffi::CString::new(dev.join("config").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo creates a file or fails.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    fs::File::create(dev.join("vendor"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    fs::write(dev.join("device"), "0x1234\n").unwrap();
    let r = SystemRoot::open(d).unwrap();
    let p = "sys/devices/pci0000:00/0000:00:01.0";
    let e = r.read(&format!("{p}/config")).unwrap_err();
    assert!(e.to_string().contains("not a regular file (a FIFO)"), "{e}");
    let e = r.read(&format!("{p}/vendor")).unwrap_err();
    assert!(e.to_string().contains("larger than 65536 bytes"), "{e}");
    let h = r.open_dir(p).unwrap();
    assert!(r.read_at(&h, "config").is_err());
    assert_eq!(r.read_string_at(&h, "device").unwrap(), "0x1234");
    let notes = r.notes();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with(&format!("{p}/config: not a regular file")));
    // No sys/: not a root.
    let empty = tempfile::tempdir().unwrap();
    let e = SystemRoot::open(empty.path()).err().unwrap();
    assert!(e.to_string().contains("has no sys/ directory"), "{e}");
}

#[test]
fn memory_tree_keeps_the_semantics_of_a_path_map() {
    let r = mem(&[
        ("a/b", file("file")),
        ("a/b/c", file("below a file")),
        ("x/y/z", file("deep")),
        ("x/l", link("y")),
        ("x/abs", link("/x/y")),
    ]);
    assert_eq!(r.read_string("x/y/z").unwrap(), "deep");
    assert_eq!(r.read_string("x/l/z").unwrap(), "deep");
    assert_eq!(r.read_string("x/abs/z").unwrap(), "deep");
    assert!(r.read("a/b/c").is_err(), "a file is not a directory");
    assert_eq!(r.read_dir("x").unwrap(), ["abs", "l", "y"]);
    assert!(r.read_dir("a/b").is_err());
    let h = r.open_dir("x/l").unwrap();
    assert_eq!(h.path(), "x/y");
    assert_eq!(r.read_string_at(&h, "z").unwrap(), "deep");
    assert!(r.read_at(&h, "none").is_err());
    assert!(r.exists_at(&h, "z") && !r.exists_at(&h, "none"));
    // Deep paths one after another take the cursor; same answers.
    let mut entries = BTreeMap::new();
    let mut path = String::from("sys/devices/pci0000:00");
    for i in 0..40 {
        path.push_str(&format!("/0000:{i:02x}:00.0"));
        entries.insert(format!("{path}/config"), file(&i.to_string()));
        entries.insert(
            format!("sys/bus/pci/devices/{i}"),
            link(&format!("../../../{}", &path[4..])),
        );
    }
    let r = SystemRoot::from_entries(Path::new("t"), entries);
    for i in 0..40 {
        let h = r.open_dir(&format!("sys/bus/pci/devices/{i}")).unwrap();
        assert_eq!(h.path().matches('/').count(), 3 + i, "{i}");
        assert_eq!(r.read_string_at(&h, "config").unwrap(), i.to_string());
    }
    for i in (0..40).rev() {
        let h = r
            .open_dir(&format!("sys/bus/pci/../pci/devices/{i}/."))
            .unwrap();
        assert_eq!(r.read_string_at(&h, "config").unwrap(), i.to_string());
    }
}

#[test]
fn archive_names_reject_climbing() {
    assert_eq!(archive_name("./sys/x").as_deref(), Some("sys/x"));
    assert_eq!(archive_name("/sys/x").as_deref(), Some("sys/x"));
    assert_eq!(archive_name("sys/../../x"), None);
}

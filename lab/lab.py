#!/usr/bin/env python3
"""The p2pdoctor hardware lab: a real Linux kernel on emulated PCIe hardware.

Usage: lab/run [options] [SCENARIO...]     (see lab/README.md, or --help)

Stages, in order:
  ingredients  kernel (>= 6.2, CONFIG_PCI_P2PDMA=y) and busybox-static from
               Debian's archive, fetched with apt into a private cache
  build        p2pdoctor, static, in its own target dir; lab/tools/p2pcopy.c
  pack         one initramfs per scenario (uncompressed newc cpio)
  boot         qemu-system-x86_64 (TCG), one guest per scenario
  check        the lab's own smoke checks on what the guest sent back

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import dataclasses
import datetime
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

LAB = Path(__file__).resolve().parent
REPO = LAB.parent
SCENARIOS = LAB / "scenarios"
OUT = LAB / "out"
CACHE = Path(os.environ.get("P2PDOCTOR_LAB_CACHE") or Path.home() / ".cache" / "p2pdoctor-lab")

# Where the kernel comes from, in order of preference. Debian stable kernels
# lack CONFIG_PCI_P2PDMA (bookworm 6.1, trixie 6.12); backports and sid have it.
SUITES = os.environ.get("P2PDOCTOR_LAB_SUITES", "trixie-backports sid").split()
LISTS_MAX_AGE_S = 24 * 3600
MIN_KERNEL = (6, 2)  # FOLL_PCI_P2PDMA: user-space O_DIRECT into p2pmem
BASE_MODULES = ["nvme"]
DEFAULT_TIMEOUT_S = 60
DEFAULT_DRIVE_SIZE = "64M"
DEFAULT_COPY_BYTES = 65536
KERNEL_ARGS = "console=ttyS0 quiet panic=-1"
EXPECT_VALUES = {"bus_addr", "thru_host_bridge", "refused", "corrupt"}

# What the lab's p2pcopy sees for each kind of kernel verdict.
COPY_OUTCOME = {"bus_addr": "ok", "thru_host_bridge": "ok", "refused": "refused", "corrupt": "corrupt"}


class LabError(Exception):
    """A problem the user has to fix; printed without a traceback."""


def log(msg: str) -> None:
    print(f"lab: {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


# --------------------------------------------------------------------------
# Ingredients: a private apt view of Debian's archive
# --------------------------------------------------------------------------


def archive_uri() -> str:
    """The Debian archive URI, from the environment or this machine's apt
    sources (never written into the repository)."""
    env = os.environ.get("P2PDOCTOR_LAB_DEBIAN_URI")
    if env:
        return env.rstrip("/")
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for stanza in re.split(r"\n\s*\n", deb822.read_text()):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.split()
            suites = fields.get("suites", [])
            if fields.get("uris") and not any("security" in s for s in suites):
                return fields["uris"][0].rstrip("/")
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 3 and parts[0] == "deb" and "debian" in parts[1] and "security" not in parts[2]:
                return parts[1].rstrip("/")
    raise LabError(
        "cannot find a Debian archive URI: set P2PDOCTOR_LAB_DEBIAN_URI to a Debian mirror "
        "(the URI of a 'deb' line), or run on a Debian machine with /etc/apt/sources.list.d/debian.sources"
    )


class Archive:
    """apt-get/apt-cache against its own sources file and lists directory:
    nothing is installed and the system's apt state is not touched."""

    def __init__(self, cache: Path):
        self.dir = cache / "apt"
        self.sources = self.dir / "sources.list"
        self.lists = self.dir / "lists"
        self.stamp = self.dir / "updated"

    def opts(self) -> list[str]:
        return [
            f"-oDir::Etc::SourceList={self.sources}",
            "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::State::Lists={self.lists}",
            f"-oDir::Cache={self.dir / 'cache'}",
            "-oDir::State::status=/dev/null",
            "-oAcquire::Languages=none",
            "-oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
            "-oAcquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
            "-oAcquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
            "-oAcquire::IndexTargets::deb::CNF::DefaultEnabled=false",
            "-oAPT::Sandbox::User=root" if os.geteuid() == 0 else "-oAPT::Sandbox::User=" + os.environ.get("USER", "nobody"),
            "-oDebug::NoLocking=1",
        ]

    def sources_text(self) -> str:
        uri = archive_uri()
        keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
        signed = f" [signed-by={keyring}]" if keyring.exists() else ""
        return "".join(f"deb{signed} {uri} {suite} main\n" for suite in SUITES)

    def update(self, force: bool = False) -> bool:
        """Refresh the private lists when older than a day. False when the
        archive cannot be reached (the caller falls back to the cache)."""
        for d in (self.lists / "partial", self.dir / "cache" / "archives" / "partial"):
            d.mkdir(parents=True, exist_ok=True)
        try:
            text = self.sources_text()
        except LabError:
            if self.sources.exists():
                text = self.sources.read_text()
            else:
                raise
        fresh = (
            self.stamp.exists()
            and self.sources.exists()
            and self.sources.read_text() == text
            and time.time() - self.stamp.stat().st_mtime < LISTS_MAX_AGE_S
        )
        if fresh and not force:
            return True
        self.sources.write_text(text)
        log(f"apt-get update (private lists in {self.lists}; suites: {' '.join(SUITES)})")
        r = subprocess.run(["apt-get", "-q", *self.opts(), "update"], capture_output=True, text=True)
        if r.returncode != 0 or re.search(r"^(E:|W: Failed to fetch)", r.stdout + r.stderr, re.M):
            log("apt-get update failed:\n" + (r.stdout + r.stderr).strip()[-2000:])
            return False
        self.stamp.touch()
        return True

    def cache_query(self, *args: str) -> str:
        r = subprocess.run(["apt-cache", *self.opts(), *args], capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else ""

    def exists(self, pkg: str) -> bool:
        return bool(re.search(r"^Package: ", self.cache_query("show", pkg), re.M))

    def candidate(self, pkg: str) -> str | None:
        m = re.search(r"Candidate: (\S+)", self.cache_query("policy", pkg))
        return m.group(1) if m and m.group(1) != "(none)" else None

    def download(self, pkgs: list[str], dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        run(["apt-get", "-q", *self.opts(), "download", *pkgs], cwd=dest, stdout=subprocess.DEVNULL)
        return sorted(dest.glob("*.deb"))


def dpkg_extract(debs: list[Path], dest: Path) -> None:
    for deb in debs:
        run(["dpkg-deb", "-x", str(deb), str(dest)])


def kernel_tuple(kver: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", kver.split("+")[0].split("-")[0])[:3])


@dataclasses.dataclass
class Kernel:
    version: str
    dir: Path

    @property
    def vmlinuz(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def modules(self) -> Path:
        return self.dir / "modules"

    @property
    def info(self) -> dict:
        return json.loads((self.dir / "info.json").read_text())


def cached_kernels(cache: Path) -> list[Kernel]:
    found = [Kernel(d.name, d) for d in (cache / "kernel").glob("*") if (d / "info.json").exists()]
    return sorted(found, key=lambda k: kernel_tuple(k.version), reverse=True)


def fetch_kernel(archive: Archive, kver: str, suite: str | None, cache: Path) -> Kernel | None:
    """Download and unpack one kernel version; None if it lacks P2PDMA."""
    dest = cache / "kernel" / kver
    if (dest / "info.json").exists():
        return Kernel(kver, dest)
    if (dest / "NO_P2PDMA").exists():
        return None
    # 7.x packaging splits the image; older kernels ship one linux-image package.
    if archive.exists(f"linux-binary-{kver}"):
        pkgs = [f"linux-binary-{kver}", f"linux-modules-{kver}"]
        if archive.exists(f"linux-base-{kver}"):
            pkgs.append(f"linux-base-{kver}")
    else:
        pkgs = [f"linux-image-{kver}"]
    log(f"downloading {' '.join(pkgs)}")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tmp = Path(tmp)
        debs = archive.download(pkgs, tmp / "debs")
        root = tmp / "root"
        dpkg_extract(debs, root)
        for d in debs:
            d.unlink()
        moddir = next((p for p in (root / "usr/lib/modules" / kver, root / "lib/modules" / kver) if p.is_dir()), None)
        vmlinuz = next((p for p in (moddir / "vmlinuz" if moddir else None, root / "boot" / f"vmlinuz-{kver}") if p and p.exists()), None)
        config = next((p for p in (moddir / "config" if moddir else None, root / "boot" / f"config-{kver}") if p and p.exists()), None)
        if not (moddir and vmlinuz and config):
            raise LabError(f"unexpected layout of the {kver} kernel packages ({' '.join(pkgs)})")
        dest.mkdir(parents=True, exist_ok=True)
        if not re.search(r"^CONFIG_PCI_P2PDMA=y$", config.read_text(), re.M):
            (dest / "NO_P2PDMA").write_text(f"{kver} from {suite}: CONFIG_PCI_P2PDMA is not set\n")
            log(f"kernel {kver} lacks CONFIG_PCI_P2PDMA=y, skipped")
            return None
        shutil.move(str(vmlinuz), dest / "vmlinuz")
        shutil.move(str(config), dest / "config")
        shutil.move(str(moddir), dest / "modules")
        info = {
            "version": kver,
            "suite": suite,
            "packages": pkgs,
            "package_version": archive.candidate(pkgs[0]),
            "fetched": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        (dest / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return Kernel(kver, dest)


def resolve_kernel(archive: Archive, online: bool, cache: Path) -> Kernel:
    pinned = os.environ.get("P2PDOCTOR_LAB_KERNEL")
    if pinned:
        k = Kernel(pinned, cache / "kernel" / pinned)
        if (k.dir / "info.json").exists():
            return k
        if not online:
            raise LabError(f"kernel {pinned} (P2PDOCTOR_LAB_KERNEL) is not cached and the archive is unreachable")
        k = fetch_kernel(archive, pinned, None, cache)
        if not k:
            raise LabError(f"kernel {pinned} lacks CONFIG_PCI_P2PDMA=y")
        return k
    if online:
        for suite in SUITES:
            deps = archive.cache_query("depends", f"linux-image-amd64/{suite}")
            m = re.search(r"Depends: linux-image-(\d\S+)", deps)
            if not m:
                continue
            kver = m.group(1)
            if kernel_tuple(kver) < MIN_KERNEL:
                log(f"{suite}: kernel {kver} is older than {'.'.join(map(str, MIN_KERNEL))}, skipped")
                continue
            k = fetch_kernel(archive, kver, suite, cache)
            if k:
                return k
    cached = cached_kernels(cache)
    if cached:
        if online:
            log(f"no suitable kernel in {' '.join(SUITES)}; using cached {cached[0].version}")
        else:
            log(f"archive unreachable; using cached kernel {cached[0].version}")
        return cached[0]
    raise LabError(
        f"no kernel >= {'.'.join(map(str, MIN_KERNEL))} with CONFIG_PCI_P2PDMA=y found in "
        f"{' '.join(SUITES)} (set P2PDOCTOR_LAB_SUITES or P2PDOCTOR_LAB_KERNEL)"
    )


def resolve_busybox(archive: Archive, online: bool, cache: Path) -> Path:
    base = cache / "busybox"
    ver = archive.candidate("busybox-static") if online else None
    if ver:
        dest = base / ver.replace(":", "%3a")
        binary = dest / "busybox"
        if binary.exists():
            return binary
        log(f"downloading busybox-static {ver}")
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            tmp = Path(tmp)
            debs = archive.download([f"busybox-static={ver}"], tmp / "debs")
            dpkg_extract(debs, tmp / "root")
            found = next((p for p in (tmp / "root/bin/busybox", tmp / "root/usr/bin/busybox") if p.exists()), None)
            if not found:
                raise LabError("busybox-static has no bin/busybox")
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, binary)
        return binary
    cached = sorted(base.glob("*/busybox"), key=lambda p: p.stat().st_mtime, reverse=True)
    if cached:
        return cached[0]
    raise LabError("busybox-static is not cached and the archive is unreachable")


def ensure_qemu() -> str:
    qemu = os.environ.get("P2PDOCTOR_LAB_QEMU") or shutil.which("qemu-system-x86_64")
    if qemu:
        return qemu
    if os.environ.get("P2PDOCTOR_LAB_NO_INSTALL"):
        raise LabError("qemu-system-x86_64 not found: install the qemu-system-x86 package")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and not shutil.which("sudo"):
        raise LabError("qemu-system-x86_64 not found: install the qemu-system-x86 package (needs root)")
    log("installing qemu-system-x86 with the system's apt (the one system-wide install the lab makes)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", "qemu-system-x86"]
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        run(cmd, env=env, stdout=subprocess.DEVNULL)
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        raise LabError("qemu-system-x86_64 still not found after installing qemu-system-x86")
    return qemu


# --------------------------------------------------------------------------
# Kernel modules: dependencies from each module's own .modinfo section
# (the Debian packages ship no modules.dep, and depmod may be absent)
# --------------------------------------------------------------------------


def module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        zstd = shutil.which("zstd")
        if not zstd:
            raise LabError(f"{path.name} is zstd-compressed: install zstd")
        return run([zstd, "-dc", str(path)], capture_output=True).stdout
    return data


def modinfo(elf: bytes) -> dict[str, list[str]]:
    """Key/value pairs of an ELF64 little-endian module's .modinfo section."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i):
        name, _type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = elf.index(b"\0", stroff + name)
        if elf[stroff + name : end] == b".modinfo":
            for item in elf[off : off + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode(errors="replace").split("=", 1)
                    info.setdefault(k, []).append(v)
    return info


def module_load_order(kernel: Kernel, wanted: list[str]) -> list[tuple[str, bytes]]:
    """(name, decompressed .ko) for `wanted` and their dependencies, each after
    what it depends on: for nvme that is keyring, auth, core, nvme."""
    index = {}
    for p in kernel.modules.rglob("*.ko*"):
        index[re.sub(r"\.ko(\.\w+)?$", "", p.name).replace("-", "_")] = p
    builtin = set()
    bfile = kernel.modules / "modules.builtin"
    if bfile.exists():
        builtin = {re.sub(r"\.ko$", "", Path(l).name).replace("-", "_") for l in bfile.read_text().split()}
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]):
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        if name in chain:
            raise LabError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
        path = index.get(name)
        if not path:
            raise LabError(f"kernel {kernel.version} has no module {name}")
        elf = module_bytes(path)
        deps = [d for v in modinfo(elf).get("depends", []) for d in v.split(",") if d]
        for d in deps:
            visit(d, chain + (name,))
        seen.add(name)
        order.append((name, elf))

    for w in wanted:
        visit(w, ())
    return order


# --------------------------------------------------------------------------
# Build: p2pdoctor (static) and the lab's p2pcopy
# --------------------------------------------------------------------------


def build_p2pdoctor(cache: Path, out: Path) -> Path | None:
    # One target directory per checkout: cargo judges freshness by file
    # times against paths relative to the package, so two checkouts sharing
    # one directory can each take the other's newer build for their own.
    checkout = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    target_dir = Path(os.environ.get("P2PDOCTOR_LAB_TARGET_DIR") or cache / "target" / checkout)
    last_good = cache / "bin" / "p2pdoctor"
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    env["RUSTFLAGS"] = (env.get("RUSTFLAGS", "") + " -C target-feature=+crt-static").strip()
    # --package: the binary alone, not the workspace's test-fixture crate.
    cmd = ["cargo", "build", "--release", "--locked", "--package", "p2pdoctor", "--target", "x86_64-unknown-linux-gnu"]
    log(f"building p2pdoctor (static, CARGO_TARGET_DIR={target_dir})")
    t = time.monotonic()
    with open(out / "build.log", "w") as f:
        r = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    built = target_dir / "x86_64-unknown-linux-gnu" / "release" / "p2pdoctor"
    if r.returncode == 0 and built.exists():
        last_good.parent.mkdir(parents=True, exist_ok=True)
        tmp = last_good.with_suffix(".tmp")
        shutil.copy2(built, tmp)
        tmp.replace(last_good)
        log(f"built p2pdoctor in {time.monotonic() - t:.1f}s")
        return last_good
    if last_good.exists():
        log(f"p2pdoctor does not build right now (see {out / 'build.log'}); using the last good build {last_good}")
        return last_good
    log(f"p2pdoctor does not build (see {out / 'build.log'}) and there is no earlier build: running without it")
    return None


def build_p2pcopy(cache: Path) -> Path | None:
    src = LAB / "tools" / "p2pcopy.c"
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        log("no C compiler: the lab's own copy checks are skipped")
        return None
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    binary = cache / "bin" / f"p2pcopy-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([cc, "-static", "-O2", "-Wall", "-o", str(binary), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"cannot build p2pcopy statically (is libc6-dev installed?):\n{r.stderr.strip()}")
            return None
    return binary


def p2pdoctor_has(binary: Path | None, subcommand: str) -> bool:
    if not binary:
        return False
    r = subprocess.run([str(binary), "--help"], capture_output=True, text=True)
    return re.search(rf"^\s+{subcommand}\s", r.stdout, re.M) is not None


# --------------------------------------------------------------------------
# Pack: initramfs as newc cpio, written by hand (no cpio tool needed)
# --------------------------------------------------------------------------


class Cpio:
    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 700000

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)):
        self.ino += 1
        nameb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nameb), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buf.write(hdr + nameb)
        self.buf.write(b"\0" * (-(len(hdr) + len(nameb)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str):
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int):
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        data = self.buf.getvalue()
        return data + b"\0" * (-len(data) % 512)


def base_initramfs(kernel: Kernel, busybox: Path, modules: list[tuple[str, bytes]], p2pdoctor: Path | None,
                   p2pcopy: Path | None) -> bytes:
    c = Cpio()
    for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "out", "lab", "lib",
              "lib/modules", "boot"):
        c.dir(d)
    # where a Debian system keeps it, so the guest looks like one to p2pdoctor
    c.file(f"boot/config-{kernel.version}", (kernel.dir / "config").read_bytes())
    # the kernel opens /dev/console for init before devtmpfs is mounted
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3)
    c.file("bin/busybox", busybox.read_bytes(), 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", (LAB / "guest" / "init").read_bytes(), 0o755)
    names = []
    for i, (name, elf) in enumerate(modules):
        fname = f"{i:02d}-{name}.ko"
        c.file(f"lib/modules/{fname}", elf)
        names.append(fname)
    c.file("lab/modules.list", ("\n".join(names) + "\n").encode())
    if p2pdoctor:
        c.file("bin/p2pdoctor", p2pdoctor.read_bytes(), 0o755)
    if p2pcopy:
        c.file("bin/p2pcopy", p2pcopy.read_bytes(), 0o755)
    return c.finish()


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    name: str
    path: Path
    data: dict

    @property
    def devices(self) -> list[str]:
        return self.data.get("devices", [])

    @property
    def expect(self) -> dict:
        return self.data.get("expect", {})

    def nvme_devices(self) -> list[dict[str, str]]:
        out = []
        for dev in self.devices:
            driver, _, rest = dev.partition(",")
            if driver == "nvme":
                props = dict(p.partition("=")[::2] for p in rest.split(",") if p)
                out.append(props)
        return out

    def expected_nvme(self) -> int:
        return self.expect.get("nvme", len(self.nvme_devices()))

    def expected_p2pmem(self) -> int:
        cmbs = [d for d in self.nvme_devices() if int(d.get("cmb_size_mb", "0") or 0) > 0]
        return self.expect.get("p2pmem", len(cmbs))

    def pairs(self) -> list[dict]:
        return self.expect.get("pairs", [])

    def validate(self) -> None:
        problems = []
        if not isinstance(self.data.get("description"), str):
            problems.append("missing description")
        if not self.devices:
            problems.append("no devices")
        serials = [d.get("serial") for d in self.nvme_devices()]
        if None in serials:
            problems.append("every nvme device needs serial=")
        for p in self.pairs():
            if p.get("expect") not in EXPECT_VALUES:
                problems.append(f"pair {p}: expect must be one of {sorted(EXPECT_VALUES)}")
            for role in ("provider", "client"):
                if p.get(role) not in serials:
                    problems.append(f"pair {p}: {role} {p.get(role)!r} is not the serial of an nvme device")
        if problems:
            raise LabError(f"{self.path}: " + "; ".join(problems))


def load_scenarios(names: list[str]) -> list[Scenario]:
    available = {p.stem: p for p in sorted(SCENARIOS.glob("*.toml"))}
    if not names:
        names = list(available)
    chosen = []
    for n in names:
        p = available.get(n)
        if not p and n.endswith(".toml") and Path(n).is_file():
            p = Path(n).resolve()  # a scenario file outside lab/scenarios
        if not p:
            matches = [k for k in available if n in k]
            if len(matches) != 1:
                raise LabError(f"unknown scenario {n!r}; available: {', '.join(available)}")
            p = available[matches[0]]
        with open(p, "rb") as f:
            try:
                s = Scenario(p.stem, p, tomllib.load(f))
            except tomllib.TOMLDecodeError as e:
                raise LabError(f"{p}: {e}") from None
        s.validate()
        chosen.append(s)
    return chosen


def scenario_initramfs(s: Scenario, base: bytes, with_copies: bool) -> bytes:
    c = Cpio()
    c.dir("lab")
    env = {
        "SCENARIO": s.name,
        "EXPECT_NVME": str(s.expected_nvme()),
        "STEP_TIMEOUT": str(s.data.get("step_timeout", 15)),
    }
    c.file("lab/scenario.env", "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()).encode())
    cmds = s.data.get("guest_commands", [])
    if cmds:
        c.dir("lab/cmd")
        for i, cmd in enumerate(cmds, 1):
            text = cmd["run"] if isinstance(cmd, dict) else cmd
            c.file(f"lab/cmd/{i:02d}.sh", (text + "\n").encode())
    if with_copies:
        lines = []
        for p in s.pairs():
            nbytes = int(p.get("bytes", DEFAULT_COPY_BYTES))
            lines.append(f"{pair_name(p)} {p['provider']} {p['client']} {nbytes}\n")
        c.file("lab/copies.tsv", "".join(lines).encode())
    # a second archive after the first: the kernel unpacks both
    return base + c.finish()


def pair_name(p: dict) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{p['provider']}--{p['client']}")


# --------------------------------------------------------------------------
# Boot
# --------------------------------------------------------------------------


def qemu_path_arg(p: Path) -> str:
    return str(p).replace(",", ",,")


def size_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", str(text).strip().upper())
    if not m:
        raise LabError(f"bad size {text!r} (use e.g. 64M)")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def qemu_command(qemu: str, s: Scenario, kernel: Kernel, initrd: Path, work: Path) -> list[str]:
    d = s.data
    cmd = [
        qemu,
        "-accel", "tcg,thread=multi",
        "-cpu", d.get("cpu", "max"),
        "-machine", d.get("machine", "q35"),
        "-smp", str(d.get("smp", 1)),
        "-m", str(d.get("memory", "512M")),
        # -nodefaults: no default NIC or VGA, so the PCI tree is the scenario's
        # (q35's own host bridge, LPC, AHCI and SMBus functions stay)
        "-nographic", "-nodefaults", "-no-reboot",
        "-kernel", qemu_path_arg(kernel.vmlinuz),
        "-initrd", qemu_path_arg(initrd),
        "-append", " ".join(x for x in (KERNEL_ARGS, d.get("kernel_args", "")) if x),
        # ttyS0: the console; ttyS1: the result channel (ISA ports, so the
        # PCI topology stays exactly the scenario's)
        "-serial", f"file:{qemu_path_arg(work / 'console.log')}",
        "-serial", f"file:{qemu_path_arg(work / 'channel.txt')}",
    ]
    cmd += d.get("qemu_args", [])
    drive_size = size_bytes(d.get("drive_size", DEFAULT_DRIVE_SIZE))
    n = 0
    for dev in s.devices:
        while "{drive}" in dev:
            n += 1
            serial = re.search(r"serial=([^,]+)", dev)
            img = work / f"drive{n}-{serial.group(1) if serial else 'x'}.img"
            with open(img, "wb") as f:
                f.truncate(drive_size)  # sparse scratch disk; never a real device
            cmd += ["-drive", f"file={qemu_path_arg(img)},if=none,id=drive{n},format=raw"]
            dev = dev.replace("{drive}", f"drive{n}", 1)
        cmd += ["-device", dev]
    return cmd


def parse_frames(text: str) -> list[tuple[str, bytes]]:
    """Complete, checksummed frames from the result channel."""
    frames = []
    pattern = re.compile(r"P2PLAB-BEGIN (\S+) ([0-9a-f]{64}) (\d+)\s*\n(.*?)P2PLAB-END", re.S)
    for m in pattern.finditer(text):
        label, digest, size = m.group(1), m.group(2), int(m.group(3))
        try:
            blob = base64.b64decode(re.sub(r"\s+", "", m.group(4)), validate=True)
        except ValueError:
            continue
        if len(blob) == size and hashlib.sha256(blob).hexdigest() == digest:
            frames.append((label, blob))
    return frames


def unpack_frame(blob: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


# --------------------------------------------------------------------------
# Check: the lab's own smoke checks (no p2pdoctor needed)
# --------------------------------------------------------------------------

ACS_BITS = ["SV", "TB", "RR", "CR", "UF", "EC", "DT"]
PORT_TYPES = {0: "endpoint", 1: "legacy endpoint", 4: "root port", 5: "switch upstream", 6: "switch downstream",
              7: "pcie-to-pci bridge", 8: "pci-to-pcie bridge", 9: "rc integrated endpoint", 10: "rc event collector"}


def acs_flags(v: int) -> str:
    return " ".join(n for i, n in enumerate(ACS_BITS) if v >> i & 1) or "-"


def decode_config(cfg: bytes) -> dict:
    """Port type and ACS from raw config space (tolerant of short input)."""
    out: dict = {}
    if len(cfg) < 0x40:
        return out
    out["vendor_device"] = "%04x:%04x" % struct.unpack_from("<HH", cfg, 0)
    status, = struct.unpack_from("<H", cfg, 6)
    if status & 0x10:
        ptr, seen = cfg[0x34] & 0xFC, set()
        while ptr and ptr not in seen and ptr + 4 <= len(cfg):
            seen.add(ptr)
            if cfg[ptr] == 0x10:
                caps, = struct.unpack_from("<H", cfg, ptr + 2)
                out["port_type"] = PORT_TYPES.get(caps >> 4 & 0xF, f"type {caps >> 4 & 0xF}")
            ptr = cfg[ptr + 1] & 0xFC
    ptr, seen = 0x100, set()
    while ptr and ptr not in seen and ptr + 8 <= len(cfg):
        seen.add(ptr)
        hdr, = struct.unpack_from("<I", cfg, ptr)
        if hdr in (0, 0xFFFFFFFF):
            break
        if hdr & 0xFFFF == 0x000D:
            cap, ctl = struct.unpack_from("<HH", cfg, ptr + 4)
            out["acs_cap"], out["acs_ctl"] = cap, ctl
        ptr = hdr >> 20 & 0xFFC
    return out


def acs_table(result_dir: Path) -> list[dict]:
    rows = []
    for dev in sorted((result_dir / "capture" / "pci").glob("*")):
        cfg = (dev / "config").read_bytes() if (dev / "config").exists() else b""
        d = decode_config(cfg)
        if "port_type" not in d and "acs_cap" not in d:
            continue
        row = {"bdf": dev.name, "id": d.get("vendor_device", "?"), "type": d.get("port_type", "pci")}
        if "acs_cap" in d:
            row["acs_cap"] = "0x%04x" % d["acs_cap"]
            row["acs_ctl"] = "0x%04x" % d["acs_ctl"]
            row["acs_ctl_flags"] = acs_flags(d["acs_ctl"])
        rows.append(row)
    return rows


def read(path: Path, default: str = "") -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return default


@dataclasses.dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str = ""


def check_scenario(s: Scenario, rdir: Path, has_snapshot: bool, with_copies: bool) -> list[Check]:
    checks: list[Check] = []
    add = lambda name, ok, detail="": checks.append(Check(name, ok, detail))
    if not (rdir / "scenario").exists():
        add("results came back", False, "no complete frame on the result channel (see console.log)")
        return checks
    add("guest finished", (rdir / "done").exists(), "" if (rdir / "done").exists() else "only the early frame arrived: the guest stopped or hung after the capture")
    add("modules loaded", read(rdir / "modules.rc").strip() == "0", read(rdir / "modules.log").strip()[-300:])

    nvme = [l.split() for l in read(rdir / "nvme.tsv").splitlines() if l.strip()]
    want = s.expected_nvme()
    add("NVMe namespaces", len(nvme) == want, f"{len(nvme)} of {want}: " + ", ".join(f"{n[3]}@{n[0]}({n[2]})" for n in nvme))
    serials = sorted(n[2] for n in nvme)
    want_serials = sorted(d["serial"] for d in s.nvme_devices())
    if "nvme" not in s.expect:
        add("NVMe serials", serials == want_serials, f"got {serials}, want {want_serials}")

    p2p = sorted((rdir / "capture" / "pci").glob("*/p2pmem"))
    want_p2p = s.expected_p2pmem()
    detail = ", ".join(f"{p.parent.name} size={read(p / 'size').strip()} published={read(p / 'published').strip()}" for p in p2p)
    add("p2pmem devices", len(p2p) == want_p2p, f"{len(p2p)} of {want_p2p}" + (f": {detail}" if detail else ""))
    unpublished = [p.parent.name for p in p2p if read(p / "published").strip() != "1"]
    if p2p:
        add("p2pmem published", not unpublished, f"not published: {unpublished}" if unpublished else "")

    if has_snapshot:
        rc = read(rdir / "snapshot.rc").strip()
        ok = rc == "0" and (rdir / "snapshot.tar.gz").exists()
        if ok:
            try:
                with tarfile.open(rdir / "snapshot.tar.gz", "r:gz") as t:
                    n = len(t.getmembers())
                detail = f"{n} entries, {(rdir / 'snapshot.tar.gz').stat().st_size} bytes"
            except (tarfile.TarError, OSError, EOFError) as e:
                ok, detail = False, f"not a gzip tar: {e}"
        else:
            detail = f"rc {rc or 'missing'}: {read(rdir / 'snapshot.log').strip()[-300:]}"
        add("p2pdoctor snapshot", ok, detail)
    else:
        add("p2pdoctor snapshot", None, "this p2pdoctor has no snapshot subcommand")
    if (rdir / "topo-live.rc").exists():
        add("live topo (config space read in parts) = the snapshot's (read whole)", *same_topo(rdir))

    for i, cmd in enumerate(s.data.get("guest_commands", []), 1):
        rc = read(rdir / "commands" / f"{i:02d}.rc").strip()
        if isinstance(cmd, dict) and "expect_rc" in cmd:
            add(f"guest command {i}", rc == str(cmd["expect_rc"]), f"rc {rc}, want {cmd['expect_rc']}")
        else:
            add(f"guest command {i}", None, f"rc {rc} (no expect_rc)")

    klog = read(rdir / "kernel.log")
    for sub in s.expect.get("dmesg", []):
        add(f"dmesg has {sub!r}", sub in klog)
    cpuinfo = read(rdir / "capture" / "cpuinfo")
    for sub in s.expect.get("cpuinfo", []):
        add(f"cpuinfo has {sub!r}", re.search(sub, cpuinfo, re.M) is not None)
    for sub in s.expect.get("dmesg_absent", []):
        add(f"dmesg lacks {sub!r}", sub not in klog)

    acs = {r["bdf"]: r for r in acs_table(rdir)}
    for bdf, want_ctl in s.expect.get("acs_ctl", {}).items():
        got = acs.get(bdf, {}).get("acs_ctl", "none")
        add(f"ACS Control {bdf}", got == want_ctl.lower(), f"got {got}, want {want_ctl}")

    checks += check_confirm(s, rdir, nvme, klog)

    for p in s.pairs():
        label = f"pair {p['provider']} -> {p['client']} ({p['expect']})"
        for sub in p.get("dmesg", []):
            add(f"{label}: dmesg has {sub!r}", sub in klog)
        # lines that must not appear while the lab's own copy runs (a
        # verdict the kernel cached earlier is not logged again)
        copy_log = read(rdir / "copies" / f"{pair_name(p)}.dmesg")
        for sub in p.get("copy_dmesg_absent", []):
            add(f"{label}: copy logs no {sub!r}", (rdir / "copies").exists() and sub not in copy_log)
        if p.get("acs_fix"):
            add(f"{label}: fix {p['acs_fix']!r} in dmesg", p["acs_fix"] in klog)
        if not with_copies:
            add(f"{label}: copy", None, "p2pcopy not built")
            continue
        res = dict(l.split("=", 1) for l in read(rdir / "copies" / f"{pair_name(p)}.txt").splitlines() if "=" in l)
        got, want = res.get("outcome", "missing"), COPY_OUTCOME[p["expect"]]
        add(f"{label}: copy", got == want,
            f"got {got}, want {want} (read={res.get('read', '?')}/{res.get('read_data', '?')} "
            f"write={res.get('write', '?')}/{res.get('write_data', '?')})")
    return checks


def first_difference(a, b, path: str = "") -> str | None:
    """Where two JSON values first differ, as a path, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = first_difference(a.get(k), b.get(k), f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {json.dumps(a)[:80]} vs {json.dumps(b)[:80]}"


def same_topo(rdir: Path) -> tuple[bool, str]:
    """The guest's live `topo --format json` (a live scan reads config space
    in parts: the headers and the registers the decoder reads) against the
    same binary's topo of the snapshot taken just before (config space
    read whole): the devices must be the same, field for field."""
    rcs = read(rdir / "topo-live.rc").split()
    try:
        live = json.loads(read(rdir / "topo-live.json"))
        snap = json.loads(read(rdir / "topo-snapshot.json"))
    except json.JSONDecodeError as e:
        return False, f"rc {rcs}, not JSON ({e}): {read(rdir / 'topo-live.log').strip()[-300:]}"
    diff = first_difference(live.get("devices"), snap.get("devices"), "devices")
    ok = rcs == ["0", "0"] and diff is None and bool(live.get("devices"))
    return ok, diff or f"rc {rcs}; {len(live.get('devices') or [])} devices the same"


# Rules about timing-dependent hazards (src/diagnose/settle.rs Settles::Hazard):
# only a data mismatch settles them.
HAZARD_RULES = {"P2P302", "P2P303", "P2P601", "P2P603"}

# What p2pdoctor check --confirm must see for each kind of kernel verdict.
CONFIRM_OUTCOME = {"bus_addr": "ok", "thru_host_bridge": "ok", "refused": "refused", "corrupt": "mismatch"}


def fix_params(fix):
    """A finding's kernel parameters, space-separated: `fix` is an object
    {text, kernel_params, commands, persist} (check schema 2), a string in
    schema 1."""
    if not fix:
        return ""
    if isinstance(fix, str):
        return fix
    return " ".join(p["name"] + ("=" + p["value"] if p.get("value") is not None else "")
                    for p in fix.get("kernel_params", []))


def check_confirm(s: Scenario, rdir: Path, nvme: list[list[str]], klog: str) -> list[Check]:
    """p2pdoctor check --confirm against the kernel: for every pair it tried,
    the predicted map type matches what the kernel did (allowed, or refused
    with an errno), the outcome matches the scenario's expectation and the
    lab's own p2pcopy, the ACS fix is the kernel's own string, every warning
    about a tried pair was confirmed or refuted, and every write was put back."""
    checks: list[Check] = []
    add = lambda name, ok, detail="": checks.append(Check(name, ok, detail))
    if not (rdir / "confirm.rc").exists():
        add("check --confirm", None, "this p2pdoctor has no check --confirm")
        return checks
    rc = read(rdir / "confirm.rc").strip()
    try:
        doc = json.loads(read(rdir / "confirm.json"))
    except json.JSONDecodeError as e:
        add("check --confirm", False, f"rc {rc}, not JSON ({e}): {read(rdir / 'confirm.log').strip()[-300:]}")
        return checks
    add("check --confirm", rc in ("0", "1", "2"), f"rc {rc}; {doc['summary']['headline']}")
    pairs = {(p["provider"], p["client"]): p for p in doc["pairs"]}
    tried = [p for p in doc["pairs"] if p.get("confirm") and p["confirm"]["outcome"] not in ("skipped",)]
    for p in tried:
        c = p["confirm"]
        label = f"confirm {p['client']} -> {p['provider']}"
        carried = c.get("carried_by")
        if carried is not None:
            # every record names the controller, namespace and path that
            # carried the I/O (per-path block statistics in the guest)
            add(f"{label}: names the path that carried the I/O", bool(carried) and bool(c.get("namespace")),
                f"namespace {c.get('namespace')}; carried_by {carried}")
            other = [x for x in carried if x.get("pci") != p["client"]]
            if other:
                # another controller of the subsystem carried it: the
                # experiment must not claim to test the pair
                add(f"{label}: carried by {', '.join(x['controller'] for x in other)}, not the client: does not settle the pair",
                    c.get("settles_pair") is False and c.get("agrees") is None, (c.get("unsettled") or "")[:300])
                continue
        if c.get("settles_pair") is False:
            add(f"{label}: does not settle the pair", bool(c.get("unsettled")), (c.get("unsettled") or "")[:300])
            continue
        add(f"{label}: predicted {map_type_of(doc, p)}, kernel {c['outcome']}"
            + (f" ({c['errno_name']})" if c.get("errno_name") else ""),
            c["agrees"] is True, c["reason"][:300])
        for d in c["directions"]:
            if d["direction"] == "write":
                add(f"{label}: write direction restored", d["restored"] is True, d["message"][:200])
    by_serial = {n[2]: n[0] for n in nvme}
    self_pairs = any(p["provider"] == p["client"] for p in doc["pairs"])
    for x in s.pairs():
        pb, cb = by_serial.get(x["provider"]), by_serial.get(x["client"])
        if not pb or not cb:
            continue
        if pb == cb and not self_pairs:
            continue  # an older p2pdoctor did not predict a drive with itself
        if x.get("after_commands"):
            continue  # the guest commands changed the machine after check --confirm
        want = CONFIRM_OUTCOME[x["expect"]]
        p = pairs.get((pb, cb))
        got = (p or {}).get("confirm") or {}
        add(f"confirm {x['provider']}->{x['client']}: outcome {want}", got.get("outcome") == want,
            f"got {got.get('outcome', 'no such pair')}: {got.get('reason', '')[:300]}")
    # the fix string is the one the kernel printed
    kernel_fixes = sorted(set(re.findall(r"add the kernel parameter: (pci=disable_acs_redir=\S+)", klog)))
    fixes = " ".join(fix_params(f.get("fix")) for f in doc["findings"] if f["rule"] == "P2P301")
    for k in kernel_fixes:
        add(f"ACS fix {k!r} as the kernel printed it", k in fixes, fixes[:300])
    # no warning about a tried pair is left a mere prediction (the provider
    # with itself is about every finding that names the provider, and an
    # experiment that did not test its pair settles nothing)
    ends = {(p["provider"], p["client"]) for p in tried
            if p["provider"] != p["client"] and p["confirm"].get("settles_pair", True)}
    for f in doc["findings"]:
        if f["severity"] == "info":
            continue
        if any(a in f["subjects"] and b in f["subjects"] for a, b in ends):
            if f["rule"] in HAZARD_RULES:
                # timing-dependent hazards: a failure confirms, but neither a
                # pass nor a refusal rules them out; the experiment must be
                # recorded against them all the same
                add(f"{f['rule']} {f['name']} tried", f["status"] != "predicted"
                    and any(e.startswith("confirm ") for e in f["evidence"]),
                    f"status {f['status']}; {' | '.join(f['evidence'])[-300:]}")
                continue
            add(f"{f['rule']} {f['name']} settled", f["status"] in ("confirmed", "refuted"),
                f"status {f['status']}; {' | '.join(f['evidence'])[-300:]}")
    return checks


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    scenario: Scenario
    wall_s: float
    checks: list[Check]
    boot_detail: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)


def run_scenario(s: Scenario, qemu: str, kernel: Kernel, base: bytes, has_snapshot: bool, with_copies: bool,
                 cache: Path, keep: bool = False) -> Outcome:
    work = cache / "run" / s.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rdir = OUT / s.name
    shutil.rmtree(rdir, ignore_errors=True)
    rdir.mkdir(parents=True)
    initrd = work / "initrd.cpio"
    initrd.write_bytes(scenario_initramfs(s, base, with_copies))
    cmd = qemu_command(qemu, s, kernel, initrd, work)
    (rdir / "qemu-command.txt").write_text(shlex.join(cmd) + "\n")
    timeout = s.data.get("timeout", DEFAULT_TIMEOUT_S)
    t = time.monotonic()
    detail = ""
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            detail = f"qemu exited {r.returncode}: {(r.stderr or r.stdout).strip()[-500:]}"
        elif r.stderr.strip():
            (rdir / "qemu-stderr.txt").write_text(r.stderr)
    except subprocess.TimeoutExpired:
        detail = f"guest did not power off within {timeout}s (killed)"
    wall = time.monotonic() - t
    shutil.copy2(work / "console.log", rdir / "console.log") if (work / "console.log").exists() else None
    channel = read(work / "channel.txt")
    for _label, blob in parse_frames(channel):
        unpack_frame(blob, rdir)
    checks = [] if not detail else [Check("qemu", False, detail)]
    checks += check_scenario(s, rdir, has_snapshot, with_copies)
    acs = acs_table(rdir)
    summary = {
        "scenario": s.name,
        "description": s.data.get("description", "").strip(),
        "kernel": kernel.version,
        "qemu": qemu_version(qemu),
        "wall_s": round(wall, 2),
        "ok": all(c.ok is not False for c in checks),
        "checks": [dataclasses.asdict(c) for c in checks],
        "acs": acs,
        "copies": {p.stem: dict(l.split("=", 1) for l in read(p).splitlines() if "=" in l)
                   for p in sorted((rdir / "copies").glob("*.txt"))},
        "confirm": confirm_summary(rdir),
    }
    (rdir / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    (rdir / "acs.txt").write_text(format_acs(acs))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)  # the initramfs and the scratch drives
    return Outcome(s, wall, checks, detail)


def map_type_of(doc: dict, pair: dict) -> str:
    """A pair's predicted map type: in its row (check --expand-pairs, or a
    p2pdoctor before schema 2), else in the path it refers to."""
    if "map_type" in pair:
        return pair["map_type"]
    return doc["paths"][pair["path"]]["map_type"]


def confirm_summary(rdir: Path) -> list[dict]:
    """Per pair: prediction, experiment outcome, P2P and host-bounce throughput."""
    try:
        doc = json.loads(read(rdir / "confirm.json"))
    except json.JSONDecodeError:
        return []
    out = []
    for p in doc["pairs"]:
        c = p.get("confirm") or {}
        out.append({"provider": p["provider"], "client": p["client"], "predicted": map_type_of(doc, p),
                    "outcome": c.get("outcome"), "errno": c.get("errno_name"),
                    "p2p_gbps": c.get("throughput"), "host_gbps": c.get("host_throughput"),
                    "agrees": c.get("agrees")})
    return out


def format_acs(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        acs = f"ACSCap {r['acs_cap']} ACSCtl {r['acs_ctl']} ({r['acs_ctl_flags']})" if "acs_cap" in r else "no ACS capability"
        lines.append(f"{r['bdf']}  {r['id']}  {r['type']:<18} {acs}\n")
    return "".join(lines)


_qemu_versions: dict[str, str] = {}


def qemu_version(qemu: str) -> str:
    if qemu not in _qemu_versions:
        r = subprocess.run([qemu, "--version"], capture_output=True, text=True)
        m = re.search(r"version (\S+)", r.stdout)
        _qemu_versions[qemu] = m.group(1) if m else "?"
    return _qemu_versions[qemu]


def print_outcome(o: Outcome, verbose: bool) -> None:
    status = "PASS" if o.ok else "FAIL"
    print(f"{status}  {o.scenario.name:<28} {o.wall_s:5.1f}s", flush=True)
    for c in o.checks:
        if c.ok is False or verbose:
            mark = {True: "ok  ", False: "FAIL", None: "skip"}[c.ok]
            print(f"      {mark} {c.name}" + (f": {c.detail}" if c.detail else ""))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="lab/run",
        description="Boot each scenario's emulated PCIe machine under QEMU with a real kernel, "
        "run p2pdoctor in it, and collect the results into lab/out/<scenario>/.",
    )
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help="scenario names (lab/scenarios/NAME.toml; a unique part of a name will do) "
                    "or paths to .toml files; default: all of lab/scenarios")
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("P2PDOCTOR_LAB_JOBS") or os.cpu_count() or 1),
                    help="guests to run at once (default: the number of CPUs, P2PDOCTOR_LAB_JOBS; "
                    "each TCG guest keeps about one core busy)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo; use the last good p2pdoctor build")
    ap.add_argument("--p2pdoctor", type=Path, metavar="FILE", help="use this static p2pdoctor binary")
    ap.add_argument("--without-p2pdoctor", action="store_true", help="leave p2pdoctor out of the guest")
    ap.add_argument("--offline", action="store_true", help="use only what is cached")
    ap.add_argument("--keep", action="store_true",
                    help="keep each guest's initramfs and scratch drives (CACHE/run/<scenario>/) so that "
                    "lab/out/<scenario>/qemu-command.txt can be rerun by hand")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every check, not only failures")
    args = ap.parse_args(argv)

    try:
        scenarios = load_scenarios(args.scenarios)
        if args.list:
            for s in scenarios:
                title = s.data.get("title") or s.data.get("description", "").strip().splitlines()[0]
                print(f"{s.name:<24} {title}")
            return 0
        t_total = time.monotonic()
        OUT.mkdir(exist_ok=True)
        CACHE.mkdir(parents=True, exist_ok=True)

        t = time.monotonic()
        qemu = ensure_qemu()
        archive = Archive(CACHE)
        online = False if args.offline else archive.update()
        kernel = resolve_kernel(archive, online, CACHE)
        busybox = resolve_busybox(archive, online, CACHE)
        t_ingredients = time.monotonic() - t
        log(f"kernel {kernel.version} ({kernel.info.get('suite') or 'cached'}), qemu {qemu_version(qemu)}, "
            f"cache {CACHE} [{t_ingredients:.1f}s]")

        t = time.monotonic()
        if args.without_p2pdoctor:
            p2pdoctor = None
        elif args.p2pdoctor:
            p2pdoctor = args.p2pdoctor.resolve()
        elif args.no_build:
            p2pdoctor = CACHE / "bin" / "p2pdoctor"
            if not p2pdoctor.exists():
                raise LabError(f"--no-build: no earlier build at {p2pdoctor}")
        else:
            p2pdoctor = build_p2pdoctor(CACHE, OUT)
        p2pcopy = build_p2pcopy(CACHE)
        t_build = time.monotonic() - t
        has_snapshot = p2pdoctor_has(p2pdoctor, "snapshot")

        t = time.monotonic()
        extra = sorted({m for s in scenarios for m in s.data.get("modules", [])})
        modules = module_load_order(kernel, BASE_MODULES + extra)
        base = base_initramfs(kernel, busybox, modules, p2pdoctor, p2pcopy)
        t_pack = time.monotonic() - t
        log(f"initramfs {len(base) >> 10} KiB, modules: {' '.join(n for n, _ in modules)} "
            f"[build {t_build:.1f}s, pack {t_pack:.1f}s]")

        log(f"booting {len(scenarios)} scenario(s), {args.jobs} at a time")
        t_boot = time.monotonic()
        outcomes: list[Outcome] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_scenario, s, qemu, kernel, base, has_snapshot, p2pcopy is not None, CACHE, args.keep)
                       for s in scenarios]
            for f in futures:
                o = f.result()
                print_outcome(o, args.verbose)
                outcomes.append(o)
        t_boot = time.monotonic() - t_boot
        failed = [o for o in outcomes if not o.ok]
        total = time.monotonic() - t_total
        summary = {
            "kernel": kernel.version,
            "qemu": qemu_version(qemu),
            "p2pdoctor": str(p2pdoctor) if p2pdoctor else None,
            "jobs": args.jobs,
            "seconds": {"ingredients": round(t_ingredients, 1), "build": round(t_build, 1), "pack": round(t_pack, 1),
                        "scenarios": round(t_boot, 1), "total": round(total, 1)},
            "scenarios": {o.scenario.name: {"ok": o.ok, "wall_s": round(o.wall_s, 2)} for o in outcomes},
        }
        (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"\n{len(outcomes) - len(failed)} passed, {len(failed)} failed; kernel {kernel.version}; "
              f"ingredients {t_ingredients:.1f}s, build {t_build:.1f}s, scenarios {t_boot:.1f}s, total {total:.1f}s")
        print(f"results: {OUT}/<scenario>/ (snapshot.tar.gz, kernel.log, console.log, acs.txt, result.json)")
        if failed:
            print("failed: " + " ".join(o.scenario.name for o in failed))
            return 1
        return 0
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"lab: error: {shlex.join(map(str, e.cmd))} failed with status {e.returncode}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

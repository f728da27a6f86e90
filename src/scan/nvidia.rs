//! What NVIDIA's own tool says of the PCIe paths: `nvidia-smi topo -m`.
//!
//! GPU owners read path classes the way `nvidia-smi topo -m` prints them
//! (X, PIX, PXB, PHB, NODE, SYS, NV#), so p2pdoctor shows its classes
//! beside NVML's and calls out where they differ. The matrix names GPUs by
//! index and NICs by RDMA device, never by PCI address: the addresses come
//! from `nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader`
//! and from `/sys/class/infiniband/<name>/device`; where neither is there,
//! the diagnosis falls back to NVML's order (GPUs by PCI address) and says
//! so.
//!
//! On the live machine the tool is run read-only, with a time limit, and
//! only when it is on the PATH; its output is kept in a snapshot
//! (`p2pdoctor/nvidia-smi-topo-m.txt`, `p2pdoctor/nvidia-smi-gpus.csv`), so
//! a capture analysed elsewhere shows the same comparison. Never required.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pci::Bdf;
use crate::root::SystemRoot;

/// Where a snapshot keeps the tool's output.
pub const TOPO_FILE: &str = "p2pdoctor/nvidia-smi-topo-m.txt";
pub const GPUS_FILE: &str = "p2pdoctor/nvidia-smi-gpus.csv";

/// How long the tool may take before it is killed (it can hang on a GPU
/// that fell off the bus).
const TIME_LIMIT: Duration = Duration::from_secs(10);
/// More output than a matrix of 1,000 devices is not a matrix.
const OUTPUT_LIMIT: u64 = 4 << 20;

/// `nvidia-smi topo -m`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NvidiaTopology {
    /// Where it was read: `nvidia-smi topo -m (run now)` or the file.
    pub source: String,
    /// Column names in order: `GPU0`, `NIC0`, `mlx5_0`, ...
    pub devices: Vec<String>,
    /// `cells[i][j]`: what the matrix says between devices i and j.
    pub cells: Vec<Vec<String>>,
    /// `CPU Affinity` per device row (GPUs only print it).
    pub cpu_affinity: Vec<Option<String>>,
    /// `NUMA Affinity` per device row.
    pub numa_affinity: Vec<Option<String>>,
    /// `NIC Legend`: `NIC0` → `mlx5_0`.
    pub nic_legend: BTreeMap<String, String>,
    /// GPU index → PCI address (`nvidia-smi --query-gpu=index,pci.bus_id`).
    pub gpu_addresses: BTreeMap<u32, Bdf>,
    /// RDMA device → PCI address (`/sys/class/infiniband/<name>/device`).
    pub rdma_addresses: BTreeMap<String, Bdf>,
}

impl NvidiaTopology {
    /// The RDMA device name of a matrix column (`NIC0` through the legend).
    pub fn rdma_name<'a>(&'a self, column: &'a str) -> &'a str {
        self.nic_legend
            .get(column)
            .map(String::as_str)
            .unwrap_or(column)
    }
}

/// Reads the tool's view: on the live machine by running it (when
/// `run_tool` and it is on the PATH), elsewhere from a snapshot's files.
pub fn read(root: &SystemRoot, run_tool: bool) -> Option<NvidiaTopology> {
    let (topo, gpus, source) = if root.is_live() {
        if !run_tool {
            return None;
        }
        let topo = run(&["topo", "-m"])?;
        let gpus =
            run(&["--query-gpu=index,pci.bus_id", "--format=csv,noheader"]).unwrap_or_default();
        root.note_generated(TOPO_FILE, topo.as_bytes());
        root.note_generated(GPUS_FILE, gpus.as_bytes());
        (topo, gpus, "nvidia-smi topo -m (run now)".to_string())
    } else {
        let topo = root.read_string(TOPO_FILE).ok()?;
        let gpus = root.read_string(GPUS_FILE).unwrap_or_default();
        (topo, gpus, format!("{TOPO_FILE} in the capture"))
    };
    let mut parsed = parse_topo_matrix(&topo)?;
    parsed.source = source;
    parsed.gpu_addresses = parse_gpu_addresses(&gpus);
    parsed.rdma_addresses = rdma_addresses(root);
    Some(parsed)
}

/// `/sys/class/infiniband/<name>/device` → the PCI function.
fn rdma_addresses(root: &SystemRoot) -> BTreeMap<String, Bdf> {
    root.read_dir("sys/class/infiniband")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| {
            let bdf = root
                .link_name(&format!("sys/class/infiniband/{name}/device"))?
                .parse()
                .ok()?;
            Some((name, bdf))
        })
        .collect()
}

/// Runs `nvidia-smi ARGS` if it is on the PATH: its standard output, or
/// None when it is missing, fails, or outlasts [`TIME_LIMIT`].
fn run(args: &[&str]) -> Option<String> {
    let mut child = Command::new("nvidia-smi")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(OUTPUT_LIMIT).read_to_end(&mut out);
        out
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() < TIME_LIMIT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = reader.join().ok()?;
    status
        .filter(|s| s.success())
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// The values a matrix cell can take (the legend of `nvidia-smi topo -m`).
fn is_cell(word: &str) -> bool {
    matches!(word, "X" | "SYS" | "NODE" | "PHB" | "PXB" | "PIX" | "SOC")
        || word
            .strip_prefix("NV")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses the matrix out of any text that holds one (a paste may have a
/// prompt before it and the legend after it). None when there is none.
///
/// The header row lists the devices, then `CPU Affinity`, `NUMA Affinity`
/// and `GPU NUMA ID` on newer drivers; each row names its device, then one
/// cell per device, then the affinities. Columns are separated by tabs
/// (spaces in copies of copies), and the `X` on the diagonal is padded.
pub fn parse_topo_matrix(text: &str) -> Option<NvidiaTopology> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let is_device = |w: &str| {
        (w.starts_with("GPU") && w[3..].bytes().all(|b| b.is_ascii_digit()) && w.len() > 3)
            || (w.starts_with("NIC") && w[3..].bytes().all(|b| b.is_ascii_digit()) && w.len() > 3)
            || w.starts_with("mlx")
            || w.starts_with("bnxt")
            || w.starts_with("irdma")
            || w.starts_with("efa")
            || w.starts_with("ionic")
            || w.starts_with("hfi")
    };
    let (head_at, devices) = lines.iter().enumerate().find_map(|(i, l)| {
        let words: Vec<&str> = l.split_whitespace().collect();
        let n = words.iter().take_while(|w| is_device(w)).count();
        (n >= 1
            && words.first().is_some_and(|w| w.starts_with("GPU"))
            && (l.contains("Affinity") || n == words.len()))
        .then(|| {
            (
                i,
                words[..n].iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            )
        })
    })?;
    let n = devices.len();
    let mut out = NvidiaTopology {
        devices: devices.clone(),
        cells: vec![Vec::new(); n],
        cpu_affinity: vec![None; n],
        numa_affinity: vec![None; n],
        ..Default::default()
    };
    let header = lines[head_at];
    let has_cpu = header.contains("CPU Affinity");
    let has_numa = header.contains("NUMA Affinity");
    let mut rows = 0;
    for l in &lines[head_at + 1..] {
        let words: Vec<&str> = l.split_whitespace().collect();
        let Some(row) = words
            .first()
            .and_then(|w| devices.iter().position(|d| d == w))
        else {
            if rows > 0 && !l.trim().is_empty() {
                break; // the matrix ended (the legend follows)
            }
            continue;
        };
        let cells: Vec<String> = words[1..].iter().take(n).map(|w| w.to_string()).collect();
        if cells.len() < n || !cells.iter().all(|c| is_cell(c)) {
            continue; // a mangled row: leave it empty
        }
        let mut rest = words[1 + n..].iter();
        if has_cpu {
            out.cpu_affinity[row] = rest.next().map(|s| s.to_string());
        }
        if has_numa {
            out.numa_affinity[row] = rest.next().map(|s| s.to_string());
        }
        out.cells[row] = cells;
        rows += 1;
    }
    if rows == 0 {
        return None;
    }
    // NIC Legend:  NIC0: mlx5_0
    for l in &lines[head_at..] {
        let t = l.trim();
        if let Some((k, v)) = t.split_once(':')
            && k.starts_with("NIC")
            && k[3..].bytes().all(|b| b.is_ascii_digit())
            && k.len() > 3
            && !v.trim().is_empty()
        {
            out.nic_legend.insert(k.to_string(), v.trim().to_string());
        }
    }
    Some(out)
}

/// `0, 00000000:1A:00.0` lines (`--query-gpu=index,pci.bus_id
/// --format=csv,noheader`), also with a `index, pci.bus_id` header.
/// NVML prints an 8-digit domain and upper-case hex.
pub fn parse_gpu_addresses(text: &str) -> BTreeMap<u32, Bdf> {
    text.lines()
        .filter_map(|l| {
            let (i, bus) = l.split_once(',')?;
            let index = i.trim().parse().ok()?;
            let bus = bus.trim().to_ascii_lowercase();
            // 00000000:1a:00.0 → 0000:1a:00.0 (Bdf parses 4..8 digits).
            let bdf: Bdf = bus.parse().ok()?;
            Some((index, bdf))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From NVIDIA/nccl-tests and deepseek-ai/DeepEP issue threads (cut to
    /// four GPUs and their NICs), with the legend that follows it.
    const DGX: &str = "\
$ nvidia-smi topo -m
\tGPU0\tGPU1\tGPU2\tGPU3\tNIC0\tNIC1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID
GPU0\t X \tNV18\tNV18\tNV18\tPIX\tSYS\t0-55,112-167\t0\t\tN/A
GPU1\tNV18\t X \tNV18\tNV18\tSYS\tPIX\t0-55,112-167\t0\t\tN/A
GPU2\tNV18\tNV18\t X \tNV18\tSYS\tSYS\t56-111,168-223\t1\t\tN/A
GPU3\tNV18\tNV18\tNV18\t X \tSYS\tSYS\t56-111,168-223\t1\t\tN/A
NIC0\tPIX\tSYS\tSYS\tSYS\t X \tSYS
NIC1\tSYS\tPIX\tSYS\tSYS\tSYS\t X 

Legend:

  X    = Self
  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)
  PIX  = Connection traversing at most a single PCIe bridge
  NV#  = Connection traversing a bonded set of # NVLinks

NIC Legend:

  NIC0: mlx5_0
  NIC1: mlx5_1
";

    #[test]
    fn parses_a_matrix_with_nics_and_legend() {
        let t = parse_topo_matrix(DGX).unwrap();
        assert_eq!(t.devices, ["GPU0", "GPU1", "GPU2", "GPU3", "NIC0", "NIC1"]);
        assert_eq!(t.cells[0], ["X", "NV18", "NV18", "NV18", "PIX", "SYS"]);
        assert_eq!(t.cells[5][1], "PIX");
        assert_eq!(t.cpu_affinity[2].as_deref(), Some("56-111,168-223"));
        assert_eq!(t.numa_affinity[3].as_deref(), Some("1"));
        assert_eq!(t.cpu_affinity[4], None);
        assert_eq!(t.rdma_name("NIC1"), "mlx5_1");
    }

    #[test]
    fn old_format_with_rdma_names_as_columns_and_spaces() {
        // kubernetes/kubernetes#53497 (2017): spaces, mlx4_0 as a column.
        let text = "\
        GPU0    GPU1    GPU2    mlx4_0  CPU Affinity
GPU0     X      PIX     PHB     PHB     0-9,20-29
GPU1    PIX      X      PHB     PHB     0-9,20-29
GPU2    PHB     PHB      X      SYS     10-19,30-39
mlx4_0  PHB     PHB     SYS      X
";
        let t = parse_topo_matrix(text).unwrap();
        assert_eq!(t.devices, ["GPU0", "GPU1", "GPU2", "mlx4_0"]);
        assert_eq!(t.cells[1], ["PIX", "X", "PHB", "PHB"]);
        assert_eq!(t.cells[3][2], "SYS");
        assert_eq!(t.cpu_affinity[0].as_deref(), Some("0-9,20-29"));
    }

    #[test]
    fn no_matrix_and_mangled_rows_are_not_panics() {
        assert_eq!(parse_topo_matrix(""), None);
        assert_eq!(parse_topo_matrix("GPU0 is fine\n"), None);
        assert_eq!(parse_topo_matrix("\tGPU0\tGPU1\nGPU0\tX\n"), None);
        let t = parse_topo_matrix("\tGPU0\tGPU1\nGPU0\t X \tPIX\nGPU1\tPIX\tbogus\n").unwrap();
        assert_eq!(t.cells[1], Vec::<String>::new());
        for junk in ["GPU", "\tGPU0\n GPU0", "GPU0\tGPU0\nGPU0 X X X X"] {
            let _ = parse_topo_matrix(junk);
        }
    }

    #[test]
    fn gpu_addresses_from_the_query() {
        let m =
            parse_gpu_addresses("index, pci.bus_id\n0, 00000000:1A:00.0\n1, 00000000:3D:00.0\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[&0], "0000:1a:00.0".parse().unwrap());
        assert_eq!(m[&1].to_string(), "0000:3d:00.0");
    }
}

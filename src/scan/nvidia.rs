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
//! Beside the matrix, `nvidia-smi topo -p2p r` tells whether the driver
//! allows each GPU pair peer reads (OK, or why not: CNS chipset, GNS GPU,
//! TNS topology, NS, DR disabled by regkey, U unknown).
//!
//! On the live machine the tool is run read-only, with a time limit, and
//! only when it is on the PATH; its output is kept in a snapshot
//! (`p2pdoctor/nvidia-smi-topo-m.txt`, `p2pdoctor/nvidia-smi-gpus.csv`,
//! `p2pdoctor/nvidia-smi-topo-p2p-r.txt`), so a capture analysed elsewhere
//! shows the same comparison. Never required.

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
pub const P2P_READ_FILE: &str = "p2pdoctor/nvidia-smi-topo-p2p-r.txt";

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
    /// `nvidia-smi topo -p2p r`: whether the driver allows peer reads.
    pub p2p_read: Option<P2pMatrix>,
}

/// `nvidia-smi topo -p2p r` (or w, rw, n, a, p: one format), parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct P2pMatrix {
    /// Where it was read.
    pub source: String,
    /// `GPU0`, `GPU1`, ...
    pub devices: Vec<String>,
    /// `cells[i][j]`: `X`, `OK`, `CNS`, `GNS`, `TNS`, `NS`, `DR` or `U`.
    pub cells: Vec<Vec<String>>,
}

/// What a `-p2p` cell means, from the tool's legend.
pub fn p2p_status_meaning(cell: &str) -> &'static str {
    match cell {
        "X" => "self",
        "OK" => "supported",
        "CNS" => "chipset not supported",
        "GNS" => "GPU not supported",
        "TNS" => "topology not supported",
        "NS" => "not supported",
        "DR" => "disabled by regkey",
        _ => "unknown",
    }
}

fn is_p2p_cell(word: &str) -> bool {
    matches!(word, "X" | "OK" | "CNS" | "GNS" | "TNS" | "NS" | "DR" | "U")
}

fn is_gpu_name(w: &str) -> bool {
    w.len() > 3 && w.starts_with("GPU") && w[3..].bytes().all(|b| b.is_ascii_digit())
}

/// Parses the matrix of `nvidia-smi topo -p2p <r|w|rw|n|a|p>` out of any
/// text that holds one: a header of GPU names, then one row per GPU of
/// status cells (tabs or spaces, rows often start with a space). A paste
/// may hold `topo -m` too: a header whose rows are not status cells is
/// skipped. None when there is no such matrix.
pub fn parse_p2p_matrix(text: &str) -> Option<P2pMatrix> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    for (i, l) in lines.iter().enumerate() {
        let words: Vec<&str> = l.split_whitespace().collect();
        if words.is_empty() || !words.iter().all(|w| is_gpu_name(w)) {
            continue;
        }
        let devices: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let n = devices.len();
        let mut cells = vec![Vec::new(); n];
        let mut rows = 0;
        for r in &lines[i + 1..] {
            let w: Vec<&str> = r.split_whitespace().collect();
            let Some(row) = w.first().and_then(|x| devices.iter().position(|d| d == x)) else {
                if rows > 0 || !r.trim().is_empty() {
                    break;
                }
                continue;
            };
            let row_cells: Vec<String> = w[1..].iter().take(n).map(|c| c.to_string()).collect();
            if row_cells.len() < n || !row_cells.iter().all(|c| is_p2p_cell(c)) {
                break; // not a -p2p matrix (topo -m's rows hold PIX, NV#)
            }
            cells[row] = row_cells;
            rows += 1;
        }
        if rows > 0 && rows == n {
            return Some(P2pMatrix {
                source: String::new(),
                devices,
                cells,
            });
        }
    }
    None
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
    let (topo, gpus, p2p, source) = if root.is_live() {
        if !run_tool {
            return None;
        }
        let topo = run(&["topo", "-m"])?;
        let gpus =
            run(&["--query-gpu=index,pci.bus_id", "--format=csv,noheader"]).unwrap_or_default();
        let p2p = run(&["topo", "-p2p", "r"]).unwrap_or_default();
        root.note_generated(TOPO_FILE, topo.as_bytes());
        root.note_generated(GPUS_FILE, gpus.as_bytes());
        if !p2p.is_empty() {
            root.note_generated(P2P_READ_FILE, p2p.as_bytes());
        }
        let p2p = parse_p2p_matrix(&p2p).map(|m| P2pMatrix {
            source: "nvidia-smi topo -p2p r (run now)".into(),
            ..m
        });
        (topo, gpus, p2p, "nvidia-smi topo -m (run now)".to_string())
    } else {
        let topo = root.read_string(TOPO_FILE).ok()?;
        let gpus = root.read_string(GPUS_FILE).unwrap_or_default();
        let p2p = root
            .read_string(P2P_READ_FILE)
            .ok()
            .and_then(|t| parse_p2p_matrix(&t))
            .map(|m| P2pMatrix {
                source: format!("{P2P_READ_FILE} in the capture"),
                ..m
            });
        (topo, gpus, p2p, format!("{TOPO_FILE} in the capture"))
    };
    let mut parsed = parse_topo_matrix(&topo)?;
    parsed.source = source;
    parsed.p2p_read = p2p;
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
    // A header whose rows hold no matrix (`topo -p2p`'s, pasted first) is
    // passed over for the next one.
    let mut start = 0;
    while start < lines.len() {
        match parse_topo_matrix_from(&lines, start) {
            Ok(t) => return Some(t),
            Err(Some(next)) => start = next,
            Err(None) => return None,
        }
    }
    None
}

/// The matrix under the first header at or after `start`; `Err(Some(i))`
/// when that header had no rows (try from line i), `Err(None)` when there
/// is no header.
fn parse_topo_matrix_from(lines: &[&str], start: usize) -> Result<NvidiaTopology, Option<usize>> {
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
    let (head_at, devices) = lines
        .iter()
        .enumerate()
        .skip(start)
        .find_map(|(i, l)| {
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
        })
        .ok_or(None)?;
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
        if words.len() >= 2 && is_device(words[0]) && is_device(words[1]) {
            break; // the next matrix's header (a row has a cell second)
        }
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
        return Err(Some(head_at + 1));
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
    Ok(out)
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

    /// Real outputs from public threads (tests/fixtures/evidence/
    /// nvidia_smi_p2p/README.md names each source).
    const P2P_GNS: &str =
        include_str!("../../tests/fixtures/evidence/nvidia_smi_p2p/club3090_1124_2x5090_gns.txt");
    const P2P_NS: &str =
        include_str!("../../tests/fixtures/evidence/nvidia_smi_p2p/axolotl_3132_runpod_ns.txt");
    const P2P_OK: &str = include_str!(
        "../../tests/fixtures/evidence/nvidia_smi_p2p/open_gpu_kernel_modules_13_5gpu_ok.txt"
    );

    #[test]
    fn p2p_matrices_from_public_threads() {
        let m = parse_p2p_matrix(P2P_GNS).unwrap();
        assert_eq!(m.devices, ["GPU0", "GPU1"]);
        assert_eq!(m.cells, [["X", "GNS"], ["GNS", "X"]]);
        assert_eq!(p2p_status_meaning(&m.cells[0][1]), "GPU not supported");
        // Spaces and a prompt line before it.
        let m = parse_p2p_matrix(P2P_NS).unwrap();
        assert_eq!(m.cells[1], ["NS", "X"]);
        let m = parse_p2p_matrix(P2P_OK).unwrap();
        assert_eq!(m.devices.len(), 5);
        assert!((0..5).all(|i| (0..5).all(|j| m.cells[i][j] == if i == j { "X" } else { "OK" })));
    }

    #[test]
    fn p2p_matrix_beside_topo_m_and_garbage() {
        // topo -m first in a paste: its header is skipped, -p2p's found.
        let both = format!("{DGX}\n{P2P_GNS}");
        let m = parse_p2p_matrix(&both).unwrap();
        assert_eq!(m.cells[0][1], "GNS");
        // -p2p first: topo -m's parser passes its header over.
        let both = format!("{P2P_GNS}\n{DGX}");
        assert_eq!(parse_topo_matrix(&both).unwrap().devices.len(), 6);
        assert_eq!(parse_p2p_matrix(&both).unwrap().devices.len(), 2);
        assert_eq!(parse_p2p_matrix(DGX), None);
        assert_eq!(parse_p2p_matrix(""), None);
        // A row short or with a cell outside the legend: no matrix.
        assert_eq!(parse_p2p_matrix(" \tGPU0\tGPU1\n GPU0\tX\n"), None);
        assert_eq!(
            parse_p2p_matrix(" \tGPU0\tGPU1\n GPU0\tX\tYES\n GPU1\tOK\tX\n"),
            None
        );
        for junk in ["GPU", "GPU0", "GPU0\nGPU0 X", "\u{0}GPU0\n GPU0 X X X"] {
            let _ = parse_p2p_matrix(junk);
        }
        assert_eq!(p2p_status_meaning("??"), "unknown");
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

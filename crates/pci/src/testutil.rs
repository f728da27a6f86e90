//! Builders for synthetic config space, shared by the decoder's unit tests.
//!
//! `Config` places registers and capabilities at chosen offsets and links the
//! capability lists the way hardware does, so each test states only what it
//! is about.

/// A config-space image under construction (4096 bytes unless truncated).
pub(crate) struct Config {
    pub bytes: Vec<u8>,
    last_cap: Option<usize>,
    last_ecap: Option<usize>,
}

impl Config {
    /// A type 0 (endpoint) header with the given IDs and 24-bit class code.
    pub fn endpoint(vendor: u16, device: u16, class: u32) -> Self {
        let mut c = Config::blank();
        c.u16(0x00, vendor).u16(0x02, device).u32(0x08, class << 8);
        c.u8(0x0e, 0x00);
        c
    }

    /// A type 1 (PCI-to-PCI bridge) header with the given bus numbers.
    pub fn bridge(vendor: u16, device: u16, buses: (u8, u8, u8)) -> Self {
        let mut c = Config::blank();
        c.u16(0x00, vendor)
            .u16(0x02, device)
            .u32(0x08, 0x060400 << 8);
        c.u8(0x0e, 0x01);
        c.u8(0x18, buses.0).u8(0x19, buses.1).u8(0x1a, buses.2);
        c
    }

    fn blank() -> Self {
        Config {
            bytes: vec![0; 4096],
            last_cap: None,
            last_ecap: None,
        }
    }

    pub fn u8(&mut self, off: usize, v: u8) -> &mut Self {
        self.bytes[off] = v;
        self
    }

    pub fn u16(&mut self, off: usize, v: u16) -> &mut Self {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a standard capability at `off`: sets the Status cap-list bit,
    /// links it from 0x34 or from the previous capability, and copies `body`
    /// (the bytes after the ID/next pair, starting at `off + 2`).
    pub fn cap(&mut self, id: u8, off: usize, body: &[u8]) -> &mut Self {
        let status = u16::from_le_bytes([self.bytes[6], self.bytes[7]]) | 0x10;
        self.u16(0x06, status);
        match self.last_cap {
            None => self.u8(0x34, off as u8),
            Some(prev) => self.u8(prev + 1, off as u8),
        };
        self.u8(off, id).u8(off + 1, 0);
        self.bytes[off + 2..off + 2 + body.len()].copy_from_slice(body);
        self.last_cap = Some(off);
        self
    }

    /// Appends an extended capability at `off` (the first must be at 0x100),
    /// linking it from the previous one; `body` starts at `off + 4`.
    pub fn ecap(&mut self, id: u16, version: u8, off: usize, body: &[u8]) -> &mut Self {
        if let Some(prev) = self.last_ecap {
            let h = u32::from_le_bytes(self.bytes[prev..prev + 4].try_into().unwrap());
            self.u32(prev, (h & 0x000f_ffff) | ((off as u32) << 20));
        } else {
            assert_eq!(off, 0x100, "the first extended capability lives at 0x100");
        }
        self.u32(off, u32::from(id) | (u32::from(version & 0xf) << 16));
        self.bytes[off + 4..off + 4 + body.len()].copy_from_slice(body);
        self.last_ecap = Some(off);
        self
    }

    /// The image cut to `len` bytes (64 for the non-root sysfs view).
    pub fn truncated(&self, len: usize) -> Vec<u8> {
        self.bytes[..len.min(self.bytes.len())].to_vec()
    }

    pub fn build(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

/// Little-endian bytes of a sequence of 16-bit words.
pub(crate) fn words(ws: &[u16]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Little-endian bytes of a sequence of 32-bit dwords.
pub(crate) fn dwords(ds: &[u32]) -> Vec<u8> {
    ds.iter().flat_map(|d| d.to_le_bytes()).collect()
}

/// The body of a PCI Express capability (from offset +2 on), 0x3a bytes:
/// flags, then DevCap, DevCtl, DevSta, LnkCap, LnkCtl, LnkSta, ..., DevCap2
/// at +0x24 and DevCtl2 at +0x28.
pub(crate) struct ExpressBody {
    pub flags: u16,
    pub devcap: u32,
    pub devctl: u16,
    pub lnkcap: u32,
    pub lnkctl: u16,
    pub lnksta: u16,
    pub devcap2: u32,
    pub devctl2: u16,
}

impl ExpressBody {
    /// Capability version 2 of the given port type, everything else zero.
    pub fn v2(port_type: u8) -> Self {
        ExpressBody {
            flags: 0x0002 | (u16::from(port_type) << 4),
            devcap: 0,
            devctl: 0,
            lnkcap: 0,
            lnkctl: 0,
            lnksta: 0,
            devcap2: 0,
            devctl2: 0,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; 0x3a];
        let mut put = |off: usize, v: &[u8]| b[off - 2..off - 2 + v.len()].copy_from_slice(v);
        put(0x02, &self.flags.to_le_bytes());
        put(0x04, &self.devcap.to_le_bytes());
        put(0x08, &self.devctl.to_le_bytes());
        put(0x0c, &self.lnkcap.to_le_bytes());
        put(0x10, &self.lnkctl.to_le_bytes());
        put(0x12, &self.lnksta.to_le_bytes());
        put(0x24, &self.devcap2.to_le_bytes());
        put(0x28, &self.devctl2.to_le_bytes());
        b
    }
}

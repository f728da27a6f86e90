//! The kernel parameters that change ACS: `pci=disable_acs_redir=` and
//! `pci=config_acs=`, matched the way drivers/pci/pci.c does.
//!
//! - `pci_setup()` keeps only the *last* `disable_acs_redir=` /
//!   `config_acs=`; the scan reads them so ([`AcsParams`], parsed with the
//!   rest of the command line in `scan/host.rs`).
//! - `pci_enable_acs()` then, for every device with an ACS capability,
//!   reads the firmware's ACS Control (`fw_ctrl`), lets the IOMMU default
//!   (`pci_std_enable_acs()`) set bits, and applies `__pci_config_acs()`
//!   twice: disable_acs_redir with mask RR|CR|EC and flags 0, then
//!   config_acs with the mask and flags spelled in the parameter. Both
//!   compute `ctrl = (fw_ctrl & ~mask) | (flags & mask)`.
//! - Devices are named by `pci_dev_str_match()`:
//!   `[<domain>:]<bus>:<dev>.<fn>[/<dev>.<fn>]*` (a path from a bridge down)
//!   or `pci:<vendor>:<device>[:<subvendor>:<subdevice>]` (0 matches any).
//!   Entries are separated by `;`. The first entry that matches wins; an
//!   entry that cannot be parsed ends the walk for every device.

use serde::Serialize;

use crate::pci::{AcsFlags, Bdf};
/// The two parameters, parsed once by the scan from the command line
/// (`Facts.host.cmdline.acs`); matched against devices here.
pub use crate::scan::AcsParams;

/// What `pci_dev_str_match()` needs to know about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdent {
    /// The device first, then its upstream bridges, nearest first.
    pub chain: Vec<Bdf>,
    pub vendor: u16,
    pub device: u16,
    /// (subsystem vendor, subsystem device); 0 when the device has none.
    pub subsystem: (u16, u16),
}

/// Why a parameter could not be (fully) used, in the kernel's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamError {
    /// Zero-based index of the `;`-separated entry.
    pub entry: usize,
    /// What the kernel logs: `PCI: Can't parse ACS command line parameter`,
    /// `Invalid ACS flags... Ignoring`, `ACS Flags missing`,
    /// `Invalid ACS flags specified`.
    pub kernel_message: String,
}

/// The outcome of walking one parameter for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamMatch {
    /// The entry that matched, with the mask and flags it applies.
    pub matched: Option<(usize, u16, u16)>,
    /// The walk stopped on an error before a match.
    pub error: Option<ParamError>,
}

/// A tiny `vsscanf()` for the conversions pci.c uses: `%x`, `%hx`, `%c`,
/// `%n` and literal characters. Returns the values converted so far, the
/// number of conversions, and the position after the last one.
fn scan(input: &str, format: &str) -> (Vec<u64>, usize, usize) {
    let s = input.as_bytes();
    let f = format.as_bytes();
    let (mut si, mut fi) = (0, 0);
    let mut values = Vec::new();
    let mut count = 0;
    while fi < f.len() {
        if f[fi] != b'%' {
            if si >= s.len() || s[si] != f[fi] {
                break;
            }
            si += 1;
            fi += 1;
            continue;
        }
        fi += 1;
        let half = f.get(fi) == Some(&b'h');
        if half {
            fi += 1;
        }
        match f.get(fi) {
            Some(b'x') => {
                // The kernel skips white space before a number and accepts
                // an optional 0x prefix (simple_strtoull() with base 16).
                while si < s.len() && s[si].is_ascii_whitespace() {
                    si += 1;
                }
                let mut start = si;
                if s.get(si) == Some(&b'0')
                    && matches!(s.get(si + 1), Some(b'x' | b'X'))
                    && s.get(si + 2).is_some_and(u8::is_ascii_hexdigit)
                {
                    start += 2;
                }
                let digits = s[start..]
                    .iter()
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count();
                if digits == 0 {
                    break;
                }
                let mut v: u64 = 0;
                for &b in &s[start..start + digits] {
                    v = v
                        .wrapping_mul(16)
                        .wrapping_add((b as char).to_digit(16).unwrap_or(0) as u64);
                }
                if half {
                    v &= 0xffff;
                } else {
                    v &= 0xffff_ffff;
                }
                values.push(v);
                count += 1;
                si = start + digits;
            }
            Some(b'c') => {
                if si >= s.len() {
                    break;
                }
                values.push(u64::from(s[si]));
                count += 1;
                si += 1;
            }
            Some(b'n') => values.push(si as u64),
            _ => break,
        }
        fi += 1;
    }
    (values, count, si)
}

/// PCI_DEVFN(slot, func): the kernel masks both fields.
fn devfn(slot: u64, func: u64) -> u8 {
    (((slot & 0x1f) << 3) | (func & 0x07)) as u8
}

/// `pci_dev_str_match_path()`: Ok(true) on a match, Ok(false) on none,
/// Err on a string it cannot parse. The path ends at the next `;`.
fn match_path(dev: &DeviceIdent, path: &str) -> Result<bool, ()> {
    let mut wpath = path;
    let mut level = 0usize;
    while let Some(slash) = wpath.rfind('/') {
        let (v, n, _) = scan(&wpath[slash..], "/%x.%x%c");
        if n != 2 {
            return Err(());
        }
        match dev.chain.get(level) {
            Some(b) if b.devfn() == devfn(v[0], v[1]) => {}
            _ => return Ok(false),
        }
        level += 1;
        if dev.chain.get(level).is_none() {
            return Ok(false); // no upstream bridge left for the next component
        }
        wpath = &wpath[..slash];
    }
    let (v, n, _) = scan(wpath, "%x:%x:%x.%x%c");
    let (seg, bus, slot, func) = if n == 4 {
        (v[0], v[1], v[2], v[3])
    } else {
        let (v, n, _) = scan(wpath, "%x:%x.%x%c");
        if n != 3 {
            return Err(());
        }
        (0, v[0], v[1], v[2])
    };
    let Some(top) = dev.chain.get(level) else {
        return Ok(false);
    };
    Ok(seg == u64::from(top.domain)
        && bus == u64::from(top.bus)
        && top.devfn() == devfn(slot, func))
}

/// `pci_dev_str_match()` on the entry starting at `p`: the match result
/// and how many bytes of `p` the entry used.
fn match_entry(dev: &DeviceIdent, p: &str) -> Result<(bool, usize), ()> {
    if let Some(ids) = p.strip_prefix("pci:") {
        let (v, n, _) = scan(ids, "%hx:%hx:%hx:%hx%n");
        let (vendor, device, sv, sd, used) = if n == 4 {
            (v[0], v[1], v[2], v[3], v[4] as usize)
        } else {
            let (v, n, _) = scan(ids, "%hx:%hx%n");
            if n != 2 {
                return Err(());
            }
            (v[0], v[1], 0, 0, v[2] as usize)
        };
        let eq = |want: u64, have: u16| want == 0 || want == u64::from(have);
        let hit = eq(vendor, dev.vendor)
            && eq(device, dev.device)
            && eq(sv, dev.subsystem.0)
            && eq(sd, dev.subsystem.1);
        Ok((hit, 4 + used))
    } else {
        let end = p.find(';').unwrap_or(p.len());
        Ok((match_path(dev, &p[..end])?, end))
    }
}

/// `__pci_config_acs()` for one device: walks the `;`-separated entries of
/// `param` and returns the first that names `dev`, with its mask and flags.
/// `fixed` is Some((mask, flags)) for disable_acs_redir; None makes each
/// entry carry its own `<flags>@` prefix (config_acs).
pub fn match_param(dev: &DeviceIdent, param: &str, fixed: Option<(u16, u16)>) -> ParamMatch {
    let mut p = param;
    let mut entry = 0;
    let err = |entry, msg: &str| ParamMatch {
        matched: None,
        error: Some(ParamError {
            entry,
            kernel_message: msg.to_string(),
        }),
    };
    let (mut mask, mut flags) = fixed.unwrap_or((0, 0));
    while !p.is_empty() {
        if fixed.is_none() {
            // strstr(p, "@"): the flags run up to the next '@' anywhere
            // further on, even past a ';'.
            let Some(at) = p.find('@') else {
                return err(entry, "ACS Flags missing");
            };
            let (mut m, mut fl) = (0u32, 0u32);
            for (shift, c) in p[..at].bytes().rev().enumerate() {
                let bit = 1u32.checked_shl(shift as u32).unwrap_or(0);
                match c {
                    b'0' => m |= bit,
                    b'1' => {
                        m |= bit;
                        fl |= bit;
                    }
                    b'x' | b'X' => {}
                    _ => return err(entry, "Invalid ACS flags... Ignoring"),
                }
            }
            mask = m as u16;
            flags = fl as u16;
            p = &p[at + 1..];
        }
        if mask & !0x7f != 0 {
            return err(entry, "Invalid ACS flags specified");
        }
        match match_entry(dev, p) {
            Err(()) => return err(entry, "PCI: Can't parse ACS command line parameter"),
            Ok((true, _)) => {
                return ParamMatch {
                    matched: Some((entry, mask, flags)),
                    error: None,
                };
            }
            Ok((false, used)) => {
                p = &p[used.min(p.len())..];
                match p.as_bytes().first() {
                    Some(b';' | b',') => p = &p[1..],
                    _ => break, // end of the parameter, or trailing junk
                }
                entry += 1;
            }
        }
    }
    ParamMatch {
        matched: None,
        error: None,
    }
}

/// How the command line leaves one device's ACS Control.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CmdlineEffect {
    /// Entry of disable_acs_redir that names the device.
    pub disable_acs_redir: Option<usize>,
    /// Entry of config_acs that names the device, with (mask, flags).
    pub config_acs: Option<(usize, u16, u16)>,
}

impl CmdlineEffect {
    pub fn touched(&self) -> bool {
        self.disable_acs_redir.is_some() || self.config_acs.is_some()
    }

    /// What `pci_enable_acs()` makes of a firmware value `fw_ctrl`:
    /// disable_acs_redir clears RR, CR and EC; config_acs, applied after,
    /// starts again from the firmware value.
    pub fn apply(&self, fw_ctrl: AcsFlags) -> AcsFlags {
        let mut ctrl = fw_ctrl;
        if self.disable_acs_redir.is_some() {
            ctrl = AcsFlags(fw_ctrl.0 & !AcsFlags::REDIRECTS.0);
        }
        if let Some((_, mask, flags)) = self.config_acs {
            ctrl = AcsFlags((fw_ctrl.0 & !mask) | (flags & mask));
        }
        ctrl
    }

    /// Whether the command line alone decides that RR, CR and EC end up
    /// clear, whatever the firmware set: Some(false) when it does.
    pub fn redirect_without_register(&self) -> Option<bool> {
        match self.config_acs {
            // config_acs comes last and starts from the firmware value.
            Some((_, mask, flags)) => {
                let r = AcsFlags::REDIRECTS.0;
                if flags & mask & r != 0 {
                    None // sets a redirect bit, but only if the port has ACS
                } else if mask & r == r {
                    Some(false)
                } else {
                    None
                }
            }
            None if self.disable_acs_redir.is_some() => Some(false),
            None => None,
        }
    }
}

/// The parameters matched against one device (config_acs only when the
/// kernel understands it).
pub fn effect_on(
    params: &AcsParams,
    dev: &DeviceIdent,
    config_acs_supported: bool,
) -> CmdlineEffect {
    let redir = AcsFlags::REDIRECTS.0;
    let disable = params
        .disable_acs_redir
        .as_deref()
        .and_then(|p| match_param(dev, p, Some((redir, !redir))).matched)
        .map(|(entry, _, _)| entry);
    let config = if config_acs_supported {
        params
            .config_acs
            .as_deref()
            .and_then(|p| match_param(dev, p, None).matched)
    } else {
        None
    };
    CmdlineEffect {
        disable_acs_redir: disable,
        config_acs: config,
    }
}

/// The `;`-separated entries of a parameter (for reports).
pub fn entries(param: &str) -> Vec<&str> {
    param.split(';').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bdf {
        s.parse().unwrap()
    }

    fn dev(chain: &[&str], vendor: u16, device: u16) -> DeviceIdent {
        DeviceIdent {
            chain: chain.iter().map(|s| b(s)).collect(),
            vendor,
            device,
            subsystem: (0x1af4, 0x1100),
        }
    }

    const REDIR: Option<(u16, u16)> = Some((0x2c, !0x2c));

    #[test]
    fn address_forms() {
        let rp = dev(&["0000:00:03.0"], 0x1b36, 0x000c);
        for (param, want) in [
            ("0000:00:03.0", true),
            ("00:03.0", true),
            ("0:0:3.0", true),
            ("0000:00:03.1", false),
            ("0001:00:03.0", false),
            // PCI_DEVFN() masks the slot to 5 bits: 0x23 is slot 3.
            ("0000:00:23.0", true),
            ("0000:00:03.0;0000:00:04.0", true),
            ("0000:00:04.0;0000:00:03.0", true),
        ] {
            let m = match_param(&rp, param, REDIR);
            assert_eq!(m.matched.is_some(), want, "{param}");
            assert_eq!(m.error, None, "{param}");
        }
        assert_eq!(
            match_param(&rp, "0000:00:04.0;0000:00:03.0", REDIR).matched,
            Some((1, 0x2c, !0x2c))
        );
    }

    #[test]
    fn path_form_walks_up_from_the_device() {
        // 0000:02:00.0 below 0000:01:00.0 below 0000:00:01.0
        let d = dev(
            &["0000:02:00.0", "0000:01:00.0", "0000:00:01.0"],
            0x10b5,
            0x8747,
        );
        assert!(
            match_param(&d, "0000:00:01.0/00.0/00.0", REDIR)
                .matched
                .is_some()
        );
        assert!(match_param(&d, "00:01.0/0.0/0.0", REDIR).matched.is_some());
        assert!(
            match_param(&d, "0000:00:01.0/00.0/01.0", REDIR)
                .matched
                .is_none()
        );
        assert!(
            match_param(&d, "0000:00:02.0/00.0/00.0", REDIR)
                .matched
                .is_none()
        );
        // The path form ignores the bus numbers below the top.
        assert!(match_param(&d, "0000:02:00.0", REDIR).matched.is_some());
        // Longer than the chain: no match.
        assert!(
            match_param(&d, "0000:00:00.0/01.0/00.0/00.0", REDIR)
                .matched
                .is_none()
        );
        let bad = match_param(&d, "0000:00:01.0/zz", REDIR);
        assert_eq!(
            bad.error.map(|e| e.kernel_message),
            Some("PCI: Can't parse ACS command line parameter".to_string())
        );
    }

    #[test]
    fn id_form_and_wildcards() {
        let d = dev(&["0000:06:08.0"], 0x10b5, 0x8747);
        assert!(match_param(&d, "pci:10b5:8747", REDIR).matched.is_some());
        assert!(match_param(&d, "pci:10b5:0", REDIR).matched.is_some());
        assert!(match_param(&d, "pci:0:0", REDIR).matched.is_some());
        assert!(match_param(&d, "pci:10b5:8748", REDIR).matched.is_none());
        assert!(
            match_param(&d, "pci:10b5:8747:1af4:1100", REDIR)
                .matched
                .is_some()
        );
        assert!(
            match_param(&d, "pci:10b5:8747:1af4:1101", REDIR)
                .matched
                .is_none()
        );
        assert!(
            match_param(&d, "pci:8086:1;pci:10b5:8747", REDIR)
                .matched
                .is_some()
        );
        assert!(match_param(&d, "pci:zz", REDIR).error.is_some());
    }

    #[test]
    fn a_bad_entry_stops_the_walk() {
        let d = dev(&["0000:00:03.0"], 1, 2);
        let m = match_param(&d, "garbage;0000:00:03.0", REDIR);
        assert!(m.matched.is_none());
        assert_eq!(m.error.unwrap().entry, 0);
        // A bad entry after the match is never reached.
        assert!(
            match_param(&d, "0000:00:03.0;garbage", REDIR)
                .matched
                .is_some()
        );
    }

    #[test]
    fn config_acs_flags_read_right_to_left() {
        let d = dev(&["0000:00:02.0"], 1, 2);
        // "101xxxx": bit 6 DT=1, bit 5 EC=0, bit 4 UF=1, bits 3..0 untouched.
        let m = match_param(&d, "101xxxx@0000:00:02.0", None);
        assert_eq!(m.matched, Some((0, 0x70, 0x50)));
        // Entries carry their own flags.
        let m = match_param(&d, "1@0000:00:01.0;0000100@0000:00:02.0", None);
        assert_eq!(m.matched, Some((1, 0x7f, 0x04)));
        let e = |p: &str| match_param(&d, p, None).error.map(|e| e.kernel_message);
        assert_eq!(e("0000:00:02.0"), Some("ACS Flags missing".into()));
        assert_eq!(
            e("12@0000:00:02.0"),
            Some("Invalid ACS flags... Ignoring".into())
        );
        assert_eq!(
            e("10000000@0000:00:02.0"),
            Some("Invalid ACS flags specified".into())
        );
    }

    #[test]
    fn applying_follows_pci_enable_acs() {
        let fw = AcsFlags(0x1d); // SV RR CR UF
        let disable = CmdlineEffect {
            disable_acs_redir: Some(0),
            config_acs: None,
        };
        assert_eq!(disable.apply(fw), AcsFlags(0x11));
        assert_eq!(disable.redirect_without_register(), Some(false));
        // config_acs starts again from the firmware value.
        let both = CmdlineEffect {
            disable_acs_redir: Some(0),
            config_acs: Some((0, 0x04, 0x04)),
        };
        assert_eq!(both.apply(AcsFlags(0)), AcsFlags(0x04));
        assert_eq!(both.redirect_without_register(), None);
        let clear = CmdlineEffect {
            disable_acs_redir: None,
            config_acs: Some((0, 0x7f, 0x11)),
        };
        assert_eq!(clear.redirect_without_register(), Some(false));
        assert_eq!(CmdlineEffect::default().redirect_without_register(), None);
    }

    #[test]
    fn scan_is_like_vsscanf() {
        assert_eq!(scan("0000:00:03.0", "%x:%x:%x.%x%c").1, 4);
        assert_eq!(scan("00:03.0", "%x:%x:%x.%x%c").1, 2);
        assert_eq!(scan("00:03.0x", "%x:%x.%x%c").1, 4);
        assert_eq!(
            scan("10b5:8747;x", "%hx:%hx%n"),
            (vec![0x10b5, 0x8747, 9], 2, 9)
        );
    }
}

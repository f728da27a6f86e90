//! The noise of a real paste around the command output: shell prompts,
//! `[sudo] password` lines, markdown code fences, CRLF line ends, UTF-16
//! from a Windows editor. Each helper looks at one line; the dispatcher in
//! `mod.rs` keeps the state (which command's output we are in).

/// The text as UTF-8. UTF-16 with a byte-order mark (what PowerShell's
/// `>` and Notepad write) is converted; other invalid UTF-8 is replaced
/// (`U+FFFD`), so a stray byte costs one character, not the file.
/// Valid UTF-8 is taken over without a copy.
pub(crate) fn decode_text(bytes: Vec<u8>) -> String {
    let utf16 = |le: bool, body: &[u8]| {
        let units = body.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    match bytes.get(..2) {
        Some([0xff, 0xfe]) => return utf16(true, &bytes[2..]),
        Some([0xfe, 0xff]) => return utf16(false, &bytes[2..]),
        _ => {}
    }
    // UTF-16 without a mark: ASCII text with every other byte NUL.
    let head = &bytes[..bytes.len().min(64)];
    if head.len() >= 8 && head.iter().skip(1).step_by(2).all(|&b| b == 0) {
        return utf16(true, &bytes);
    }
    let mut bytes = bytes;
    if bytes.starts_with(b"\xef\xbb\xbf") {
        // In place: a 50 MB paste is not copied for three bytes.
        bytes.drain(..3);
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// The lines of the text, numbered from 1, without `\r` at the end.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

/// A markdown code fence (```` ``` ````, ```` ```text ````, `~~~`).
pub(crate) fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// Lines a paste carries that belong to no command's output.
pub(crate) fn is_chatter(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("[sudo] password")
        || t.starts_with("Password:")
        || (t.starts_with("lspci: ") && !t.contains("-[")) // lspci's own warnings
}

/// The command of a shell prompt line, if the line is one:
/// `$ sudo lspci -vvv`, `# lspci -tv`, `root@gpu01:~# lspci`,
/// `[user@host ~]$ uname -r`, `user@host:~$ cat /proc/cmdline`, `> cmd`,
/// `PS C:\> ...`. Only commands we know are taken from a bare `#` or `>`,
/// so a markdown heading or a quote is not mistaken for one.
pub(crate) fn prompt_command(line: &str) -> Option<&str> {
    let t = line.trim_start();
    // `user@host:~$ cmd`, `[user@host dir]# cmd`, `host% cmd`
    for sep in ["$ ", "# ", "% ", "> "] {
        if let Some(at) = t.find(sep) {
            let (before, after) = (&t[..at], t[at + sep.len()..].trim());
            let bare = before.is_empty();
            let bracketed = before.starts_with('[') && before.ends_with(']');
            let prompt_like = !bare
                && before.len() <= 64
                && (bracketed || !before.contains(char::is_whitespace))
                && (before.contains('@') || bracketed);
            if (bare || prompt_like) && !after.is_empty() {
                if bare && sep != "$ " && !known_command(after) {
                    return None;
                }
                return Some(after);
            }
        }
    }
    None
}

/// A command whose output a paste may carry (for the bare `#`/`>` prompts).
fn known_command(cmd: &str) -> bool {
    let first = cmd
        .split_whitespace()
        .find(|w| !matches!(*w, "sudo" | "doas" | "env"))
        .unwrap_or("");
    matches!(
        first.rsplit('/').next().unwrap_or(first),
        "lspci"
            | "uname"
            | "cat"
            | "lscpu"
            | "numactl"
            | "dmesg"
            | "journalctl"
            | "grep"
            | "lstopo"
            | "nvidia-smi"
            | "setpci"
            | "lsblk"
            | "nvme"
            | "ls"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts() {
        assert_eq!(
            prompt_command("$ sudo lspci -vvv -s 01:00.0"),
            Some("sudo lspci -vvv -s 01:00.0")
        );
        assert_eq!(prompt_command("# lspci -tv"), Some("lspci -tv"));
        assert_eq!(prompt_command("root@gpu01:~# uname -r"), Some("uname -r"));
        assert_eq!(
            prompt_command("[user@host ~]$ cat /proc/cmdline"),
            Some("cat /proc/cmdline")
        );
        assert_eq!(prompt_command("# Heading of a ticket"), None);
        assert_eq!(prompt_command("> a quoted reply"), None);
        assert_eq!(prompt_command("\tStatus: Cap+ 66MHz- UDF- FastB2B-"), None);
        assert_eq!(
            prompt_command("00:02.0 PCI bridge: Intel Corporation"),
            None
        );
    }

    #[test]
    fn text_encodings() {
        assert_eq!(decode_text(b"ab\r\n".to_vec()), "ab\r\n");
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(
                "00:00.0 Host\n"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes()),
            )
            .collect();
        assert_eq!(decode_text(utf16), "00:00.0 Host\n");
        assert_eq!(decode_text(vec![b'a', 0xff, b'b']), "a\u{fffd}b");
        let lines: Vec<_> = lines("a\r\nb\n").collect();
        assert_eq!(lines, vec![(1, "a"), (2, "b"), (3, "")]);
    }
}

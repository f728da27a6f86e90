//! What to do about a finding, in a form people can paste: the prose, the
//! kernel parameters it needs, the commands to run now (one per line,
//! placeholders filled where the facts give the value), and how to make
//! the parameters survive a reboot with the boot loader this machine uses.
//!
//! Rules build a [`Fix`] from typed facts; [`persist`] turns its kernel
//! parameters into the boot loader's commands from `scan::boot`'s
//! [`BootFacts`].

use std::fmt;

use serde::Serialize;

use crate::scan::boot::BootFacts;

/// A finding's fix.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Fix {
    /// What to do and why, for people.
    pub text: String,
    /// Kernel parameters to add to the command line.
    pub kernel_params: Vec<KernelParam>,
    /// Commands to run now, each complete (no placeholder, no trailing
    /// punctuation), in order.
    pub commands: Vec<String>,
    /// How to keep `kernel_params` across reboots: the boot loader found,
    /// or every candidate when none was recognised.
    pub persist: Vec<Persist>,
}

/// One kernel parameter: `iommu=pt`, `pci=disable_acs_redir=0000:00:03.0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelParam {
    /// `iommu`, `pci`.
    pub name: String,
    /// `pt`, `disable_acs_redir=0000:00:03.0`; None for a bare flag.
    pub value: Option<String>,
}

impl KernelParam {
    pub fn new(name: &str, value: impl Into<String>) -> KernelParam {
        KernelParam {
            name: name.to_string(),
            value: Some(value.into()),
        }
    }
}

impl fmt::Display for KernelParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The tool that keeps the kernel command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootLoader {
    /// /etc/default/grub, then `update-grub` (Debian, Ubuntu).
    GrubUpdateGrub,
    /// /etc/default/grub, then `grub2-mkconfig` (Fedora, RHEL, SUSE).
    GrubMkconfig,
    /// `grubby` (Fedora, RHEL): every installed kernel's entry.
    Grubby,
    /// `kernelstub` (Pop!_OS).
    Kernelstub,
    /// /etc/kernel/cmdline, then `kernel-install` (systemd).
    KernelInstall,
    /// The `options` lines of systemd-boot's loader entries.
    SystemdBoot,
}

/// How to make the parameters persistent with one boot loader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persist {
    pub boot_loader: BootLoader,
    /// True when this machine's files show this boot loader; false for the
    /// candidates listed because none was recognised.
    pub detected: bool,
    /// What it is, and what showed it: `GRUB (/etc/default/grub, update-grub)`.
    pub label: String,
    /// The commands, in order; the parameters apply from the next boot.
    pub commands: Vec<String>,
}

impl Fix {
    pub fn new(text: impl Into<String>) -> Fix {
        Fix {
            text: text.into(),
            ..Default::default()
        }
    }

    pub fn param(mut self, p: KernelParam) -> Fix {
        if !self.kernel_params.contains(&p) {
            self.kernel_params.push(p);
        }
        self
    }

    pub fn command(mut self, c: impl Into<String>) -> Fix {
        self.commands.push(c.into());
        self
    }

    pub fn commands(mut self, cs: impl IntoIterator<Item = String>) -> Fix {
        self.commands.extend(cs);
        self
    }

    /// The kernel parameters as one command-line fragment.
    pub fn params_line(&self) -> String {
        self.kernel_params
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl From<String> for Fix {
    fn from(text: String) -> Fix {
        Fix::new(text)
    }
}

impl From<&str> for Fix {
    fn from(text: &str) -> Fix {
        Fix::new(text)
    }
}

/// Everything in one line of prose (JUnit messages, tests, the lab): the
/// text, then the parameters and commands.
impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if !self.kernel_params.is_empty() {
            write!(f, " [kernel parameters: {}]", self.params_line())?;
        }
        for c in &self.commands {
            write!(f, " [run: {c}]")?;
        }
        Ok(())
    }
}

/// The boot loaders this machine's files show, most specific first; None
/// when none is recognised.
pub fn detect(b: &BootFacts) -> Vec<BootLoader> {
    let mut out = Vec::new();
    // kernelstub and grubby manage the entries the others would be edited
    // in: when they are there, they are the tool to use.
    if b.kernelstub {
        out.push(BootLoader::Kernelstub);
    } else if b.grubby {
        out.push(BootLoader::Grubby);
    } else if b.kernel_cmdline.is_some() {
        out.push(BootLoader::KernelInstall);
    } else if b.grub_default {
        out.push(if b.update_grub || !b.grub2_mkconfig {
            BootLoader::GrubUpdateGrub
        } else {
            BootLoader::GrubMkconfig
        });
    } else if b.loader_entries.is_some() {
        out.push(BootLoader::SystemdBoot);
    }
    out
}

/// A sed `s` delimiter that does not occur in `s`.
fn delimiter(s: &str) -> char {
    ['|', '#', '%', ',', '@', '+']
        .into_iter()
        .find(|c| !s.contains(*c))
        .unwrap_or('\u{1}')
}

/// `s` for a sed replacement in single quotes: `\` and `&` escaped.
fn sed_replacement(s: &str) -> String {
    s.replace('\\', "\\\\").replace('&', "\\&")
}

/// The commands that add `params` to the command line with `loader`.
fn commands_for(loader: BootLoader, params: &str, b: &BootFacts) -> (String, Vec<String>) {
    let grub_line = || {
        // GRUB's script language reads `;` as the end of a command: in
        // grub.cfg the kernel sees it only escaped (`\;`).
        let grub_params = sed_replacement(&params.replace(';', "\\;"));
        let d = delimiter(&grub_params);
        format!(
            "sudo sed -i 's{d}^GRUB_CMDLINE_LINUX_DEFAULT=\"\\(.*\\)\"{d}GRUB_CMDLINE_LINUX_DEFAULT=\"\\1 {grub_params}\"{d}' /etc/default/grub"
        )
    };
    match loader {
        BootLoader::GrubUpdateGrub => (
            "GRUB (/etc/default/grub, update-grub)".into(),
            vec![grub_line(), "sudo update-grub".into()],
        ),
        BootLoader::GrubMkconfig => {
            let cfg = b.grub_cfg.as_deref().unwrap_or("boot/grub2/grub.cfg");
            (
                "GRUB (/etc/default/grub, grub2-mkconfig)".into(),
                vec![grub_line(), format!("sudo grub2-mkconfig -o /{cfg}")],
            )
        }
        BootLoader::Grubby => (
            "grubby (every installed kernel)".into(),
            vec![format!(
                "sudo grubby --update-kernel=ALL --args=\"{params}\""
            )],
        ),
        BootLoader::Kernelstub => (
            "kernelstub (Pop!_OS)".into(),
            vec![format!("sudo kernelstub -a \"{params}\"")],
        ),
        BootLoader::KernelInstall => {
            let p = sed_replacement(params);
            let d = delimiter(&p);
            (
                "kernel-install (/etc/kernel/cmdline)".into(),
                vec![
                    format!("sudo sed -i '$ s{d}${d} {p}{d}' /etc/kernel/cmdline"),
                    "sudo kernel-install add \"$(uname -r)\" \"/usr/lib/modules/$(uname -r)/vmlinuz\""
                        .into(),
                ],
            )
        }
        BootLoader::SystemdBoot => {
            let dir = b.loader_entries.as_deref().unwrap_or("boot/loader/entries");
            let p = sed_replacement(params);
            let d = delimiter(&p);
            (
                format!("systemd-boot (/{dir})"),
                vec![format!(
                    "sudo sed -i '/^options / s{d}${d} {p}{d}' /{dir}/*.conf"
                )],
            )
        }
    }
}

/// How to make `fix`'s kernel parameters persistent on this machine: the
/// detected boot loader, or every candidate (labelled, `detected: false`)
/// when the files show none.
pub fn persist(fix: &Fix, boot: &BootFacts) -> Vec<Persist> {
    if fix.kernel_params.is_empty() {
        return Vec::new();
    }
    let params = fix.params_line();
    let found = detect(boot);
    let (loaders, detected) = if found.is_empty() {
        (
            vec![
                BootLoader::GrubUpdateGrub,
                BootLoader::GrubMkconfig,
                BootLoader::Grubby,
                BootLoader::Kernelstub,
                BootLoader::KernelInstall,
            ],
            false,
        )
    } else {
        (found, true)
    };
    loaders
        .into_iter()
        .map(|l| {
            let (label, commands) = commands_for(l, &params, boot);
            Persist {
                boot_loader: l,
                detected,
                label,
                commands,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acs_fix() -> Fix {
        Fix::new("Add the kernel parameter").param(KernelParam::new(
            "pci",
            "disable_acs_redir=0000:00:03.0;0000:00:04.0",
        ))
    }

    #[test]
    fn debian_grub_escapes_the_semicolon_for_grub_cfg() {
        let b = BootFacts {
            grub_default: true,
            update_grub: true,
            ..Default::default()
        };
        let p = persist(&acs_fix(), &b);
        assert_eq!(p.len(), 1);
        assert!(p[0].detected);
        assert_eq!(p[0].boot_loader, BootLoader::GrubUpdateGrub);
        assert_eq!(
            p[0].commands,
            [
                r#"sudo sed -i 's|^GRUB_CMDLINE_LINUX_DEFAULT="\(.*\)"|GRUB_CMDLINE_LINUX_DEFAULT="\1 pci=disable_acs_redir=0000:00:03.0\\;0000:00:04.0"|' /etc/default/grub"#,
                "sudo update-grub"
            ]
        );
    }

    #[test]
    fn grubby_wins_over_grub_files() {
        let b = BootFacts {
            grub_default: true,
            grub2_mkconfig: true,
            grubby: true,
            ..Default::default()
        };
        let p = persist(&Fix::new("x").param(KernelParam::new("iommu", "pt")), &b);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].commands,
            ["sudo grubby --update-kernel=ALL --args=\"iommu=pt\""]
        );
    }

    #[test]
    fn unknown_lists_every_candidate_undetected() {
        let p = persist(&acs_fix(), &BootFacts::default());
        assert!(p.len() >= 4);
        assert!(p.iter().all(|x| !x.detected && !x.commands.is_empty()));
        assert!(persist(&Fix::new("no params"), &BootFacts::default()).is_empty());
    }

    #[test]
    fn kernel_install_and_systemd_boot_append_to_the_line() {
        let b = BootFacts {
            kernel_cmdline: Some("root=/dev/sda1 ro".into()),
            ..Default::default()
        };
        let p = persist(&Fix::new("x").param(KernelParam::new("iommu", "pt")), &b);
        assert_eq!(
            p[0].commands[0],
            "sudo sed -i '$ s|$| iommu=pt|' /etc/kernel/cmdline"
        );
        let b = BootFacts {
            loader_entries: Some("efi/loader/entries".into()),
            ..Default::default()
        };
        let p = persist(&Fix::new("x").param(KernelParam::new("iommu", "pt")), &b);
        assert_eq!(
            p[0].commands,
            ["sudo sed -i '/^options / s|$| iommu=pt|' /efi/loader/entries/*.conf"]
        );
    }
}

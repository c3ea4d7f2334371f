//! `flumen install-links DIR`: creates the tool-name links (`kafka-topics.sh` → flumen, …),
//! so that tutorials' commands run Flumen as typed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Arguments of `flumen install-links`.
#[derive(clap::Args, Debug)]
pub struct InstallLinksArgs {
    /// The folder to put the links in (created if missing), e.g. ~/.local/bin.
    pub dir: PathBuf,
    /// Replace links or files that already have those names.
    #[arg(long)]
    pub force: bool,
}

/// Runs the subcommand: one symbolic link per name in the alias table, pointing at this
/// binary.
pub fn run(args: InstallLinksArgs) -> anyhow::Result<()> {
    let target = std::env::current_exe().context("cannot find the flumen binary's own path")?;
    let target = target.canonicalize().unwrap_or(target);
    let made = install(&args.dir, &target, args.force)?;
    for name in &made {
        println!("{}", args.dir.join(name).display());
    }
    eprintln!(
        "Linked {} tool names to {} in {}",
        made.len(),
        target.display(),
        args.dir.display()
    );
    Ok(())
}

/// Creates the links in `dir` pointing at `target`; returns the names linked.
pub fn install(dir: &Path, target: &Path, force: bool) -> anyhow::Result<Vec<&'static str>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut made = Vec::new();
    for name in crate::alias::tool_names() {
        let link = dir.join(name);
        if link.symlink_metadata().is_ok() {
            let same = std::fs::read_link(&link).is_ok_and(|t| t == target);
            if same {
                made.push(name);
                continue;
            }
            if !force {
                anyhow::bail!(
                    "{} already exists and is not a link to {} (use --force to replace it)",
                    link.display(),
                    target.display()
                );
            }
            std::fs::remove_file(&link)
                .with_context(|| format!("cannot replace {}", link.display()))?;
        }
        symlink(target, &link)
            .with_context(|| format!("cannot create the link {}", link.display()))?;
        made.push(name);
    }
    Ok(made)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::fs::copy(target, link).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_every_tool_name_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("flumen");
        std::fs::write(&target, b"").unwrap();
        let bin = dir.path().join("bin");
        let made = install(&bin, &target, false).unwrap();
        assert!(made.contains(&"kafka-topics.sh"));
        assert_eq!(
            std::fs::read_link(bin.join("kafka-console-consumer")).unwrap(),
            target
        );
        assert_eq!(install(&bin, &target, false).unwrap().len(), made.len());
        std::fs::remove_file(bin.join("flume-ng")).unwrap();
        std::fs::write(bin.join("flume-ng"), b"other").unwrap();
        assert!(install(&bin, &target, false).is_err());
        assert!(install(&bin, &target, true).is_ok());
    }
}

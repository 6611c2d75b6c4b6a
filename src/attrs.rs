//! Attribute subcommands: `chmod`, `chown`, `touch`, `truncate`, `ln`, `xattr`, thin adapters
//! over `cairn_client::AsyncClient` like the rest of the CLI.

use crate::commands::{show, UsageError};
use anyhow::Result;
use cairn_client::{AsyncClient, Backend, ClientError};
use cairn_core::wire::{ClientCommand, Content, NewAttrs, SetAttrs, XattrMode};
use cairn_core::{ErrorCode, FsPath};
use clap::Subcommand;
use std::io::Write;

/// The attribute subcommands (top-level: `cairn chmod ...`).
#[derive(Subcommand)]
pub enum AttrCmd {
    /// Set permission bits, e.g. `cairn chmod 640 /f`.
    Chmod {
        /// Octal mode.
        mode: String,
        /// Path in cairn.
        path: String,
    },
    /// Set the owner, e.g. `cairn chown 1000:100 /f` (or `1000`, or `:100`).
    Chown {
        /// UID[:GID] (numeric).
        owner: String,
        /// Path in cairn.
        path: String,
    },
    /// Create an empty file if missing; set its access and modification times.
    Touch {
        /// Path in cairn.
        path: String,
        /// Time to set, seconds since the epoch (default: now).
        #[arg(long)]
        time: Option<i64>,
    },
    /// Cut a file to a size or extend it with zeros, e.g. `cairn truncate -s 1GiB /f`.
    Truncate {
        /// New size (bytes, or with a unit: 4KiB, 1GiB).
        #[arg(short, long, value_parser = crate::bench::parse_size)]
        size: u64,
        /// Path in cairn.
        path: String,
    },
    /// Make a hard link `link` to `target` (a symbolic link with -s).
    Ln {
        /// Make a symbolic link instead.
        #[arg(short, long)]
        symbolic: bool,
        /// The existing file (or, with -s, the link's text).
        target: String,
        /// The new name.
        link: String,
    },
    /// Extended attributes.
    Xattr {
        #[command(subcommand)]
        cmd: XattrCmd,
    },
}

/// `cairn xattr ...`.
#[derive(Subcommand)]
pub enum XattrCmd {
    /// Print one attribute's value.
    Get {
        /// Path in cairn.
        path: String,
        /// Attribute name, e.g. user.origin.
        name: String,
    },
    /// Set an attribute.
    Set {
        /// Path in cairn.
        path: String,
        /// Attribute name.
        name: String,
        /// Value (text).
        value: String,
    },
    /// Remove an attribute.
    Rm {
        /// Path in cairn.
        path: String,
        /// Attribute name.
        name: String,
    },
    /// List attribute names.
    Ls {
        /// Path in cairn.
        path: String,
    },
}

fn parse_id(s: &str) -> Result<u32> {
    Ok(s.parse().map_err(|_| UsageError(format!("{s:?} is not a numeric id")))?)
}

/// The current time in nanoseconds since the epoch.
fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Runs an attribute subcommand.
pub async fn run(c: &AsyncClient, json: bool, cmd: AttrCmd) -> Result<()> {
    match cmd {
        AttrCmd::Chmod { mode, path } => {
            let mode = u32::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| UsageError(format!("{mode:?} is not an octal mode")))?;
            show(&c.set_attr(&path, SetAttrs { mode: Some(mode), ..SetAttrs::default() }).await?, &path, json)
        }
        AttrCmd::Chown { owner, path } => {
            let (u, g) = owner.split_once(':').unwrap_or((&owner, ""));
            let uid = (!u.is_empty()).then(|| parse_id(u)).transpose()?;
            let gid = (!g.is_empty()).then(|| parse_id(g)).transpose()?;
            if uid.is_none() && gid.is_none() {
                return Err(UsageError("chown needs UID, UID:GID or :GID".into()).into());
            }
            show(&c.set_attr(&path, SetAttrs { uid, gid, ..SetAttrs::default() }).await?, &path, json)
        }
        AttrCmd::Touch { path, time } => {
            let at = cairn_core::wire::Target::Path(FsPath::parse(&path).map_err(|e| ClientError::Api(e.into()))?);
            let create = ClientCommand::Commit {
                at,
                base_version: Some(0),
                content: Content::None,
                size: 0,
                parents: false,
                attrs: NewAttrs::file(),
            };
            match c.backend().write(create).await {
                Err(e) if e.code() == ErrorCode::Exists => {}
                other => drop(other?),
            }
            let t = match time {
                Some(s) => s.checked_mul(1_000_000_000).ok_or_else(|| UsageError("time out of range".into()))?,
                None => now_ns(),
            };
            show(
                &c.set_attr(&path, SetAttrs { atime: Some(t), mtime: Some(t), ..SetAttrs::default() }).await?,
                &path,
                json,
            )
        }
        AttrCmd::Truncate { size, path } => show(&c.truncate(&path, size).await?, &path, json),
        AttrCmd::Ln { symbolic: true, target, link } => show(&c.symlink(&link, &target).await?, &link, json),
        AttrCmd::Ln { symbolic: false, target, link } => show(&c.link(&target, &link).await?, &link, json),
        AttrCmd::Xattr { cmd } => xattr(c, json, cmd).await,
    }
}

async fn xattr(c: &AsyncClient, json: bool, cmd: XattrCmd) -> Result<()> {
    match cmd {
        XattrCmd::Get { path, name } => {
            let v = c.get_xattr(&path, &name).await?;
            if json {
                println!("{}", serde_json::json!({ "name": name, "value": String::from_utf8_lossy(&v) }));
            } else {
                let mut out = std::io::stdout();
                out.write_all(&v)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        XattrCmd::Set { path, name, value } => {
            show(&c.set_xattr(&path, &name, value.as_bytes(), XattrMode::Any).await?, &path, json)
        }
        XattrCmd::Rm { path, name } => show(&c.remove_xattr(&path, &name).await?, &path, json),
        XattrCmd::Ls { path } => {
            let names = c.list_xattrs(&path).await?;
            if json {
                println!("{}", serde_json::json!(names));
            } else {
                for n in names {
                    println!("{n}");
                }
            }
            Ok(())
        }
    }
}

//! `cairn key ...`: access keys (admin keys only).

use anyhow::Result;
use cairn_client::AsyncClient;
use clap::Subcommand;
use serde_json::json;

/// `cairn key ...`.
#[derive(Subcommand)]
pub enum KeyCmd {
    /// Make a key and print its id and secret (the only time the secret is shown).
    Create {
        /// The key's name.
        name: String,
        /// It may read files and list directories.
        #[arg(long)]
        read: bool,
        /// It may create, change and remove files and directories.
        #[arg(long)]
        write: bool,
        /// It may do anything, the operator API included.
        #[arg(long)]
        admin: bool,
        /// Limit it to this path and below (repeatable).
        #[arg(long = "prefix", value_name = "PATH")]
        prefixes: Vec<String>,
    },
    /// List the keys (names, ids, rights; never secrets).
    List,
    /// Remove a key; every node refuses it from then on.
    Delete {
        /// The key's name.
        name: String,
    },
}

/// Runs a `cairn key` command.
pub async fn run(c: &AsyncClient, cmd: KeyCmd, json: bool) -> Result<()> {
    match cmd {
        KeyCmd::Create { name, read, write, admin, prefixes } => {
            let spec = json!({ "name": name, "read": read, "write": write, "admin": admin, "prefixes": prefixes });
            let v = c.create_key(&spec).await?;
            let (id, secret) = (&v["access_key_id"], &v["secret_access_key"]);
            if json {
                println!("{}", json!({ "access_key_id": id, "secret_access_key": secret }));
            } else {
                println!("{}:{}", id.as_str().unwrap_or_default(), secret.as_str().unwrap_or_default());
            }
        }
        KeyCmd::List => {
            let v = c.keys().await?;
            if json {
                println!("{v}");
            } else {
                for k in v["keys"].as_array().into_iter().flatten() {
                    let rights: Vec<&str> = ["read", "write", "admin"].into_iter().filter(|r| k[*r] == true).collect();
                    let prefixes: Vec<&str> =
                        k["prefixes"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
                    let scope = if prefixes.is_empty() { "/".to_string() } else { prefixes.join(",") };
                    let name = k["name"].as_str().unwrap_or_default();
                    let id = k["access_key_id"].as_str().unwrap_or_default();
                    println!("{name:<20} {id}  {:<16} {scope}", rights.join(","));
                }
            }
        }
        KeyCmd::Delete { name } => c.delete_key(&name).await?,
    }
    Ok(())
}

//! `cairn code run PLAN.json`: send a coding plan to a node, which checks it before any byte
//! moves and runs it; print the chunks it wrote and save its result streams.

use anyhow::{Context, Result};
use base64::Engine;
use cairn_client::AsyncClient;
use clap::Subcommand;
use std::path::PathBuf;

/// What `cairn code` does.
#[derive(Subcommand)]
pub enum CodeCmd {
    /// Check and run a plan (JSON, format in docs/formats.md).
    Run {
        /// The plan file (`-` for stdin).
        plan: PathBuf,
        /// Save each result stream (an OUTPUT no program pulls) as DIR/PROGRAM.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs `cairn code ...`.
pub async fn run(c: &AsyncClient, cmd: CodeCmd, json: bool) -> Result<()> {
    let CodeCmd::Run { plan, out } = cmd;
    let text = if plan.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading the plan from stdin")?;
        buf
    } else {
        std::fs::read(&plan).with_context(|| format!("reading {}", plan.display()))?
    };
    let v = c.run_plan(text).await?;
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, r) in v["results"].as_object().into_iter().flatten() {
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["base64"].as_str().unwrap_or(""))
                .context("the node sent a result that is not base64")?;
            let path = dir.join(name);
            std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if json {
        println!("{v}");
        return Ok(());
    }
    for w in v["written"].as_array().into_iter().flatten() {
        println!(
            "wrote chunk {} ({} bytes) on node {} (program {})",
            w["chunk"].as_str().unwrap_or(""),
            w["length"],
            w["node"].as_str().unwrap_or(""),
            w["program"].as_str().unwrap_or("")
        );
    }
    for (name, r) in v["results"].as_object().into_iter().flatten() {
        let saved = out.as_ref().map(|d| format!(", saved as {}", d.join(name).display())).unwrap_or_default();
        println!("result of {name}: {} bytes, blake3 {}{saved}", r["length"], r["blake3"].as_str().unwrap_or(""));
    }
    Ok(())
}

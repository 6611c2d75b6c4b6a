//! `cairn log PATH`: a file's versions.

use anyhow::Result;
use cairn_client::AsyncClient;
use serde_json::json;

/// Prints a file's versions, newest first.
pub async fn log(c: &AsyncClient, path: &str, json: bool) -> Result<()> {
    let versions = c.versions(path).await?;
    if json {
        let list: Vec<_> = versions
            .iter()
            .map(|v| json!({ "version": v.version, "size": v.size, "mtime_ns": v.mtime, "deleted": v.deleted, "current": v.current }))
            .collect();
        println!("{}", json!({ "path": path, "versions": list }));
        return Ok(());
    }
    for v in versions {
        let when = humantime::format_rfc3339_seconds(cairn_client::json::time(v.mtime));
        let what = match (v.current, v.deleted) {
            (true, _) => "current",
            (_, true) => "deleted",
            _ => "",
        };
        println!("{:>8} {:>14} {when}  {what}", v.version, v.size);
    }
    Ok(())
}

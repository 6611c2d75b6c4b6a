//! `cairn bucket`: settings of S3 buckets (top-level directories).

use anyhow::bail;
use cairn_client::AsyncClient;
use cairn_core::wire::XattrMode;
use clap::Subcommand;

/// What `cairn bucket` does.
#[derive(Subcommand)]
pub enum BucketCmd {
    /// Let anyone read BUCKET over S3 without a signature (GET, HEAD, listing).
    Public {
        /// The bucket.
        bucket: String,
    },
    /// Require a signature again for every request on BUCKET.
    Private {
        /// The bucket.
        bucket: String,
    },
}

/// Runs `cairn bucket ...`.
pub async fn run(c: &AsyncClient, cmd: BucketCmd) -> anyhow::Result<()> {
    let (bucket, public) = match cmd {
        BucketCmd::Public { bucket } => (bucket, true),
        BucketCmd::Private { bucket } => (bucket, false),
    };
    if bucket.contains('/') || bucket.is_empty() {
        bail!(crate::commands::UsageError(format!("{bucket:?} is not a bucket name")));
    }
    let path = format!("/{bucket}");
    if c.stat(&path).await?.kind != cairn_core::wire::InodeKind::Dir {
        bail!(crate::commands::UsageError(format!("{path} is not a directory")));
    }
    if public {
        c.set_xattr(&path, cairn_s3::PUBLIC_XATTR, b"read", XattrMode::Any).await?;
        println!("bucket {bucket}: public-read");
    } else {
        match c.remove_xattr(&path, cairn_s3::PUBLIC_XATTR).await {
            Ok(_) => {}
            Err(e) if e.code() == cairn_core::ErrorCode::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        println!("bucket {bucket}: private");
    }
    Ok(())
}

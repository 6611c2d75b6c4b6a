//! A node's identity on disk: `<data>/node.json` (format 4), written atomically.
//!
//! The format number also stands for the whole data dir: a dir written by another format
//! (format 1: metadata v1; format 2: log commands before the client/cluster split; format 3:
//! one URL per member, before the peer door) is refused with a clear message, never misread.

use crate::NodeError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The data dir format this code writes and reads (3: metadata v2, inode-addressed, extents;
/// Raft log commands split into client and cluster commands; 4: members have a client and a
/// peer URL).
pub(crate) const DATA_FORMAT: u32 = 4;

/// Who this node is and which cluster it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Identity {
    /// Format version of this file.
    pub format: u32,
    /// This node's id, unique in its cluster.
    pub node_id: u64,
    /// The cluster's id, chosen at its first start (adopted from the cluster when joining).
    pub cluster_id: String,
    /// The shared cluster secret a joining node must present.
    #[serde(default)]
    pub secret: String,
    /// Set once this node has Raft state (it founded its cluster or was admitted to one):
    /// from then on, empty metadata means it was lost, and the node refuses to start.
    #[serde(default)]
    pub member: bool,
}

/// A fresh random secret (128 bits, hex).
pub(crate) fn new_secret() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Writes `bytes` to `path` atomically with permissions `mode`: temp file, fsync, rename,
/// directory fsync.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

impl Identity {
    /// Saves the identity to `<data>/node.json`.
    pub fn save(&self, data: &Path) -> Result<(), NodeError> {
        let json = serde_json::to_vec_pretty(self).expect("identity serializes");
        write_atomic(&data.join("node.json"), &json, 0o600).map_err(|e| NodeError::DataDir {
            path: data.display().to_string(),
            why: format!("cannot write node.json: {e}"),
        })
    }

    /// Loads the identity, or creates and saves a new one (with node id `recover` if given:
    /// a node whose disk was replaced takes its old id back).
    pub fn load_or_create(data: &Path, recover: Option<u64>) -> Result<Identity, NodeError> {
        let dir_err = |why: String| NodeError::DataDir { path: data.display().to_string(), why };
        match std::fs::read(data.join("node.json")) {
            Ok(bytes) => {
                let mut id: Identity =
                    serde_json::from_slice(&bytes).map_err(|e| dir_err(format!("node.json unreadable: {e}")))?;
                if recover.is_some_and(|r| r != id.node_id) {
                    return Err(dir_err(format!(
                        "--recover given, but this data dir already belongs to node {}",
                        id.node_id
                    )));
                }
                if id.format != DATA_FORMAT {
                    return Err(dir_err(format!(
                        "this data dir was written by data format {} and this cairn uses format {DATA_FORMAT}; \
                         pre-release formats have no upgrade path: start on an empty data dir",
                        id.format
                    )));
                }
                if id.secret.is_empty() {
                    id.secret = new_secret();
                    id.save(data)?;
                }
                Ok(id)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Identity {
                    format: DATA_FORMAT,
                    node_id: recover.unwrap_or_else(|| rand::random::<u64>() >> 1 | 1),
                    cluster_id: format!("{:032x}", rand::random::<u128>()),
                    secret: new_secret(),
                    member: false,
                };
                id.save(data)?;
                Ok(id)
            }
            Err(e) => Err(dir_err(format!("cannot read node.json: {e}"))),
        }
    }
}

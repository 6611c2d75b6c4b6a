//! The node's typed configuration, with defaults and validation.
//!
//! Sources, lowest priority first: built-in defaults, a TOML file, `CAIRN_*` environment
//! variables, command-line flags (the binary merges them into one [`NodeConfig`]).

use crate::NodeError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a node needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Data directory: metadata database, chunks, node identity.
    pub data: PathBuf,
    /// Address to listen on for clients (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// The host name or IP other nodes and clients reach this node at, in the URLs it
    /// announces. Default: the address it listens on, or, listening on every interface
    /// (`0.0.0.0`, `::`), the address its default route leaves from.
    pub advertise: Option<String>,
    /// Address to listen on for the other nodes (Raft, chunk transfer between nodes). Default:
    /// the client address with its port + 100 (a free port when the client port is 0).
    pub peer_listen: Option<String>,
    /// Address to serve S3 on (`off`: no S3). Default: port 9000 on the client address's IP,
    /// or a free port when the client port is 0.
    pub s3_listen: Option<String>,
    /// S3 multipart uploads neither completed nor aborted within this are removed.
    #[serde(with = "human")]
    pub s3_upload_expiry: Duration,
    /// How long an unreferenced chunk is kept before the garbage collector deletes it.
    /// Must exceed the longest write (first chunk stored -> commit); see `docs/formats.md`.
    #[serde(with = "human")]
    pub gc_grace: Duration,
    /// How often the garbage collector runs.
    #[serde(with = "human")]
    pub gc_interval: Duration,
    /// Take a metadata snapshot (and let older Raft log entries be purged) every this many
    /// log entries.
    pub snapshot_every: u64,
    /// URL of any member of a cluster to join at first start (none: start a new cluster).
    pub join: Option<String>,
    /// This node's zone (failure domain): copies of a chunk go to distinct zones first.
    pub zone: String,
    /// Bytes this node may hold (default: the size of its disk). Set it when several nodes
    /// share one disk.
    pub capacity: Option<u64>,
    /// Bytes per second this node sends to the other nodes as chunk, shard and stream data
    /// (0: unlimited): a link of that speed, for tests and benchmarks of bandwidth-bound
    /// work, or to keep a node's traffic off a shared network.
    pub peer_rate: u64,
    /// The cluster secret to present when joining.
    pub secret: Option<String>,
    /// How long a node may be down before its chunks are copied elsewhere.
    #[serde(with = "human")]
    pub repair_delay: Duration,
    /// How often the repair and rebalance workers look for work.
    #[serde(with = "human")]
    pub repair_interval: Duration,
    /// How often the archive worker applies directories' archive rules.
    #[serde(with = "human")]
    pub archive_interval: Duration,
    /// How often the scrub worker re-reads every local chunk.
    #[serde(with = "human")]
    pub scrub_interval: Duration,
    /// The client door's TLS certificate chain (PEM), with `tls_key`. Without them, a node
    /// whose client address is not loopback (or with `tls`) serves TLS with a certificate
    /// from the cluster CA.
    pub tls_cert: Option<PathBuf>,
    /// The key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// Serve the client door over TLS even on loopback.
    pub tls: bool,
    /// An upload whose body stops flowing for this long is cut off.
    #[serde(with = "human")]
    pub body_timeout: Duration,
    /// Rebalancing stops once every node's fill is within this many percentage points of
    /// the mean.
    pub rebalance_band: f64,
    /// Repair and rebalance never fill a node past this percentage.
    pub fill_limit: f64,
    /// How a chunk's copies reach their nodes: `fanout` (the receiving node sends every copy)
    /// or `chain` (each node stores its copy and passes the chunk on to the next).
    pub replication: Replication,
    /// Start as the node with this id whose disk was replaced: join the cluster (with
    /// `join`) under the old id, and get its chunks back from the other nodes.
    pub recover: Option<u64>,
    /// Found a new one-voter cluster even though this data dir belonged to a node whose
    /// metadata is now missing or empty (its chunks then count as garbage).
    #[serde(default)]
    pub force_new_cluster: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data: PathBuf::from("./cairn-data"),
            listen: "127.0.0.1:7070".into(),
            peer_listen: None,
            s3_listen: None,
            s3_upload_expiry: Duration::from_secs(24 * 3600),
            advertise: None,
            gc_grace: Duration::from_secs(3600),
            gc_interval: Duration::from_secs(60),
            snapshot_every: 5000,
            join: None,
            zone: "default".into(),
            capacity: None,
            peer_rate: 0,
            secret: None,
            repair_delay: Duration::from_secs(600),
            repair_interval: Duration::from_secs(5),
            scrub_interval: Duration::from_secs(24 * 3600),
            archive_interval: Duration::from_secs(600),
            body_timeout: Duration::from_secs(60),
            tls_cert: None,
            tls_key: None,
            tls: false,
            rebalance_band: 5.0,
            fill_limit: 95.0,
            recover: None,
            force_new_cluster: false,
            replication: Replication::Chain,
        }
    }
}

/// How a chunk's copies reach their nodes (see `docs/benchmarks.md` for the measurement
/// that picked the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Replication {
    /// The node the client uploads to sends every other copy itself, in parallel.
    Fanout,
    /// Node to node: each stores its copy while passing the chunk on to the next (measured
    /// faster: the sending is spread over the nodes).
    #[default]
    Chain,
}

impl std::str::FromStr for Replication {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fanout" => Ok(Replication::Fanout),
            "chain" => Ok(Replication::Chain),
            _ => Err(format!("replication must be fanout or chain, not {s:?}")),
        }
    }
}

impl NodeConfig {
    /// Checks the values, so a bad config fails at start with a clear message.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |m: String| Err(NodeError::Config(m));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(format!("listen address {:?} is not IP:PORT", self.listen));
        }
        self.peer_addr()?;
        self.s3_addr()?;
        if let Some(host) = &self.advertise {
            let valid = !host.is_empty()
                && host.len() <= 253
                && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
            if !valid {
                return bad(format!("advertise {host:?} is not a host name or IP address"));
            }
        }
        if self.data.as_os_str().is_empty() {
            return bad("data directory must not be empty".into());
        }
        if self.gc_grace < Duration::from_secs(1) {
            return bad("gc_grace must be at least 1s".into());
        }
        if self.gc_interval < Duration::from_millis(100) {
            return bad("gc_interval must be at least 100ms".into());
        }
        if self.join.is_some() && self.secret.as_deref().unwrap_or("").is_empty() {
            return bad("joining a cluster needs its secret (--secret or CAIRN_SECRET; `cairn status --secret` on a member shows it)".into());
        }
        if self.zone.is_empty() || self.zone.len() > 64 {
            return bad("zone must be 1 to 64 bytes".into());
        }
        if self.capacity == Some(0) {
            return bad("capacity must be positive".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key go together".into());
        }
        if self.s3_upload_expiry < Duration::from_secs(1) {
            return bad("s3_upload_expiry must be at least 1s".into());
        }
        if self.body_timeout < Duration::from_millis(100) {
            return bad("body_timeout must be at least 100ms".into());
        }
        if self.repair_interval < Duration::from_millis(100) || self.scrub_interval < Duration::from_millis(100) {
            return bad("repair_interval and scrub_interval must be at least 100ms".into());
        }
        if !(0.0..=100.0).contains(&self.rebalance_band) || !(1.0..=100.0).contains(&self.fill_limit) {
            return bad("rebalance_band must be 0..=100 and fill_limit 1..=100 (percent)".into());
        }
        if self.recover.is_some() && self.join.is_none() {
            return bad("--recover needs --join: the node gets its id's chunks back from a cluster".into());
        }
        if self.snapshot_every < 10 {
            return bad("snapshot_every must be at least 10".into());
        }
        Ok(())
    }
}

/// The S3 port when the client port is not 0 and `s3_listen` is not set.
pub const S3_DEFAULT_PORT: u16 = 9000;

impl NodeConfig {
    /// The address S3 is served on (`None`: `s3_listen = "off"`).
    pub fn s3_addr(&self) -> Result<Option<SocketAddr>, NodeError> {
        match self.s3_listen.as_deref() {
            Some("off") => Ok(None),
            Some(a) => a
                .parse()
                .map(Some)
                .map_err(|_| NodeError::Config(format!("S3 listen address {a:?} is not IP:PORT or off"))),
            None => {
                let mut addr: SocketAddr = self
                    .listen
                    .parse()
                    .map_err(|_| NodeError::Config(format!("listen address {:?} is not IP:PORT", self.listen)))?;
                if addr.port() != 0 {
                    addr.set_port(S3_DEFAULT_PORT);
                }
                Ok(Some(addr))
            }
        }
    }

    /// The address the peer door listens on: `peer_listen`, else the client address with its
    /// port + 100 (port 0 stays 0: a free port).
    pub fn peer_addr(&self) -> Result<SocketAddr, NodeError> {
        if let Some(p) = &self.peer_listen {
            return p.parse().map_err(|_| NodeError::Config(format!("peer listen address {p:?} is not IP:PORT")));
        }
        let mut addr: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| NodeError::Config(format!("listen address {:?} is not IP:PORT", self.listen)))?;
        if addr.port() != 0 {
            let port = addr.port().checked_add(PEER_PORT_OFFSET).ok_or_else(|| {
                NodeError::Config(format!(
                    "client port {} + {PEER_PORT_OFFSET} is no port: set --peer-listen",
                    addr.port()
                ))
            })?;
            addr.set_port(port);
        }
        Ok(addr)
    }
}

/// The peer door's default port: the client port plus this.
pub const PEER_PORT_OFFSET: u16 = 100;

/// The host part of the URLs a node announces: `advertise` if set, else the address it is
/// bound to, or, bound to every interface, the address its default route leaves from (found
/// by connecting a UDP socket, which sends nothing).
pub(crate) fn url_host(bound: std::net::IpAddr, advertise: Option<&str>) -> String {
    if let Some(host) = advertise {
        return host.to_string();
    }
    let ip = if bound.is_unspecified() {
        let outward = || -> std::io::Result<std::net::IpAddr> {
            let probe = if bound.is_ipv4() { "192.0.2.1:9" } else { "[2001:db8::1]:9" };
            let socket = std::net::UdpSocket::bind(if bound.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
            socket.connect(probe)?;
            Ok(socket.local_addr()?.ip())
        };
        outward().unwrap_or(if bound.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        })
    } else {
        bound
    };
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// Durations as humantime strings ("10m", "1h 30m").
mod human {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn announced_hosts_are_never_the_wildcard() {
        assert_eq!(url_host("127.0.0.1".parse().unwrap(), None), "127.0.0.1");
        assert_eq!(url_host("0.0.0.0".parse().unwrap(), Some("db1.example.net")), "db1.example.net");
        assert_eq!(url_host("::1".parse().unwrap(), None), "[::1]");
        let any = url_host("0.0.0.0".parse().unwrap(), None);
        assert!(!any.parse::<std::net::IpAddr>().unwrap().is_unspecified(), "{any}");
    }
}

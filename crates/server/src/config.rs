//! The configuration file. Each crate owns the options of its part (`[lmtp]` is
//! `evermail_lmtp::LmtpOptions`, and so on); this file assembles them and adds what
//! only the binary decides: the data directory and which storage backends to open.

use anyhow::{Context, bail};
use evermail_admin::AdminOptions;
use evermail_blob::StoreState;
use evermail_blob_s3::S3Options;
use evermail_lmtp::LmtpOptions;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the metadata database and the default blob store live. The command-line
    /// `--data-dir` wins over this; the default is `./evermail-data`.
    pub data_dir: Option<PathBuf>,
    /// This node's name: part of every blob key it writes, so nodes sharing one store
    /// mount never collide. Defaults to the host name.
    pub node_name: Option<String>,
    pub lmtp: LmtpOptions,
    pub imap: evermail_imap::ImapOptions,
    pub pop3: evermail_pop3::Pop3Options,
    /// `[auth]`: the failed-login lockout IMAP and POP3 share.
    pub auth: evermail_mailbox::LoginGuardOptions,
    /// `[search]`: how this node keeps its text indexes.
    pub search: evermail_mailbox::TextIndexOptions,
    pub tls: evermail_tls::TlsOptions,
    pub admin: AdminOptions,
    pub metadata: MetadataConfig,
    pub storage: StorageConfig,
    pub accounts: AccountsConfig,
    /// `[cluster]`: membership heartbeats and the secret nodes and proxies share.
    pub cluster: evermail_cluster::ClusterOptions,
    /// `[proxy]`: what `evermail proxy` listens on and how it judges nodes.
    pub proxy: evermail_proxy::ProxyOptions,
}

/// `[metadata]`: where mailbox metadata lives.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// `sqlite` (embedded, one node) or `mysql` (a MariaDB Galera cluster).
    pub backend: MetadataBackend,
    /// The SQLite database file, relative to the data directory.
    pub sqlite_path: PathBuf,
    /// One URL per database node, `mysql://user:password@host:port/database`; the
    /// first is tried first.
    pub mysql_urls: Vec<String>,
    /// `[metadata.mysql]`: pools, timeouts and retries of the MySQL backend
    /// (`evermail_meta_mysql::MysqlOptions`); its node URLs are `mysql_urls`.
    pub mysql: evermail_meta_mysql::MysqlOptions,
    /// How many message records (about 100 bytes each) of the mailboxes sessions
    /// read this node keeps in its shared view cache, over all mailboxes; the least
    /// recently used mailboxes are dropped first. SELECT of a cached mailbox reads only
    /// what changed since.
    pub view_cache_messages: usize,
}

/// Which metadata backend `[metadata] backend` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataBackend {
    #[default]
    Sqlite,
    Mysql,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            backend: MetadataBackend::Sqlite,
            sqlite_path: PathBuf::from("meta.sqlite"),
            mysql_urls: Vec::new(),
            mysql: evermail_meta_mysql::MysqlOptions::default(),
            view_cache_messages: evermail_mailbox::DEFAULT_VIEW_CACHE_MESSAGES,
        }
    }
}

/// By hand, so `config check` never prints a database password.
impl std::fmt::Debug for MetadataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self
            .mysql_urls
            .iter()
            .map(|u| evermail_meta_mysql::redact_url(u))
            .collect();
        f.debug_struct("MetadataConfig")
            .field("backend", &self.backend)
            .field("sqlite_path", &self.sqlite_path)
            .field("mysql_urls", &urls)
            .field("mysql", &self.mysql)
            .field("view_cache_messages", &self.view_cache_messages)
            .finish()
    }
}

/// `[storage]`: where message bodies live, and how many copies of each.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Copies written of every body.
    pub replicas: usize,
    /// Copies that must be durable before a delivery is acknowledged.
    pub min_replicas: usize,
    /// The blob stores. Empty means one filesystem store, `local`, at `DATA/blobs`.
    pub stores: Vec<StoreConfig>,
    /// Seconds between probes of a store that failed; it takes new bodies again once
    /// a probe (write, read back, delete) passes.
    pub probe_interval_secs: u64,
    /// Milliseconds a delivery waits for its remaining copies once `min_replicas` are
    /// durable; a store slower than that is skipped (repair adds its copy later). 0
    /// waits for every copy.
    pub slow_copy_timeout_ms: u64,
    /// Percent of each store's space kept free: a store with less free space (where
    /// its backend can tell, as a filesystem can) gets new bodies only when the others
    /// cannot take them. Free space also scales each store's share of new bodies.
    pub min_free_percent: u8,
    /// Seconds between re-reads of the store registry in the metadata database, where
    /// `evermail store set/drain/remove/add` make their changes for every node.
    pub registry_refresh_secs: u64,
    /// `[storage.maintenance]`: repair, scrub and garbage collection
    /// (`evermail_rais::RaisOptions`).
    pub maintenance: evermail_rais::RaisOptions,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            replicas: 1,
            min_replicas: 1,
            stores: Vec::new(),
            probe_interval_secs: 10,
            registry_refresh_secs: 10,
            slow_copy_timeout_ms: 5000,
            min_free_percent: 5,
            maintenance: evermail_rais::RaisOptions::default(),
        }
    }
}

/// One `[[storage.stores]]` entry. Every kind has the same placement settings; they
/// are repeated in each variant because serde cannot flatten them into an enum that
/// refuses unknown fields.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum StoreConfig {
    /// A directory: a local disk, or an NFS or CephFS mount.
    Fs {
        /// The store's id, recorded with every copy it holds; never change it.
        id: String,
        /// The failure domain (site, rack, NAS); copies go to distinct zones first.
        /// Defaults to the id.
        #[serde(default)]
        zone: Option<String>,
        /// Relative share of new bodies (default 1).
        #[serde(default = "default_weight")]
        weight: u32,
        /// `active`, `read-only`, `draining` or `down` (default `active`).
        #[serde(default)]
        state: StoreState,
        /// The directory; relative paths are inside the data directory.
        path: PathBuf,
    },
    /// A bucket in an S3-compatible object store.
    S3 {
        /// As for `fs`.
        id: String,
        #[serde(default)]
        zone: Option<String>,
        #[serde(default = "default_weight")]
        weight: u32,
        #[serde(default)]
        state: StoreState,
        /// Endpoint, bucket and credentials: `evermail_blob_s3::S3Options`.
        s3: S3Options,
    },
}

fn default_weight() -> u32 {
    1
}

impl StoreConfig {
    pub fn id(&self) -> &str {
        match self {
            StoreConfig::Fs { id, .. } | StoreConfig::S3 { id, .. } => id,
        }
    }

    /// The zone (the id when unset), weight and state.
    pub fn placement(&self) -> (&str, u32, StoreState) {
        match self {
            StoreConfig::Fs {
                id,
                zone,
                weight,
                state,
                ..
            }
            | StoreConfig::S3 {
                id,
                zone,
                weight,
                state,
                ..
            } => (zone.as_deref().unwrap_or(id), *weight, *state),
        }
    }
}

/// `[accounts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// The quota of new accounts that do not name one, e.g. `"2G"`; unset is unlimited.
    #[serde(deserialize_with = "deserialize_size_opt")]
    pub default_quota: Option<u64>,
}

impl Config {
    /// Reads the config file, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .with_context(|| format!("in the config file {}", path.display()))?;
        config
            .validate()
            .with_context(|| format!("in the config file {}", path.display()))?;
        Ok(config)
    }

    /// Refuses settings that parse but cannot work, so the mistake is reported at
    /// start-up rather than as refused mail later.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.lmtp.max_message_size == 0 {
            bail!("[lmtp] max_message_size must be more than 0");
        }
        if self.imap.max_message_size == 0 {
            bail!("[imap] max_message_size must be more than 0");
        }
        if self.lmtp.timeout_secs == 0 {
            bail!("[lmtp] timeout_secs must be more than 0");
        }
        let mut ids: Vec<&str> = self.storage.stores.iter().map(StoreConfig::id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            bail!("[[storage.stores]]: the id {:?} is used twice", w[0]);
        }
        if let Some(id) = ids.iter().find(|id| id.is_empty()) {
            bail!("[[storage.stores]]: an id may not be empty ({id:?})");
        }
        if let Some(s) = self.storage.stores.iter().find(|s| s.placement().1 == 0) {
            bail!(
                "[[storage.stores]] {:?}: weight must be at least 1 (to stop new writes, \
                 set state = \"read-only\")",
                s.id()
            );
        }
        let storage = &self.storage;
        if storage.min_replicas == 0 || storage.min_replicas > storage.replicas {
            bail!(
                "[storage]: need 1 <= min_replicas ({}) <= replicas ({})",
                storage.min_replicas,
                storage.replicas
            );
        }
        let writable = if storage.stores.is_empty() {
            1
        } else {
            storage
                .stores
                .iter()
                .filter(|s| s.placement().2.writable())
                .count()
        };
        if storage.replicas > writable {
            bail!(
                "[storage]: replicas = {} needs that many stores with state = \"active\"; \
                 there are {writable}",
                storage.replicas
            );
        }
        if storage.probe_interval_secs == 0 {
            bail!("[storage] probe_interval_secs must be more than 0");
        }
        if storage.min_free_percent > 100 {
            bail!("[storage] min_free_percent must be at most 100");
        }
        if storage.registry_refresh_secs == 0 {
            bail!("[storage] registry_refresh_secs must be more than 0");
        }
        storage.maintenance.validate().map_err(anyhow::Error::msg)?;
        self.cluster.validate().map_err(anyhow::Error::msg)?;
        let metadata = &self.metadata;
        if !metadata.mysql.urls.is_empty() {
            bail!("[metadata.mysql]: list the database nodes in [metadata] mysql_urls instead");
        }
        if metadata.backend == MetadataBackend::Mysql && metadata.mysql_urls.is_empty() {
            bail!(
                "[metadata] backend = \"mysql\" needs mysql_urls, one URL per database \
                 node, e.g. mysql_urls = [\"mysql://evermail:PASSWORD@db1:3306/evermail\"]"
            );
        }
        Ok(())
    }

    /// The data directory: the command line, then the file, then `./evermail-data`.
    pub fn data_dir(&self, from_cli: Option<&Path>) -> PathBuf {
        from_cli
            .map(Path::to_path_buf)
            .or_else(|| self.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("evermail-data"))
    }

    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty() && !h.contains('/') && !h.starts_with('.'))
                .unwrap_or_else(|| "evermail".to_string())
        })
    }
}

/// Parses a size such as `1048576`, `512K`, `10M`, `2G` or `1T` (powers of 1024).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not a size such as 500M or 2G"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => bail!("{text:?} is not a size such as 500M or 2G"),
    };
    n.checked_mul(1 << shift)
        .with_context(|| format!("{text:?} is too large"))
}

fn deserialize_size_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Option::<Size>::deserialize(d)? {
        None => Ok(None),
        Some(Size::Number(n)) => Ok(Some(n)),
        Some(Size::Text(t)) => parse_size(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A commented configuration with every setting at its default, printed by
/// `evermail config example`. A test checks that it parses.
pub const EXAMPLE: &str = r#"# evermail configuration. Every setting is shown at its default; delete what you
# do not change. Sizes are bytes or a number with K, M, G or T (powers of 1024).

# Where the metadata database and the default blob store live; --data-dir wins.
# data_dir = "evermail-data"

# This node's name, part of every blob key it writes (default: the host name).
# node_name = "mail1"

[imap]
# Where IMAP listens in plaintext, offering STARTTLS (the role of port 143).
listen = ["127.0.0.1:1143"]
# Where IMAP listens with TLS from the first byte (the role of port 993).
# The certificate is the one in [tls]. An empty list opens none.
tls_listen = ["127.0.0.1:1993"]
# Seconds an authenticated client may stay silent before it is logged out
# (RFC 9051 asks for at least 30 minutes).
idle_timeout_secs = 1800
# The largest APPEND accepted, in bytes (advertised as APPENDLIMIT).
max_message_size = 52428800
# Where LOGIN and AUTHENTICATE PLAIN are allowed without TLS: "loopback" (clients
# on 127.0.0.0/8 or ::1 only), "always", or "never". Elsewhere CAPABILITY says
# LOGINDISABLED until the client does STARTTLS; TLS connections may always log in.
plaintext_auth = "loopback"
# How long a failed login waits before its NO, slowing password guessing.
auth_failure_delay_ms = 1000

[pop3]
# Where POP3 listens in plaintext, offering STLS (the role of port 110).
listen = ["127.0.0.1:1110"]
# Where POP3 listens with TLS from the first byte (the role of port 995).
# The certificate is the one in [tls]. An empty list opens none.
tls_listen = ["127.0.0.1:1995"]
# Seconds a client may stay silent before it is logged out, deleting nothing
# (RFC 1939 asks for at least 10 minutes).
idle_timeout_secs = 600
# Where USER/PASS and AUTH PLAIN are allowed without TLS: "loopback", "always",
# or "never", as for [imap]. Elsewhere they answer -ERR [AUTH] until STLS.
plaintext_auth = "loopback"
# How long a failed login waits before its -ERR, slowing password guessing.
auth_failure_delay_ms = 1000

[auth]
# The failed-login lockout IMAP and POP3 share. A locked-out login is refused
# without checking the password (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP])
# until lockout_secs have passed. Failures are counted over window_secs (both
# at most 30 days), IPv6 addresses by their /64, in each node's memory. 0 turns a
# counter off.
window_secs = 900
lockout_secs = 900
# One user from one address: someone guessing a password.
max_failures_per_pair = 10
# One address, any users: someone trying many accounts. Loopback is never
# locked by this one, since a webmail or proxy there speaks for every user.
max_failures_per_ip = 50
# One user, any address: guessing spread over many addresses. Addresses that
# logged in as the user in the last 30 days are not refused, so this cannot lock
# the user out of their own devices.
max_failures_per_user = 100

[search]
# Each node keeps a text index per mailbox under DATA/index (a cache, rebuilt
# when deleted) for SEARCH BODY, TEXT, SUBJECT, FROM, TO, CC, BCC and HEADER.
# true: a mailbox's index is built a little after mail arrives in it, on a
# low-priority thread, so even its first search reads an index. false: only
# after its first search (which reads every message). The index takes about a
# third of the mail's size on disk. In a cluster a node indexes the mail it
# delivers and the mailboxes searched through it: on nodes that take LMTP but
# whose users' sessions the proxies send elsewhere, false saves that work.
index_new_mail = true

[tls]
# The certificate for imaps, pop3s, STARTTLS and STLS, PEM: the chain (server certificate
# first) and its private key. Relative paths are inside the data directory.
# With neither set, a self-signed certificate for the node name, localhost,
# 127.0.0.1 and ::1 is generated once into DATA/tls/cert.pem and key.pem and
# reused; clients must be told to trust it. For a real one, e.g. Let's Encrypt:
# cert_path = "/etc/letsencrypt/live/mail.example.com/fullchain.pem"
# key_path = "/etc/letsencrypt/live/mail.example.com/privkey.pem"

[lmtp]
# Where LMTP listens. Point your MTA here (Postfix: mailbox_transport = lmtp:inet:127.0.0.1:2424).
listen = ["127.0.0.1:2424"]
# The largest message accepted; larger gets 552 5.3.4.
max_message_size = 52428800
# Seconds a command line may take, and the longest a DATA transfer may stall.
timeout_secs = 300
# Recipients per transaction.
max_recipients = 1000
# The name in the greeting (default: the host name).
# hostname = "mx.example.com"

[admin]
# Health, readiness and Prometheus metrics over HTTP. Unauthenticated: keep it private.
listen = "127.0.0.1:8080"

[metadata]
# "sqlite": one embedded database file, for a single node. "mysql": a MariaDB
# Galera cluster (3+ nodes, every one writable), so no database server is a single
# point of failure; every evermail node lists the same cluster.
backend = "sqlite"
# The SQLite database, relative to the data directory.
sqlite_path = "meta.sqlite"
# Message records (about 100 bytes each) this node keeps of the mailboxes its
# sessions read, shared by all of them; least recently used mailboxes go first.
# A SELECT of a cached mailbox reads only what changed since.
view_cache_messages = 2000000
# With backend = "mysql": one URL per database node. Transactions go round robin,
# starting with the first URL, to the nodes that are up; a node that refuses, times
# out or is not Synced is skipped until a probe finds it healthy. Run
# `evermail db migrate` once before the first start and after each upgrade (serve
# does not migrate a shared database); `evermail db status` shows the nodes.
# mysql_urls = [
#     "mysql://evermail:PASSWORD@db1:3306/evermail",
#     "mysql://evermail:PASSWORD@db2:3306/evermail",
#     "mysql://evermail:PASSWORD@db3:3306/evermail",
# ]
# [metadata.mysql]
# # Connections kept open to each database node.
# max_connections_per_node = 16
# # Milliseconds to wait for a connection or a probe before trying another node.
# connect_timeout_ms = 3000
# # Milliseconds between health probes of every node.
# probe_interval_ms = 2000
# # Tries of one transaction (certification conflicts, a lost node) before the
# # caller gets a temporary error (LMTP 451), and the longest pause between them.
# max_attempts = 20
# max_backoff_ms = 500

[storage]
# Copies written of every message body, each on a different store (in different
# zones when there are enough), and how many must be durable before a delivery is
# acknowledged; with fewer, LMTP answers 451 4.3.0 and the MTA retries. replicas
# may not exceed the number of active stores. A store that fails a write is skipped
# (another takes the copy) until a probe finds it working again.
replicas = 1
min_replicas = 1
# Seconds between probes of a store that failed.
probe_interval_secs = 10
# Seconds between re-reads of the store registry. The stores below seed it on the
# first start; afterwards `evermail store set/drain/remove` change it for every node
# (the registry wins over this file for zone, weight and state).
registry_refresh_secs = 10
# Milliseconds a delivery waits for its remaining copies once min_replicas are
# durable; a slower store (a black-holed S3 endpoint, a hung NFS mount) is skipped
# and repair adds the copy later. 0 waits for every copy.
slow_copy_timeout_ms = 5000
# Percent of each fs store kept free: below it a store gets new bodies only when
# the others cannot take them. Each store's share of new bodies also follows its
# free space, so a store added empty fills first.
min_free_percent = 5

[storage.maintenance]
# The background worker of every node: repair restores the replica count of every
# body (fewest good copies first) and empties draining stores; scrubs re-check every
# copy, light (exists, right size) and deep (the whole BLAKE3 hash); garbage
# collection deletes bodies no message has referenced for gc_grace_secs.
enabled = true
repair_interval_secs = 60
scrub_interval_secs = 86400
deep_scrub_interval_secs = 604800
# What maintenance may take from the stores, all passes together.
bytes_per_sec = 52428800
objects_per_sec = 500
gc_grace_secs = 86400
gc_interval_secs = 3600

# With no [[storage.stores]] entry, one filesystem store "local" lives in DATA/blobs.
# Every store has an id (kept in the database with each copy: never change it),
# a zone (copies go to distinct zones first; default: the id), a weight (relative
# share of new bodies; default 1) and a state: "active", "read-only" (read, no new
# bodies), "draining" (like read-only; later emptied by repair) or "down" (read only
# as a last resort).
# [[storage.stores]]
# kind = "fs"
# id = "local"
# zone = "local"
# weight = 1
# state = "active"
# # A directory; relative paths are inside the data directory.
# path = "blobs"
#
# A bucket in an S3-compatible store (AWS S3, Garage, MinIO, Ceph RGW):
# [[storage.stores]]
# kind = "s3"
# id = "garage1"
# zone = "dc2"
# [storage.stores.s3]
# endpoint = "https://s3.example.com"
# region = "us-east-1"
# bucket = "evermail"
# access_key_id = "GK..."
# secret_access_key = "..."
# # A prefix for every key (ending in "/"), to share a bucket with other data.
# prefix = ""
# # Plain http:// only for a store on loopback; keys and mail cross in clear.
# allow_http = false
# # Address the bucket as bucket.endpoint instead of endpoint/bucket.
# virtual_hosted_style = false
# timeout_secs = 30
# connect_timeout_secs = 5
# # Retries within one request; a failing store is skipped for another anyway.
# max_retries = 2

[accounts]
# The quota of accounts created without --quota; unset is unlimited.
# default_quota = "2G"

[cluster]
# Every node writes its row (name, addresses, state, sessions) into the metadata
# database this often (milliseconds); `evermail node list` shows them.
heartbeat_ms = 2000
# A node whose last heartbeat is older than this is down for every node and proxy.
down_after_ms = 10000
# Shared by nodes and proxies: a proxy proves it when it tells a node the client's
# address (for the failed-login lockout). It never logs anyone in.
# secret = "a long random string"
# How often a node looks for changes made through other nodes to the mailboxes its
# sessions have selected (one query per interval), so IDLE hears of them.
change_poll_ms = 500

[proxy]
# Only `evermail proxy` reads this: where it listens (TLS certificate from [tls]; where
# a password may arrive in plaintext from [imap] and [pop3] plaintext_auth), and how
# it judges mailbox nodes (membership from [metadata], its own /readyz probes).
imap_listen = ["127.0.0.1:2143"]
imaps_listen = ["127.0.0.1:2993"]
pop3_listen = ["127.0.0.1:2110"]
pop3s_listen = ["127.0.0.1:2995"]
lmtp_listen = ["127.0.0.1:2024"]
admin_listen = "127.0.0.1:2080"
# Re-read membership and probe nodes this often (milliseconds).
refresh_ms = 1000
# A node that does not answer within this is skipped for the next (milliseconds).
connect_timeout_ms = 2000
# A node this proxy failed to reach goes last in every order for this long.
failure_hold_ms = 3000
max_message_size = 52428800
login_timeout_secs = 60
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_matches_the_defaults() {
        let parsed: Config = toml::from_str(EXAMPLE).unwrap();
        let default = Config::default();
        assert_eq!(parsed.proxy, default.proxy);
        assert_eq!(parsed.cluster, default.cluster);
        assert_eq!(parsed.lmtp.listen, default.lmtp.listen);
        assert_eq!(parsed.lmtp.max_message_size, default.lmtp.max_message_size);
        assert_eq!(parsed.lmtp.timeout_secs, default.lmtp.timeout_secs);
        assert_eq!(parsed.imap.listen, default.imap.listen);
        assert_eq!(parsed.imap.tls_listen, default.imap.tls_listen);
        assert_eq!(parsed.pop3.listen, default.pop3.listen);
        assert_eq!(parsed.pop3.tls_listen, default.pop3.tls_listen);
        assert_eq!(
            parsed.pop3.idle_timeout_secs,
            default.pop3.idle_timeout_secs
        );
        assert_eq!(parsed.pop3.plaintext_auth, default.pop3.plaintext_auth);
        assert_eq!(parsed.auth, default.auth);
        assert_eq!(parsed.search, default.search);
        assert_eq!(parsed.tls, default.tls);
        assert_eq!(parsed.admin.listen, default.admin.listen);
        assert_eq!(parsed.storage.replicas, default.storage.replicas);
        assert_eq!(parsed.storage.min_replicas, default.storage.min_replicas);
        assert_eq!(
            parsed.storage.probe_interval_secs,
            default.storage.probe_interval_secs
        );
        assert!(parsed.storage.stores.is_empty());
        assert_eq!(parsed.storage.maintenance, default.storage.maintenance);
        assert_eq!(
            parsed.storage.registry_refresh_secs,
            default.storage.registry_refresh_secs
        );
        assert_eq!(
            parsed.storage.slow_copy_timeout_ms,
            default.storage.slow_copy_timeout_ms
        );
        assert_eq!(
            parsed.storage.min_free_percent,
            default.storage.min_free_percent
        );
        assert_eq!(parsed.metadata.backend, default.metadata.backend);
        assert_eq!(parsed.metadata.sqlite_path, default.metadata.sqlite_path);
    }

    #[test]
    fn tls_section_parses() {
        let config: Config =
            toml::from_str("[tls]\ncert_path = \"c.pem\"\nkey_path = \"/k.pem\"\n").unwrap();
        assert_eq!(config.tls.cert_path.as_deref(), Some(Path::new("c.pem")));
        assert!(toml::from_str::<Config>("[tls]\ncert = \"c.pem\"\n").is_err());
    }

    #[test]
    fn unknown_settings_are_refused() {
        let err = toml::from_str::<Config>("[lmtp]\nlisten_on = []\n").unwrap_err();
        assert!(err.to_string().contains("listen_on"), "{err}");
        assert!(toml::from_str::<Config>("colour = 1\n").is_err());
    }

    #[test]
    fn impossible_settings_are_refused() {
        for text in [
            "[lmtp]\nmax_message_size = 0\n",
            "[imap]\nmax_message_size = 0\n",
            "[lmtp]\ntimeout_secs = 0\n",
            "[[storage.stores]]\nkind = \"fs\"\nid = \"a\"\npath = \"x\"\n\
             [[storage.stores]]\nkind = \"fs\"\nid = \"a\"\npath = \"y\"\n",
            "[storage]\nreplicas = 2\nmin_replicas = 2\n",
            "[storage]\nreplicas = 1\nmin_replicas = 2\n",
            "[storage]\nmin_replicas = 0\n",
            "[storage]\nprobe_interval_secs = 0\n",
            "[[storage.stores]]\nkind = \"fs\"\nid = \"a\"\npath = \"x\"\nweight = 0\n",
            // Two stores, but only one may take new bodies.
            "[storage]\nreplicas = 2\n\
             [[storage.stores]]\nkind = \"fs\"\nid = \"a\"\npath = \"x\"\n\
             [[storage.stores]]\nkind = \"fs\"\nid = \"b\"\npath = \"y\"\n\
             state = \"read-only\"\n",
        ] {
            let config: Config = toml::from_str(text).unwrap();
            assert!(config.validate().is_err(), "{text}");
        }
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn metadata_backends_parse_and_mysql_needs_urls() {
        assert_eq!(
            Config::default().metadata.backend,
            MetadataBackend::Sqlite,
            "SQLite stays the default"
        );
        let config: Config = toml::from_str(
            "[metadata]\nbackend = \"mysql\"\n\
             mysql_urls = [\"mysql://evermail:s3cret@127.0.0.1:33061/evermail\", \
             \"mysql://evermail:s3cret@127.0.0.1:33062/evermail\"]\n\
             [metadata.mysql]\nmax_attempts = 5\nconnect_timeout_ms = 1000\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.metadata.backend, MetadataBackend::Mysql);
        assert_eq!(config.metadata.mysql_urls.len(), 2);
        assert_eq!(config.metadata.mysql.max_attempts, 5);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret"),
            "config check shows a password: {shown}"
        );

        let no_urls: Config = toml::from_str("[metadata]\nbackend = \"mysql\"\n").unwrap();
        let err = no_urls.validate().unwrap_err().to_string();
        assert!(err.contains("mysql_urls"), "{err}");
        let urls_in_subtable: Config = toml::from_str(
            "[metadata]\nbackend = \"mysql\"\n[metadata.mysql]\nurls = [\"mysql://db/x\"]\n",
        )
        .unwrap();
        assert!(urls_in_subtable.validate().is_err());
        assert!(toml::from_str::<Config>("[metadata]\nbackend = \"postgres\"\n").is_err());
    }

    /// The commented MySQL settings in EXAMPLE parse once uncommented.
    #[test]
    fn example_mysql_settings_parse_when_uncommented() {
        let metadata =
            &EXAMPLE[EXAMPLE.find("[metadata]").unwrap()..EXAMPLE.find("[storage]").unwrap()];
        let text: String = metadata
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.starts_with("# ") => rest,
                Some(rest)
                    if rest.starts_with('[')
                        || rest.starts_with(' ')
                        || rest.starts_with(']')
                        || rest
                            .split_once(" = ")
                            .is_some_and(|(k, _)| !k.contains(' ')) =>
                {
                    rest
                }
                _ => line,
            })
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("backend = \"sqlite\"", "backend = \"mysql\"");
        let config: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        config.validate().unwrap();
        assert_eq!(config.metadata.mysql_urls.len(), 3, "{text}");
        let defaults = evermail_meta_mysql::MysqlOptions::default();
        assert_eq!(config.metadata.mysql.max_attempts, defaults.max_attempts);
        assert_eq!(
            config.metadata.mysql.probe_interval_ms,
            defaults.probe_interval_ms
        );
    }

    #[test]
    fn parses_sizes() {
        let cases = [
            ("0", Some(0)),
            ("1048576", Some(1 << 20)),
            ("512K", Some(512 << 10)),
            ("10M", Some(10 << 20)),
            ("10mb", Some(10 << 20)),
            ("2GiB", Some(2 << 30)),
            ("1T", Some(1 << 40)),
            ("", None),
            ("M", None),
            ("10X", None),
            ("-1", None),
            ("99999999999999999999T", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn stores_and_quota_parse() {
        let config: Config = toml::from_str(
            "[storage]\nreplicas = 2\nmin_replicas = 2\n\
             [[storage.stores]]\nkind = \"fs\"\nid = \"a\"\npath = \"/srv/a\"\n\
             [[storage.stores]]\nkind = \"fs\"\nid = \"b\"\npath = \"b\"\n\
             [accounts]\ndefault_quota = \"1G\"\n",
        )
        .unwrap();
        assert_eq!(config.storage.stores.len(), 2);
        assert_eq!(config.accounts.default_quota, Some(1 << 30));
        assert_eq!(
            config.storage.stores[0].placement(),
            ("a", 1, StoreState::Active)
        );
    }

    #[test]
    fn placement_settings_and_s3_stores_parse() {
        let config: Config = toml::from_str(
            "[storage]\nreplicas = 2\nmin_replicas = 2\n\
             [[storage.stores]]\nkind = \"fs\"\nid = \"a\"\npath = \"a\"\nzone = \"dc1\"\n\
             weight = 3\nstate = \"draining\"\n\
             [[storage.stores]]\nkind = \"fs\"\nid = \"b\"\npath = \"b\"\n\
             [[storage.stores]]\nkind = \"s3\"\nid = \"c\"\nzone = \"dc2\"\n\
             [storage.stores.s3]\nendpoint = \"http://127.0.0.1:3900\"\nbucket = \"m\"\n\
             access_key_id = \"k\"\nsecret_access_key = \"s\"\nallow_http = true\n",
        )
        .unwrap();
        config.validate().unwrap();
        let stores = &config.storage.stores;
        assert_eq!(stores[0].placement(), ("dc1", 3, StoreState::Draining));
        assert_eq!(stores[2].placement(), ("dc2", 1, StoreState::Active));
        let StoreConfig::S3 { s3, .. } = &stores[2] else {
            panic!("not s3: {:?}", stores[2]);
        };
        assert_eq!((s3.bucket.as_str(), s3.allow_http), ("m", true));
        for bad in [
            "[[storage.stores]]\nkind = \"fs\"\nid = \"a\"\npath = \"a\"\nstate = \"off\"\n",
            "[[storage.stores]]\nkind = \"s3\"\nid = \"a\"\npath = \"a\"\n",
            "[[storage.stores]]\nkind = \"s3\"\nid = \"c\"\n[storage.stores.s3]\n\
             endpoint = \"e\"\nbucket = \"m\"\naccess_key_id = \"k\"\n\
             secret_access_key = \"s\"\nsecret = \"s\"\n",
        ] {
            assert!(toml::from_str::<Config>(bad).is_err(), "{bad}");
        }
    }

    /// The commented store examples in EXAMPLE parse once uncommented, so the
    /// documentation cannot drift from the settings.
    #[test]
    fn example_stores_parse_when_uncommented() {
        let storage =
            &EXAMPLE[EXAMPLE.find("[storage]").unwrap()..EXAMPLE.find("[accounts]").unwrap()];
        let setting = |l: &str| {
            l.starts_with('[') || l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' '))
        };
        let text: String = storage
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.starts_with("# ") => rest,
                Some(rest) if setting(rest) => rest,
                _ => line,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let config: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.storage.stores.len(), 2, "{text}");
        assert!(matches!(config.storage.stores[1], StoreConfig::S3 { .. }));
        config.validate().unwrap();
    }
}

//! `RedisCluster`: a local Redis Cluster for one test, formed in seconds.
//!
//! Every node is a `redis-server` of the test's own ([`redis_server_binary`])
//! on a free loopback port, in its own temporary directory. The cluster is
//! formed by talking to the nodes directly (no `redis-cli --cluster`):
//! distinct config epochs, `CLUSTER ADDSLOTS` in chunks (not
//! `ADDSLOTSRANGE`, which Redis 6.2 lacks), `CLUSTER MEET`, then
//! `CLUSTER REPLICATE` once a replica knows its master. The node timeout is
//! short (1 s), so automatic failovers take a couple of seconds.
//!
//! Faults: [`RedisCluster::kill`], [`RedisCluster::restart`],
//! [`RedisCluster::failover`], and live slot migration
//! ([`RedisCluster::migrate_slot`], [`RedisCluster::migrate_slot_slowly`]).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::harness::redis_server_binary;

/// The number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The node timeout the nodes run with (`--cluster-node-timeout`, ms).
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// How long forming and the waits for convergence may take before they panic.
const CONVERGE: Duration = Duration::from_secs(30);

/// Slots per `CLUSTER ADDSLOTS` command.
const ADDSLOTS_CHUNK: usize = 1000;

/// A node's role when the cluster was formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A master serving an even share of the slots.
    Master,
    /// A replica of the master on port `of`.
    Replica {
        /// The master's port.
        of: u16,
    },
}

/// One node of a [`RedisCluster`], as started.
#[derive(Clone, Debug)]
pub struct Node {
    /// The client port on 127.0.0.1 (the cluster bus is `port + 10000`).
    pub port: u16,
    /// The process id of the last `redis-server` started on this port
    /// (changes on restart; stale after a kill).
    pub pid: u32,
    /// The role at start; failovers change the live role, not this.
    pub role: Role,
    /// The node id (`CLUSTER MYID`); kept across restarts by its nodes.conf.
    pub id: String,
}

/// A `redis-server` process of the cluster.
struct Proc {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A local Redis Cluster; every process it started is killed on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
    procs: Vec<Proc>,
    extra: Vec<String>,
    formed_in: Duration,
}

/// One range of `CLUSTER SLOTS`: its master's port and its replicas' ports (sorted).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shard {
    master: u16,
    replicas: Vec<u16>,
}

/// A node's view of the slot map: `(first, last)` slot -> shard.
type SlotMap = BTreeMap<(u16, u16), Shard>;

impl RedisCluster {
    /// Starts `masters` masters with `replicas_per_master` replicas each and
    /// waits until the cluster is formed: every node `cluster_state:ok`,
    /// knowing every other, all agreeing on `CLUSTER SLOTS`, every replica
    /// attached to its master with its link up. Panics (with each node's
    /// state) when that takes longer than 30 s.
    pub async fn start(masters: usize, replicas_per_master: usize) -> Self {
        Self::start_with(masters, replicas_per_master, &[]).await
    }

    /// As [`RedisCluster::start`], with extra `redis-server` arguments for
    /// every node (for example `["--maxmemory", "64mb"]`).
    pub async fn start_with(masters: usize, replicas_per_master: usize, extra: &[&str]) -> Self {
        assert!(masters >= 1, "a cluster needs at least one master");
        let began = Instant::now();
        let total = masters * (1 + replicas_per_master);
        let mut cluster = Self {
            nodes: Vec::new(),
            procs: Vec::new(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            formed_in: Duration::ZERO,
        };
        cluster.spawn_all(total).await;

        // Roles: the first `masters` are masters; replica r of master m is
        // at masters + m * replicas_per_master + r.
        for i in 0..total {
            let role = if i < masters {
                Role::Master
            } else {
                let m = (i - masters) / replicas_per_master;
                Role::Replica {
                    of: cluster.procs[m].port,
                }
            };
            let port = cluster.procs[i].port;
            let mut c = cluster.conn(port).await;
            let id = node_id(&mut c, port).await;
            cluster.nodes.push(Node {
                port,
                pid: cluster.procs[i].child.as_ref().map_or(0, Child::id),
                role,
                id,
            });
        }

        // Distinct config epochs up front, so no epoch collision has to be
        // resolved (what `redis-cli --cluster create` does too).
        for (i, node) in cluster.nodes.iter().enumerate() {
            let mut c = cluster.conn(node.port).await;
            let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
                .arg("SET-CONFIG-EPOCH")
                .arg(i + 1)
                .query_async(&mut c)
                .await;
            if let Err(e) = r {
                panic!("CLUSTER SET-CONFIG-EPOCH {} on {}: {e}", i + 1, node.port);
            }
        }

        // Slots split evenly across the masters.
        for m in 0..masters {
            let first = m * SLOTS as usize / masters;
            let end = (m + 1) * SLOTS as usize / masters;
            let port = cluster.nodes[m].port;
            let mut c = cluster.conn(port).await;
            let slots: Vec<usize> = (first..end).collect();
            for chunk in slots.chunks(ADDSLOTS_CHUNK) {
                let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
                    .arg("ADDSLOTS")
                    .arg(chunk)
                    .query_async(&mut c)
                    .await;
                if let Err(e) = r {
                    panic!(
                        "CLUSTER ADDSLOTS {}..{} on {port}: {e}",
                        chunk[0],
                        chunk[chunk.len() - 1]
                    );
                }
            }
        }

        // Every node meets the first; each replica meets its master directly
        // too, so it knows it after one handshake instead of after gossip.
        let first = cluster.nodes[0].port;
        for node in &cluster.nodes[1..] {
            meet(&mut cluster.conn(first).await, first, node.port).await;
            if let Role::Replica { of } = node.role {
                meet(&mut cluster.conn(node.port).await, node.port, of).await;
            }
        }

        // Each replica replicates its master as soon as it knows it.
        let deadline = Instant::now() + CONVERGE;
        for node in cluster.nodes.clone() {
            let Role::Replica { of } = node.role else {
                continue;
            };
            let master_id = cluster.node(of).id.clone();
            let mut c = cluster.conn(node.port).await;
            loop {
                let nodes: String = query(&mut c, node.port, redis::cmd("CLUSTER").arg("NODES"))
                    .await
                    .unwrap_or_default();
                if nodes
                    .lines()
                    .any(|l| l.starts_with(&master_id) && !l.contains("handshake"))
                {
                    let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
                        .arg("REPLICATE")
                        .arg(&master_id)
                        .query_async(&mut c)
                        .await;
                    match r {
                        Ok(()) => break,
                        // "Unknown node" while the handshake completes: retry.
                        Err(e) if Instant::now() < deadline => {
                            tracing::debug!("CLUSTER REPLICATE on {}: {e}; retrying", node.port);
                        }
                        Err(e) => panic!(
                            "CLUSTER REPLICATE {master_id} (port {of}) on {}: {e}",
                            node.port
                        ),
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "replica {} did not learn of its master {of} ({master_id}) within \
                     {CONVERGE:?}; its CLUSTER NODES:\n{nodes}",
                    node.port
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        cluster.wait_formed().await;
        cluster.formed_in = began.elapsed();
        tracing::info!(
            "cluster of {masters} masters x {replicas_per_master} replicas formed in {:?}",
            cluster.formed_in
        );
        cluster
    }

    /// How long [`RedisCluster::start`] took, from the first spawn to the
    /// cluster being formed.
    pub fn formed_in(&self) -> Duration {
        self.formed_in
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`: the addresses of the
    /// masters at start (seeds; after failovers some may be replicas or down).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .start_masters()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// `redis://127.0.0.1:p` for each master at start.
    pub fn seeds(&self) -> Vec<String> {
        self.start_masters()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    fn start_masters(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Master)
            .map(|n| n.port)
    }

    /// Every node as started (ports, current pids, roles at start).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node on `port`; panics when the cluster has none there.
    pub fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node of this cluster on port {port}"))
    }

    /// The ports of the replicas of `master_port` at start.
    pub fn replicas_of(&self, master_port: u16) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Replica { of: master_port })
            .map(|n| n.port)
            .collect()
    }

    /// The hash slot of `key`: CRC16 (XMODEM) mod 16384 of the key, or of
    /// its hash tag (the part between the first `{` and the next `}`, when
    /// non-empty), as `CLUSTER KEYSLOT` computes it.
    pub fn slot_of(key: &str) -> u16 {
        slot_of_bytes(key.as_bytes())
    }

    /// The port of the master serving `slot` now, from `CLUSTER SLOTS` of
    /// the live nodes (the view most of them hold, as failovers and
    /// migrations change it). Panics when no live node maps the slot.
    pub async fn master_of_slot(&self, slot: u16) -> u16 {
        let views = self.views().await;
        let mut votes: BTreeMap<u16, usize> = BTreeMap::new();
        for (_, map) in &views {
            if let Some(m) = master_in(map, slot) {
                *votes.entry(m).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(port, _)| port)
            .unwrap_or_else(|| panic!("no live node maps slot {slot}; views: {views:?}"))
    }

    /// The live masters' ports (nodes that answer and say `role:master`), sorted.
    pub async fn masters(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for p in self.live_ports() {
            if let Some(mut c) = try_conn(p).await {
                if role(&mut c).await.as_deref() == Some("master") {
                    out.push(p);
                }
            }
        }
        out
    }

    /// A fresh connection to the node on `port` alone (no redirections
    /// followed), with a 30 s response timeout as [`crate::RedisServer::conn`].
    pub async fn conn(&self, port: u16) -> MultiplexedConnection {
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
        redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap_or_else(|e| panic!("client for 127.0.0.1:{port}: {e}"))
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap_or_else(|e| panic!("connect to cluster node 127.0.0.1:{port}: {e}"))
    }

    /// SIGKILLs the node on `port` (by its pid). The cluster notices after
    /// the node timeout; a killed master's replica is then promoted.
    pub fn kill(&mut self, port: u16) {
        let p = self.proc_mut(port);
        if let Some(mut c) = p.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the node on `port` again, on the same port and directory (so
    /// it rejoins with its nodes.conf; its data is gone, nothing persists),
    /// and waits until the cluster is ok ([`RedisCluster::wait_ok`]). A
    /// master that was failed over while down comes back as a replica.
    pub async fn restart(&mut self, port: u16) {
        self.kill(port);
        let extra = self.extra.clone();
        let p = self.proc_mut(port);
        spawn(p, &extra);
        let pid = p.child.as_ref().map_or(0, Child::id);
        let ready = wait_ready(p, Duration::from_secs(10)).await;
        assert!(
            ready,
            "redis-server on {port} did not restart (port taken meanwhile?); log:\n{}",
            log_tail(self.proc_mut(port).dir.path())
        );
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == port) {
            n.pid = pid;
        }
        self.wait_ok().await;
    }

    /// `CLUSTER FAILOVER` on the replica on `replica_port`: waits until it
    /// says `role:master`, serves slots in every live node's view, and the
    /// cluster is ok again. Panics after 30 s.
    pub async fn failover(&self, replica_port: u16) {
        let mut c = self.conn(replica_port).await;
        let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query_async(&mut c)
            .await;
        if let Err(e) = r {
            panic!("CLUSTER FAILOVER on {replica_port}: {e}");
        }
        let deadline = Instant::now() + CONVERGE;
        loop {
            if role(&mut c).await.as_deref() == Some("master") {
                let views = self.views().await;
                let serves = views
                    .iter()
                    .all(|(_, map)| map.values().any(|s| s.master == replica_port));
                if serves {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "replica {replica_port} was not promoted by CLUSTER FAILOVER within {CONVERGE:?}:\n{}",
                self.describe().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.wait_ok().await;
    }

    /// Waits until every live node says `cluster_state:ok`, all agree on
    /// `CLUSTER SLOTS` (every slot mapped), and every live replica's link to
    /// its master is up. Panics with each node's state after 30 s.
    pub async fn wait_ok(&self) {
        let deadline = Instant::now() + CONVERGE;
        while !self.is_ok(None).await {
            assert!(
                Instant::now() < deadline,
                "cluster not ok within {CONVERGE:?}:\n{}",
                self.describe().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Moves `slot` to the master on `to_port` with the standard live
    /// migration, 10 keys a `MIGRATE`, so that it interleaves with traffic;
    /// see [`RedisCluster::migrate_slot_slowly`].
    pub async fn migrate_slot(&self, slot: u16, to_port: u16) {
        self.migrate_slot_slowly(slot, to_port, 10, Duration::ZERO)
            .await;
    }

    /// Moves `slot` to the master on `to_port`: `CLUSTER SETSLOT IMPORTING`
    /// on the target, `MIGRATING` on the source, then `CLUSTER
    /// GETKEYSINSLOT` + `MIGRATE ... KEYS` `batch` keys at a time with
    /// `pause` between batches (clients meanwhile get `ASK`/`TRYAGAIN`),
    /// then `CLUSTER SETSLOT NODE` on the target, the source and the other
    /// masters; waits until every live node maps the slot to the target.
    /// Does nothing when the target already serves the slot.
    pub async fn migrate_slot_slowly(
        &self,
        slot: u16,
        to_port: u16,
        batch: usize,
        pause: Duration,
    ) {
        assert!(slot < SLOTS, "slot {slot} out of range");
        assert!(batch > 0, "batch must be at least 1");
        let from_port = self.master_of_slot(slot).await;
        if from_port == to_port {
            return;
        }
        let mut to = self.conn(to_port).await;
        let mut from = self.conn(from_port).await;
        let to_id = node_id(&mut to, to_port).await;
        let from_id = node_id(&mut from, from_port).await;

        setslot(&mut to, to_port, slot, &["IMPORTING", &from_id]).await;
        setslot(&mut from, from_port, slot, &["MIGRATING", &to_id]).await;

        let mut moved = 0usize;
        loop {
            let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(batch)
                .query_async(&mut from)
                .await
                .unwrap_or_else(|e| panic!("CLUSTER GETKEYSINSLOT {slot} on {from_port}: {e}"));
            if keys.is_empty() {
                // The source refuses SETSLOT NODE while it holds keys of the
                // slot; none can appear now (writes of new keys get ASK).
                match try_setslot(&mut to, slot, &["NODE", &to_id]).await {
                    Ok(()) => {}
                    Err(e) => panic!("CLUSTER SETSLOT {slot} NODE on target {to_port}: {e}"),
                }
                match try_setslot(&mut from, slot, &["NODE", &to_id]).await {
                    Ok(()) => break,
                    Err(e) if e.to_string().contains("hold keys") => continue,
                    Err(e) => panic!("CLUSTER SETSLOT {slot} NODE on source {from_port}: {e}"),
                }
            }
            let r: redis::RedisResult<Value> = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to_port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query_async(&mut from)
                .await;
            if let Err(e) = r {
                panic!(
                    "MIGRATE of {} keys of slot {slot} from {from_port} to {to_port}: {e} \
                     (BUSYKEY: the target already had one of them)",
                    keys.len()
                );
            }
            moved += keys.len();
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        for m in self.masters().await {
            if m == to_port || m == from_port {
                continue;
            }
            let mut c = self.conn(m).await;
            setslot(&mut c, m, slot, &["NODE", &to_id]).await;
        }
        tracing::debug!("slot {slot}: {moved} keys moved from {from_port} to {to_port}");

        let deadline = Instant::now() + CONVERGE;
        loop {
            let views = self.views().await;
            if views
                .iter()
                .all(|(_, map)| master_in(map, slot) == Some(to_port))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "slot {slot} not mapped to {to_port} by every node within {CONVERGE:?}: {views:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // --- internals ---

    fn proc_mut(&mut self, port: u16) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.port == port)
            .unwrap_or_else(|| panic!("no node of this cluster on port {port}"))
    }

    fn live_ports(&self) -> Vec<u16> {
        self.procs
            .iter()
            .filter(|p| p.child.is_some())
            .map(|p| p.port)
            .collect()
    }

    /// Spawns `total` nodes on free ports; a node whose port (or bus port)
    /// another process took between probe and spawn is retried on another.
    async fn spawn_all(&mut self, total: usize) {
        let mut tries = 0;
        while self.procs.len() < total {
            // Spawn all that are missing, then wait for them together.
            let mut fresh = Vec::new();
            while self.procs.len() + fresh.len() < total {
                let port = free_port(&self.procs, &fresh);
                let mut p = Proc {
                    port,
                    dir: tempfile::tempdir().expect("temp dir"),
                    child: None,
                };
                spawn(&mut p, &self.extra);
                fresh.push(p);
            }
            for mut p in fresh {
                if wait_ready(&mut p, Duration::from_secs(10)).await {
                    self.procs.push(p);
                } else {
                    tries += 1;
                    tracing::debug!(
                        "cluster node on {} did not start; log:\n{}",
                        p.port,
                        log_tail(p.dir.path())
                    );
                    if let Some(mut c) = p.child.take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    assert!(
                        tries < 20,
                        "could not start cluster nodes on free ports after 20 tries; last log \
                         ({}):\n{}",
                        redis_server_binary().display(),
                        log_tail(p.dir.path())
                    );
                }
            }
        }
    }

    /// Forming is done when every node knows all the others, is ok, agrees
    /// on the slot map, and every replica serves its assigned master.
    async fn wait_formed(&self) {
        let deadline = Instant::now() + CONVERGE;
        while !self.is_ok(Some(self.nodes.len())).await || !self.replicas_assigned().await {
            self.nudge_offsets().await;
            assert!(
                Instant::now() < deadline,
                "cluster did not form within {CONVERGE:?}:\n{}",
                self.describe().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Redis 7 lists a replica in `CLUSTER SLOTS` only once its replication
    /// offset is above 0, which on an idle master takes until its next PING
    /// to the replicas (`repl-ping-replica-period`, 10 s). A `FLUSHALL` on
    /// each master with attached replicas and offset 0 (the cluster is new
    /// and empty) moves the offset at once.
    async fn nudge_offsets(&self) {
        for n in self.nodes.iter().filter(|n| n.role == Role::Master) {
            let Some(mut c) = try_conn(n.port).await else {
                continue;
            };
            let Some(repl) =
                query::<String>(&mut c, n.port, redis::cmd("INFO").arg("replication")).await
            else {
                continue;
            };
            let attached = field(&repl, "connected_slaves").is_some_and(|v| v != "0");
            if attached && field(&repl, "master_repl_offset") == Some("0") {
                let _: Option<()> = query(&mut c, n.port, &redis::cmd("FLUSHALL")).await;
            }
        }
    }

    async fn replicas_assigned(&self) -> bool {
        let Some((_, map)) = self.views().await.into_iter().next() else {
            return false;
        };
        self.nodes.iter().all(|n| match n.role {
            Role::Master => map.values().any(|s| s.master == n.port),
            Role::Replica { of } => map
                .values()
                .any(|s| s.master == of && s.replicas.contains(&n.port)),
        })
    }

    /// Every live node ok (and, when given, knowing `known` nodes), all
    /// agreeing on a complete slot map, every live replica's link up.
    async fn is_ok(&self, known: Option<usize>) -> bool {
        let mut first: Option<SlotMap> = None;
        for port in self.live_ports() {
            let Some(mut c) = try_conn(port).await else {
                return false;
            };
            let Some(info) = query::<String>(&mut c, port, redis::cmd("CLUSTER").arg("INFO")).await
            else {
                return false;
            };
            if field(&info, "cluster_state") != Some("ok") {
                return false;
            }
            if let Some(k) = known {
                if field(&info, "cluster_known_nodes") != Some(&k.to_string()) {
                    return false;
                }
            }
            let Some(map) = slot_map(&mut c, port).await else {
                return false;
            };
            if !covers_all(&map) {
                return false;
            }
            match &first {
                None => first = Some(map),
                Some(f) if *f != map => return false,
                Some(_) => {}
            }
            let Some(repl) =
                query::<String>(&mut c, port, redis::cmd("INFO").arg("replication")).await
            else {
                return false;
            };
            if field(&repl, "role") == Some("slave")
                && field(&repl, "master_link_status") != Some("up")
            {
                return false;
            }
        }
        first.is_some()
    }

    /// Each live node's `CLUSTER SLOTS` view (nodes that do not answer are left out).
    async fn views(&self) -> Vec<(u16, SlotMap)> {
        let mut out = Vec::new();
        for port in self.live_ports() {
            if let Some(mut c) = try_conn(port).await {
                if let Some(map) = slot_map(&mut c, port).await {
                    out.push((port, map));
                }
            }
        }
        out
    }

    /// Each node's state, for panic messages.
    async fn describe(&self) -> String {
        let mut out = String::new();
        for p in &self.procs {
            let port = p.port;
            if p.child.is_none() {
                out.push_str(&format!("--- {port}: killed\n"));
                continue;
            }
            let Some(mut c) = try_conn(port).await else {
                out.push_str(&format!(
                    "--- {port}: does not answer; log:\n{}\n",
                    log_tail(p.dir.path())
                ));
                continue;
            };
            let info: String = query(&mut c, port, redis::cmd("CLUSTER").arg("INFO"))
                .await
                .unwrap_or_default();
            let repl: String = query(&mut c, port, redis::cmd("INFO").arg("replication"))
                .await
                .unwrap_or_default();
            let nodes: String = query(&mut c, port, redis::cmd("CLUSTER").arg("NODES"))
                .await
                .unwrap_or_default();
            let map = slot_map(&mut c, port).await;
            out.push_str(&format!(
                "--- {port}: state {:?}, known {:?}, role {:?}, link {:?}\n\
                 CLUSTER SLOTS {map:?}\nCLUSTER NODES:\n{nodes}",
                field(&info, "cluster_state"),
                field(&info, "cluster_known_nodes"),
                field(&repl, "role"),
                field(&repl, "master_link_status"),
            ));
        }
        out
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A port free now whose cluster bus port (`port + 10000`) is free too, and
/// neither clashes with the nodes already spawned.
fn free_port(procs: &[Proc], fresh: &[Proc]) -> u16 {
    let taken = |q: u16| {
        procs.iter().chain(fresh).any(|p| {
            p.port == q
                || p.port.checked_add(10000) == Some(q)
                || q.checked_add(10000) == Some(p.port)
        })
    };
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let Some(bus) = port.checked_add(10000) else {
            continue;
        };
        if taken(port) || taken(bus) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port with a free cluster bus port (port + 10000)");
}

fn spawn(p: &mut Proc, extra: &[String]) {
    let dir = p.dir.path();
    let mut cmd = Command::new(redis_server_binary());
    cmd.args(["--port", &p.port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .arg("--cluster-config-file")
        .arg(dir.join(format!("nodes-{}.conf", p.port)))
        .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        // Any replica may take over, however long its master was unreachable.
        .args(["--cluster-replica-validity-factor", "0"])
        .args(["--save", "", "--appendonly", "no"])
        // Replicas sync at once (Redis 7's default waits 5 s for more replicas).
        .args([
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    p.child = Some(cmd.spawn().expect("spawn redis-server"));
}

/// Waits for INFO from our own child (not another process that took the
/// port); false when the child exits or the time runs out.
async fn wait_ready(p: &mut Proc, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let Some(child) = p.child.as_mut() else {
            return false;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let pid = child.id();
        if let Some(mut c) = try_conn(p.port).await {
            if let Some(info) =
                query::<String>(&mut c, p.port, redis::cmd("INFO").arg("server")).await
            {
                let theirs = field(&info, "process_id").and_then(|v| v.parse::<u32>().ok());
                return theirs == Some(pid);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A connection for polling: short timeouts, `None` when the node is down.
async fn try_conn(port: u16) -> Option<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .ok()?
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()
}

async fn query<T: redis::FromRedisValue>(
    c: &mut MultiplexedConnection,
    port: u16,
    cmd: &redis::Cmd,
) -> Option<T> {
    match cmd.query_async(c).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!("cluster node {port}: {e}");
            None
        }
    }
}

async fn node_id(c: &mut MultiplexedConnection, port: u16) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(c)
        .await
        .unwrap_or_else(|e| panic!("CLUSTER MYID on {port}: {e}"))
}

async fn role(c: &mut MultiplexedConnection) -> Option<String> {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(c)
        .await
        .ok()?;
    field(&info, "role").map(str::to_owned)
}

async fn meet(c: &mut MultiplexedConnection, from: u16, to: u16) {
    let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(to)
        .query_async(c)
        .await;
    if let Err(e) = r {
        panic!("CLUSTER MEET 127.0.0.1 {to} on {from}: {e}");
    }
}

async fn try_setslot(
    c: &mut MultiplexedConnection,
    slot: u16,
    args: &[&str],
) -> redis::RedisResult<()> {
    redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg(args)
        .query_async(c)
        .await
}

async fn setslot(c: &mut MultiplexedConnection, port: u16, slot: u16, args: &[&str]) {
    if let Err(e) = try_setslot(c, slot, args).await {
        panic!("CLUSTER SETSLOT {slot} {} on {port}: {e}", args.join(" "));
    }
}

/// `field:value` of an INFO-style reply.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// The node's `CLUSTER SLOTS`, normalized (replica order sorted).
async fn slot_map(c: &mut MultiplexedConnection, port: u16) -> Option<SlotMap> {
    let v: Value = query(c, port, redis::cmd("CLUSTER").arg("SLOTS")).await?;
    parse_slots(&v)
}

fn parse_slots(v: &Value) -> Option<SlotMap> {
    let int = |v: &Value| -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::SimpleString(s) => s.parse().ok(),
            _ => None,
        }
    };
    let node_port = |v: &Value| -> Option<u16> {
        match v {
            Value::Array(parts) => int(parts.get(1)?).and_then(|p| u16::try_from(p).ok()),
            _ => None,
        }
    };
    let Value::Array(ranges) = v else {
        return None;
    };
    let mut map = SlotMap::new();
    for r in ranges {
        let Value::Array(parts) = r else {
            return None;
        };
        let first = u16::try_from(int(parts.first()?)?).ok()?;
        let last = u16::try_from(int(parts.get(1)?)?).ok()?;
        let master = node_port(parts.get(2)?)?;
        let mut replicas: Vec<u16> = parts[3..].iter().filter_map(node_port).collect();
        replicas.sort_unstable();
        map.insert((first, last), Shard { master, replicas });
    }
    Some(map)
}

fn covers_all(map: &SlotMap) -> bool {
    let mut next: u32 = 0;
    for &(first, last) in map.keys() {
        if u32::from(first) != next {
            return false;
        }
        next = u32::from(last) + 1;
    }
    next == u32::from(SLOTS)
}

fn master_in(map: &SlotMap, slot: u16) -> Option<u16> {
    map.iter()
        .find(|((first, last), _)| (*first..=*last).contains(&slot))
        .map(|(_, s)| s.master)
}

/// The last lines of a node's log, for panic messages.
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// [`RedisCluster::slot_of`] for binary keys.
pub fn slot_of_bytes(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS
}

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), Redis Cluster's key hash.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot_of_bytes(b"foo"), 12182);
        assert_eq!(
            slot_of_bytes(b"{user1000}.following"),
            slot_of_bytes(b"user1000")
        );
        assert_eq!(slot_of_bytes(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot_of_bytes(b"foo{{bar}}zap"), crc16(b"{bar") % SLOTS);
        assert_eq!(slot_of_bytes(b"foo{bar}{zap}"), crc16(b"bar") % SLOTS);
    }
}

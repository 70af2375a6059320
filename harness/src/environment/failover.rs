//! What a failover task holds of the store it fails: a Sentinel group's primary
//! ([`super::sentinel::SentinelHandles`]) or one master of a Redis Cluster with its replicas
//! ([`super::cluster::ShardHandles`]), behind one interface the measurement
//! (`collect::failover`) drives without knowing which it is.

use std::time::Instant;

use super::cluster::{SLOTS, ShardHandles, slots_text};
use super::sentinel::{ResumeOnDrop, SentinelHandles};

/// Poller credentials on a cluster: with a master holding a third of the slots, the chance that
/// none of 6 random keys hashes to it is (2/3)^6, under 1 in 10.
pub const CLUSTER_WATCHES: u32 = 6;

/// The processes a failover stops and kills, and how to see the promotion.
#[derive(Debug, Clone)]
pub enum FailoverHandles {
    /// The primary of a Sentinel group; the Sentinels promote a replica.
    Sentinel(SentinelHandles),
    /// One master of a Redis Cluster (the one serving slot 0); its replica, if any, takes over.
    Cluster(ShardHandles),
}

/// The failed node as the report names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Victim {
    /// `sentinel` or `cluster`.
    pub store: &'static str,
    /// Replicas that could take over (0: nothing does, a partial outage).
    pub replicas: u32,
    /// Cluster: the failed master's hash slots (`0-5460`); `None` for a Sentinel primary (all).
    pub slots: Option<String>,
    /// Share (0..1) of the key space the failed node served.
    pub key_share: f64,
}

impl FailoverHandles {
    /// Cut replication `lead` before the kill (see each store's `cut_replication`); the guard
    /// resumes the stopped replicas.
    pub async fn cut_replication(&self) -> anyhow::Result<ResumeOnDrop> {
        match self {
            FailoverHandles::Sentinel(h) => h.cut_replication().await,
            FailoverHandles::Cluster(h) => h.cut_replication().await,
        }
    }

    /// Kill the primary (SIGKILL).
    pub fn kill_primary(&self) -> anyhow::Result<()> {
        match self {
            FailoverHandles::Sentinel(h) => h.kill_primary(),
            FailoverHandles::Cluster(h) => h.kill_master(),
        }
    }

    /// Wait (bounded) until another node serves as primary; its port and when it was first seen.
    pub async fn wait_promoted(&self) -> Option<(u16, Instant)> {
        match self {
            FailoverHandles::Sentinel(h) => h.wait_promoted().await,
            FailoverHandles::Cluster(h) => h.wait_promoted().await,
        }
    }

    /// Whether a replica can take over at all (false: a cluster master without replicas, whose
    /// slots stay down: a partial outage).
    pub fn can_promote(&self) -> bool {
        match self {
            FailoverHandles::Sentinel(h) => !h.replicas.is_empty(),
            FailoverHandles::Cluster(h) => !h.replicas.is_empty(),
        }
    }

    /// Credentials the failover poller holds: 1 for a Sentinel primary (it holds every key); on a
    /// cluster master enough that some of their keys very likely hash to it ([`CLUSTER_WATCHES`]).
    pub fn watches(&self) -> u32 {
        match self {
            FailoverHandles::Sentinel(_) => 1,
            FailoverHandles::Cluster(_) => CLUSTER_WATCHES,
        }
    }

    /// The failed node, for the result.
    pub fn victim(&self) -> Victim {
        match self {
            FailoverHandles::Sentinel(h) => {
                Victim { store: "sentinel", replicas: h.replicas.len() as u32, slots: None, key_share: 1.0 }
            }
            FailoverHandles::Cluster(h) => Victim {
                store: "cluster",
                replicas: h.replicas.len() as u32,
                slots: Some(slots_text(&h.slots)),
                key_share: f64::from(h.slot_count()) / f64::from(SLOTS),
            },
        }
    }
}

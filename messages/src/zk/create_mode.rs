//! How a znode is created: ZooKeeper's `CreateMode` flags and TTLs.

use super::ZkError;
use serde::{Deserialize, Serialize};

/// How a znode is created (ZooKeeper's CreateMode). Part of replicated txns: the variants'
/// order is their on-disk encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    /// Flags 0.
    Persistent,
    /// Flags 1: deleted with its session.
    Ephemeral,
    /// Flags 2.
    PersistentSequential,
    /// Flags 3.
    EphemeralSequential,
    /// Flags 4: reaped once empty after having had children.
    Container,
    /// Flags 5: reaped once childless and unmodified for `ttl_ms`.
    PersistentWithTtl {
        /// Milliseconds.
        ttl_ms: i64,
    },
    /// Flags 6: sequential, with a TTL.
    PersistentSequentialWithTtl {
        /// Milliseconds.
        ttl_ms: i64,
    },
}

/// Largest TTL ZooKeeper encodes in an ephemeralOwner (40 bits).
pub const MAX_TTL_MS: i64 = 0xff_ffff_ffff;

/// High byte of a TTL znode's ephemeralOwner (ZooKeeper's extended type TTL).
const TTL_OWNER_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;

/// The ephemeralOwner that marks a TTL znode.
pub fn ttl_owner(ttl_ms: i64) -> i64 {
    TTL_OWNER_MASK | ttl_ms
}

/// The TTL of a znode whose ephemeralOwner marks it as a TTL znode.
pub fn ttl_of_owner(owner: i64) -> Option<i64> {
    (owner & TTL_OWNER_MASK == TTL_OWNER_MASK).then_some(owner & MAX_TTL_MS)
}

impl CreateMode {
    /// The mode of a create request's flags and TTL (negative: none given). As ZooKeeper,
    /// BadArguments when they do not fit together: an unknown flag, a TTL mode without a TTL
    /// in `1..=MAX_TTL_MS`, or a TTL given to another mode.
    pub fn from_flags(flags: i32, ttl_ms: i64) -> Result<CreateMode, ZkError> {
        let ttl = (1..=MAX_TTL_MS).contains(&ttl_ms).then_some(ttl_ms);
        Ok(match (flags, ttl) {
            (5, Some(ttl_ms)) => CreateMode::PersistentWithTtl { ttl_ms },
            (6, Some(ttl_ms)) => CreateMode::PersistentSequentialWithTtl { ttl_ms },
            (5 | 6, None) => return Err(ZkError::BadArguments),
            _ if ttl_ms >= 0 => return Err(ZkError::BadArguments),
            (0, _) => CreateMode::Persistent,
            (1, _) => CreateMode::Ephemeral,
            (2, _) => CreateMode::PersistentSequential,
            (3, _) => CreateMode::EphemeralSequential,
            (4, _) => CreateMode::Container,
            _ => return Err(ZkError::BadArguments),
        })
    }

    /// The request's flags for this mode.
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl { .. } => 5,
            CreateMode::PersistentSequentialWithTtl { .. } => 6,
        }
    }

    /// The TTL a createTTL request carries, or -1 (none) for the other modes.
    pub fn ttl_ms(self) -> i64 {
        match self {
            CreateMode::PersistentWithTtl { ttl_ms }
            | CreateMode::PersistentSequentialWithTtl { ttl_ms } => ttl_ms,
            _ => -1,
        }
    }

    /// Whether the name gets a 10-digit sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl { .. }
        )
    }

    /// Whether the znode belongs to its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_modes_and_ttls_must_fit_together() {
        assert_eq!(
            CreateMode::from_flags(5, 1000),
            Ok(CreateMode::PersistentWithTtl { ttl_ms: 1000 })
        );
        let bad = Err(ZkError::BadArguments);
        assert_eq!(CreateMode::from_flags(5, -1), bad, "a TTL mode needs a TTL");
        assert_eq!(CreateMode::from_flags(6, 0), bad);
        assert_eq!(CreateMode::from_flags(5, MAX_TTL_MS + 1), bad);
        assert_eq!(
            CreateMode::from_flags(0, 1000),
            bad,
            "a TTL needs a TTL mode"
        );
        assert_eq!(CreateMode::from_flags(1, -1), Ok(CreateMode::Ephemeral));
        assert_eq!(CreateMode::from_flags(7, -1), bad);
        assert_eq!(CreateMode::from_flags(i32::MIN, -1), bad);
    }

    #[test]
    fn flags_and_ttls_round_trip() {
        let modes = [
            CreateMode::Persistent,
            CreateMode::Ephemeral,
            CreateMode::PersistentSequential,
            CreateMode::EphemeralSequential,
            CreateMode::Container,
            CreateMode::PersistentWithTtl { ttl_ms: 5 },
            CreateMode::PersistentSequentialWithTtl { ttl_ms: MAX_TTL_MS },
        ];
        for mode in modes {
            assert_eq!(
                CreateMode::from_flags(mode.flags(), mode.ttl_ms()),
                Ok(mode)
            );
        }
    }

    #[test]
    fn the_on_disk_encoding_is_the_variant_order() {
        let encoded = crate::codec::encode(&CreateMode::PersistentWithTtl { ttl_ms: 3 });
        assert_eq!(encoded.ok(), Some(vec![5, 6]), "variant 5, then zigzag 3");
        let encoded = crate::codec::encode(&CreateMode::Container);
        assert_eq!(encoded.ok(), Some(vec![4]));
    }
}

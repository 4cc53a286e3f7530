//! Which input stream shard a producer writes an event to.
//!
//! With `worker.streams` listing N shards `<base>:{0}` … `<base>:{N-1}` (each its own
//! cluster slot, by the hash tag), a producer writes an event of livestream `L` to
//! shard `low32(L) mod N`, where `low32(L)` is the number the UUID's last eight hex
//! digits spell. One livestream's events thus stay in one stream, in the order they
//! were produced. In a shell: `$(( 16#${L: -8} % N ))`.
//!
//! Workers read every shard, so a producer with another formula loses nothing: the
//! shard only decides which Redis node carries the event.

use uuid::Uuid;

/// The shard of a livestream's events among `shards` (0 when `shards` is 0 or 1).
pub fn shard_of(livestream_id: Uuid, shards: u32) -> u32 {
    let low32 = (livestream_id.as_u128() & 0xffff_ffff) as u32;
    low32.checked_rem(shards).unwrap_or(0)
}

/// The name of shard `shard` of `base`: `<base>:{<shard>}`.
pub fn shard_stream(base: &str, shard: u32) -> String {
    format!("{base}:{{{shard}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_is_the_last_eight_hex_digits_modulo_the_count() {
        let id = Uuid::parse_str("0e2a9c1b-0000-4000-8000-00000000abcd").expect("uuid");
        assert_eq!(shard_of(id, 4), 0xabcd % 4);
        assert_eq!(shard_of(id, 1), 0);
        assert_eq!(shard_of(id, 0), 0);
        let high = Uuid::parse_str("ffffffff-ffff-ffff-ffff-fffffffffffe").expect("uuid");
        assert_eq!(shard_of(high, 3), 0xffff_fffe % 3);
        assert_eq!(shard_stream("events", 2), "events:{2}");
    }
}

//! Identities derived from others: the same inputs give the same id on every
//! replica, redelivery and retry.

use uuid::Uuid;

/// The deterministic id of the execution of rule `rule_id` for event `event_id`:
/// receivers deduplicate on it (`Idempotency-Key`, the published `execution_id`).
pub fn execution_id(rule_id: Uuid, event_id: Uuid) -> Uuid {
    let mut name = [0u8; 32];
    name[..16].copy_from_slice(rule_id.as_bytes());
    name[16..].copy_from_slice(event_id.as_bytes());
    Uuid::new_v5(&Uuid::NAMESPACE_OID, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_pair_same_id_and_order_matters() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(execution_id(a, b), execution_id(a, b));
        assert_ne!(execution_id(a, b), execution_id(b, a));
        assert_eq!(execution_id(a, b).get_version_num(), 5);
    }
}

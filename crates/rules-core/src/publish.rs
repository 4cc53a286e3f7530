//! Where a `publish` action may write: never the service's own keys, its input or
//! dead-letter streams, and, when the operator confines it, only under given
//! prefixes. Checked when a rule is saved (a 422 at the action's path) and again
//! before each publish (a rule stored before the policy changed).

use crate::model::{ActionKind, RuleSpec};
use crate::problems::FieldError;

/// The prefix of every key the service keeps in Redis (cooldowns, thresholds,
/// claims, breakers, rate limits).
pub const SERVICE_KEY_PREFIX: &str = "re:";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishPolicy {
    /// Streams no rule may write: the input and dead-letter streams.
    pub reserved: Vec<String>,
    /// When not empty, a target must start with one of these.
    pub allowed_prefixes: Vec<String>,
}

impl PublishPolicy {
    /// Why `stream` may not be written, if it may not.
    pub fn refusal(&self, stream: &str) -> Option<String> {
        if stream.starts_with(SERVICE_KEY_PREFIX) {
            return Some(format!(
                "streams starting with `{SERVICE_KEY_PREFIX}` are the service's own keys"
            ));
        }
        if self.reserved.iter().any(|r| r == stream) {
            return Some("is an input or dead-letter stream of the service".into());
        }
        if !self.allowed_prefixes.is_empty()
            && !self
                .allowed_prefixes
                .iter()
                .any(|p| stream.starts_with(p.as_str()))
        {
            return Some(format!(
                "must start with one of {:?} (worker.publish_allowed_prefixes)",
                self.allowed_prefixes
            ));
        }
        None
    }

    /// Every publish action of `spec` that the policy refuses, with its path.
    pub fn check(&self, spec: &RuleSpec) -> Vec<FieldError> {
        spec.actions
            .iter()
            .enumerate()
            .filter_map(|(i, action)| match &action.kind {
                ActionKind::Publish(p) => self.refusal(&p.stream).map(|message| FieldError {
                    path: format!("actions[{i}].stream"),
                    message,
                }),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_keys_and_streams_are_refused_and_prefixes_confine() {
        let open = PublishPolicy {
            reserved: vec!["events".into(), "rule-engine:dead-letter".into()],
            allowed_prefixes: vec![],
        };
        assert!(open.refusal("overlay:alerts").is_none());
        assert!(open.refusal("re:{x}:cd:_").is_some());
        assert!(open.refusal("re:dest:{h}:cb").is_some());
        assert!(open.refusal("events").is_some());
        assert!(open.refusal("rule-engine:dead-letter").is_some());
        let confined = PublishPolicy {
            allowed_prefixes: vec!["overlay:".into(), "bot:".into()],
            ..open
        };
        assert!(confined.refusal("overlay:alerts").is_none());
        assert!(confined.refusal("bot:chat").is_none());
        assert!(confined.refusal("billing:events").is_some());
    }
}

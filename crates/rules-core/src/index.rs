//! The in-memory rule index: from an event to the few rules that could match it.
//!
//! Rules are grouped by livestream, then by event type, with `"*"` rules kept apart,
//! so finding candidates is two hash lookups and never scans another livestream's
//! rules. Adding, replacing or removing one rule touches only its own livestream.
//! Only enabled rules are held.

use rustc_hash::FxHashMap;
use std::sync::Arc;
use uuid::Uuid;

use crate::compiled::CompiledRule;
use crate::event::Event;

#[derive(Debug, Default, Clone)]
pub struct RuleIndex {
    rules: FxHashMap<Uuid, Arc<CompiledRule>>,
    streams: FxHashMap<Uuid, StreamRules>,
}

#[derive(Debug, Default, Clone)]
struct StreamRules {
    by_type: FxHashMap<Box<str>, Vec<Arc<CompiledRule>>>,
    any_type: Vec<Arc<CompiledRule>>,
}

impl StreamRules {
    fn is_empty(&self) -> bool {
        self.by_type.is_empty() && self.any_type.is_empty()
    }
}

impl RuleIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index from many rules at once (start-up, reconcile).
    pub fn from_rules(rules: impl IntoIterator<Item = Arc<CompiledRule>>) -> Self {
        let mut index = Self::new();
        for rule in rules {
            index.upsert(rule);
        }
        index
    }

    /// Number of rules held.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, id: Uuid) -> Option<&Arc<CompiledRule>> {
        self.rules.get(&id)
    }

    /// Adds or replaces a rule; a disabled rule is removed instead.
    pub fn upsert(&mut self, rule: Arc<CompiledRule>) {
        self.remove(rule.id());
        if !rule.rule().spec.enabled {
            return;
        }
        let stream = self.streams.entry(rule.livestream_id()).or_default();
        if rule.any_type() {
            stream.any_type.push(Arc::clone(&rule));
        } else {
            for event_type in rule.event_types() {
                stream
                    .by_type
                    .entry(event_type.as_str().into())
                    .or_default()
                    .push(Arc::clone(&rule));
            }
        }
        self.rules.insert(rule.id(), rule);
    }

    /// Removes a rule; returns it when it was held.
    pub fn remove(&mut self, id: Uuid) -> Option<Arc<CompiledRule>> {
        let rule = self.rules.remove(&id)?;
        let livestream_id = rule.livestream_id();
        if let Some(stream) = self.streams.get_mut(&livestream_id) {
            if rule.any_type() {
                stream.any_type.retain(|r| r.id() != id);
            } else {
                for event_type in rule.event_types() {
                    if let Some(list) = stream.by_type.get_mut(event_type.as_str()) {
                        list.retain(|r| r.id() != id);
                        if list.is_empty() {
                            stream.by_type.remove(event_type.as_str());
                        }
                    }
                }
            }
            if stream.is_empty() {
                self.streams.remove(&livestream_id);
            }
        }
        Some(rule)
    }

    /// Rules of the event's livestream listening to its type (or to every type).
    pub fn candidates<'a>(
        &'a self,
        event: &Event,
    ) -> impl Iterator<Item = &'a Arc<CompiledRule>> + 'a {
        let stream = self.streams.get(&event.livestream_id);
        let typed = stream
            .and_then(|s| s.by_type.get(event.event_type()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let any = stream.map(|s| s.any_type.as_slice()).unwrap_or_default();
        typed.iter().chain(any)
    }

    /// Rules whose trigger fires for `event` (before threshold and cooldown).
    pub fn matching<'a>(
        &'a self,
        event: &'a Event,
    ) -> impl Iterator<Item = &'a Arc<CompiledRule>> + 'a {
        self.candidates(event)
            .filter(move |rule| rule.condition_holds(event))
    }

    /// Every rule held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledRule>> {
        self.rules.values()
    }
}

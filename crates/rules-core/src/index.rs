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

/// An event type named by some rule, as a number: the candidates of an event are
/// found by one lookup of (livestream, type number), and the few type names are
/// always in cache.
type TypeId = u64;

#[derive(Debug, Default, Clone)]
pub struct RuleIndex {
    rules: FxHashMap<Uuid, Arc<CompiledRule>>,
    streams: FxHashMap<Uuid, StreamRules>,
    /// The rules of a livestream listening to a type its rules name: those of the type,
    /// then those of every type.
    candidates: FxHashMap<(Uuid, TypeId), Box<[Arc<CompiledRule>]>>,
    /// A livestream's rules of every type, for the types none of its rules names.
    any_type: FxHashMap<Uuid, Box<[Arc<CompiledRule>]>>,
    types: TypeNames,
}

/// A livestream's rules in the order they were added (what its lists are built
/// from), and the types it has lists for.
#[derive(Debug, Default, Clone)]
struct StreamRules {
    rules: Vec<Arc<CompiledRule>>,
    listed: Vec<TypeId>,
}

/// The event types rules name, numbered; a name no rule uses any more is forgotten.
#[derive(Debug, Default, Clone)]
struct TypeNames {
    /// Each name's number and how many rules name it.
    ids: FxHashMap<Box<str>, (TypeId, usize)>,
    next: TypeId,
}

impl TypeNames {
    fn get(&self, name: &str) -> Option<TypeId> {
        self.ids.get(name).map(|(id, _)| *id)
    }

    fn acquire(&mut self, name: &str) -> TypeId {
        if let Some((id, uses)) = self.ids.get_mut(name) {
            *uses += 1;
            return *id;
        }
        let id = self.next;
        self.next += 1;
        self.ids.insert(name.into(), (id, 1));
        id
    }

    fn release(&mut self, name: &str) {
        if let Some((_, uses)) = self.ids.get_mut(name) {
            *uses -= 1;
            if *uses == 0 {
                self.ids.remove(name);
            }
        }
    }
}

impl RuleIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index from many rules at once (start-up, reconcile).
    pub fn from_rules(rules: impl IntoIterator<Item = Arc<CompiledRule>>) -> Self {
        let mut index = Self::new();
        let mut touched = Vec::new();
        for rule in rules {
            touched.extend(index.release(rule.id()));
            touched.extend(index.hold(rule));
        }
        touched.sort_unstable();
        touched.dedup();
        for livestream in touched {
            index.rebuild(livestream);
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
        let removed = self.release(rule.id());
        let held = self.hold(rule);
        if let Some(livestream) = removed.filter(|ls| held != Some(*ls)) {
            self.rebuild(livestream);
        }
        if let Some(livestream) = held {
            self.rebuild(livestream);
        }
    }

    /// Removes a rule; returns it when it was held.
    pub fn remove(&mut self, id: Uuid) -> Option<Arc<CompiledRule>> {
        let rule = self.rules.get(&id).cloned()?;
        if let Some(livestream) = self.release(id) {
            self.rebuild(livestream);
        }
        Some(rule)
    }

    /// Holds an enabled rule not held (the caller released it); the caller rebuilds
    /// the lists of the livestream it joined, which it returns.
    fn hold(&mut self, rule: Arc<CompiledRule>) -> Option<Uuid> {
        if !rule.rule().spec.enabled {
            return None;
        }
        let livestream = rule.livestream_id();
        if !rule.any_type() {
            for event_type in rule.event_types() {
                self.types.acquire(event_type);
            }
        }
        self.streams
            .entry(livestream)
            .or_default()
            .rules
            .push(Arc::clone(&rule));
        self.rules.insert(rule.id(), rule);
        Some(livestream)
    }

    /// Lets go of a rule; returns the livestream whose lists must be rebuilt.
    fn release(&mut self, id: Uuid) -> Option<Uuid> {
        let rule = self.rules.remove(&id)?;
        let livestream = rule.livestream_id();
        if !rule.any_type() {
            for event_type in rule.event_types() {
                self.types.release(event_type);
            }
        }
        if let Some(stream) = self.streams.get_mut(&livestream) {
            stream.rules.retain(|r| r.id() != id);
        }
        Some(livestream)
    }

    /// Makes a livestream's candidate lists again from its rules.
    fn rebuild(&mut self, livestream: Uuid) {
        let Some(stream) = self.streams.get_mut(&livestream) else {
            return;
        };
        for type_id in stream.listed.drain(..) {
            self.candidates.remove(&(livestream, type_id));
        }
        let (any, typed): (Vec<_>, Vec<_>) = stream.rules.iter().partition(|r| r.any_type());
        let mut lists: FxHashMap<TypeId, Vec<Arc<CompiledRule>>> = FxHashMap::default();
        for rule in &typed {
            for event_type in rule.event_types() {
                if let Some(type_id) = self.types.get(event_type) {
                    let list = lists.entry(type_id).or_default();
                    // A rule naming a type twice is one candidate.
                    if !list.last().is_some_and(|last| Arc::ptr_eq(last, rule)) {
                        list.push(Arc::clone(rule));
                    }
                }
            }
        }
        for (type_id, mut list) in lists {
            list.extend(any.iter().map(|r| Arc::clone(r)));
            self.candidates.insert((livestream, type_id), list.into());
            stream.listed.push(type_id);
        }
        if any.is_empty() {
            self.any_type.remove(&livestream);
        } else {
            let any: Box<[Arc<CompiledRule>]> = any.into_iter().cloned().collect();
            self.any_type.insert(livestream, any);
        }
        if stream.rules.is_empty() {
            self.streams.remove(&livestream);
        }
    }

    /// Rules of the event's livestream listening to its type (or to every type).
    pub fn candidates<'a>(
        &'a self,
        event: &Event,
    ) -> impl Iterator<Item = &'a Arc<CompiledRule>> + 'a {
        let livestream = event.livestream_id;
        let listed = self
            .types
            .get(event.event_type())
            .and_then(|type_id| self.candidates.get(&(livestream, type_id)));
        listed
            .or_else(|| self.any_type.get(&livestream))
            .map(|list| &list[..])
            .unwrap_or_default()
            .iter()
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

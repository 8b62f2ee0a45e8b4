//! Streaming state of correlation rules: per group (the values of the `group-by` fields), the
//! events of the last `timespan`, and the aggregate the condition is checked on.
//!
//! Memory is bounded whatever the traffic: a group keeps at most `max_events_per_group` events
//! (the oldest are dropped and counted), at most `max_groups` groups are open per correlation (a
//! new group evicts the least recently updated one, counted), and groups idle for longer than
//! the timespan are expired. Windows slide with event time (`time_ms` of each event), not with
//! the wall clock. When a correlation fires, its group starts afresh, so one burst raises one
//! alert rather than one per further event.
//!
//! The per-group event cap bounds the counts too: an `event_count` threshold above
//! `max_events_per_group` can never be reached (the engine warns about such rules).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::ast::{CmpOp, CorrelationType};

/// Bounds on correlation state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorrelationLimits {
    /// Open groups per correlation rule.
    pub max_groups: usize,
    /// Events remembered per group.
    pub max_events_per_group: usize,
    /// Contributing event ids listed in a correlation match.
    pub max_event_ids: usize,
}

impl Default for CorrelationLimits {
    fn default() -> Self {
        CorrelationLimits {
            max_groups: 10_000,
            max_events_per_group: 1_000,
            max_event_ids: 20,
        }
    }
}

/// Counters of what the limits cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CorrelationStats {
    /// Groups evicted because `max_groups` was reached.
    pub groups_evicted: u64,
    /// Events dropped from a group because `max_events_per_group` was reached.
    pub events_dropped: u64,
    /// Groups removed because their events all left the window.
    pub groups_expired: u64,
    /// Groups open now (all correlations).
    pub groups_open: u64,
}

/// What an event contributes to a correlation group, as the engine hands it over: borrowed
/// text, so that an event whose value the window already holds allocates nothing.
#[derive(Clone, Debug)]
pub(crate) struct Contribution<'a> {
    pub time_ms: i64,
    /// Index of the referenced rule (in the correlation's `rules` list) the event matched.
    pub member: usize,
    /// The `field` value(s) for value_count (joined).
    pub text: Option<&'a str>,
    /// The `field` value for value_sum / value_avg.
    pub number: Option<f64>,
    /// Shared by every correlation the event feeds: allocated once per event.
    pub event_id: Option<Arc<str>>,
}

/// An event remembered in a group's window.
#[derive(Clone, Debug)]
struct Entry {
    time_ms: i64,
    member: usize,
    /// The key of the group's `distinct` map (shared, not copied).
    text: Option<Arc<str>>,
    number: Option<f64>,
    event_id: Option<Arc<str>>,
}

/// One group's window, with its aggregates kept up to date as events enter and leave, so that
/// checking the condition costs the same whatever the number of events in the window.
#[derive(Debug)]
struct Group {
    /// The group's key in [`Windows::index`] (to remove it there on expiry or eviction).
    key: Arc<str>,
    entries: VecDeque<Entry>,
    order_key: (i64, u64),
    /// value_count: occurrences of each distinct value in the window.
    distinct: HashMap<Arc<str>, u32>,
    /// value_sum / value_avg: sum and number of numeric values in the window.
    sum: f64,
    numbers: usize,
    /// temporal: events per referenced rule in the window.
    per_member: Vec<u32>,
}

impl Group {
    fn new(key: Arc<str>, members: usize, order_key: (i64, u64)) -> Self {
        Group {
            key,
            entries: VecDeque::new(),
            order_key,
            distinct: HashMap::new(),
            sum: 0.0,
            numbers: 0,
            per_member: vec![0; members],
        }
    }

    /// Counts an entering event and makes its window entry. A value already in the window is
    /// shared with the `distinct` map rather than copied.
    fn enter(&mut self, c: Contribution<'_>) -> Entry {
        let text = c.text.map(|t| match self.distinct.get_key_value(t) {
            Some((shared, _)) => {
                let shared = Arc::clone(shared);
                if let Some(n) = self.distinct.get_mut(t) {
                    *n += 1;
                }
                shared
            }
            None => {
                let owned: Arc<str> = Arc::from(t);
                self.distinct.insert(Arc::clone(&owned), 1);
                owned
            }
        });
        if let Some(v) = c.number {
            self.sum += v;
            self.numbers += 1;
        }
        if let Some(n) = self.per_member.get_mut(c.member) {
            *n += 1;
        }
        Entry {
            time_ms: c.time_ms,
            member: c.member,
            text,
            number: c.number,
            event_id: c.event_id,
        }
    }

    fn leave(&mut self, e: &Entry) {
        if let Some(text) = &e.text
            && let Some(n) = self.distinct.get_mut(text)
        {
            *n -= 1;
            if *n == 0 {
                self.distinct.remove(text);
            }
        }
        if let Some(v) = e.number {
            self.sum -= v;
            self.numbers = self.numbers.saturating_sub(1);
        }
        if let Some(n) = self.per_member.get_mut(e.member) {
            *n = n.saturating_sub(1);
        }
    }

    fn pop_front(&mut self) -> bool {
        match self.entries.pop_front() {
            Some(e) => {
                self.leave(&e);
                true
            }
            None => false,
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.distinct.clear();
        self.sum = 0.0;
        self.numbers = 0;
        self.per_member.iter_mut().for_each(|n| *n = 0);
    }
}

/// A correlation that fired.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fired {
    pub value: f64,
    pub event_ids: Vec<String>,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Windows of one correlation rule.
///
/// Groups live in a slab (`groups`, reused through `free`) found by key through `index`, so
/// that updating an existing group hashes its key once and copies nothing; the recency order
/// refers to groups by slab position.
#[derive(Debug)]
pub(crate) struct Windows {
    pub kind: CorrelationType,
    pub timespan_ms: i64,
    pub condition: Vec<(CmpOp, f64)>,
    pub members: usize,
    groups: Vec<Option<Group>>,
    free: Vec<usize>,
    index: HashMap<Arc<str>, usize>,
    /// (last update time, sequence) → slab position: finds the least recently updated group.
    order: BTreeMap<(i64, u64), usize>,
    seq: u64,
}

impl Windows {
    pub fn new(
        kind: CorrelationType,
        timespan_ms: i64,
        condition: Vec<(CmpOp, f64)>,
        members: usize,
    ) -> Self {
        Windows {
            kind,
            timespan_ms,
            condition,
            members,
            groups: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
        }
    }

    pub fn open_groups(&self) -> usize {
        self.index.len()
    }

    /// Drops the group at slab position `at` (already removed from `order`).
    fn remove_group(&mut self, at: usize) {
        if let Some(group) = self.groups.get_mut(at).and_then(Option::take) {
            self.index.remove(&group.key);
            self.free.push(at);
        }
    }

    /// Removes groups not updated within the timespan before `now_ms`.
    fn expire(&mut self, now_ms: i64, stats: &mut CorrelationStats) {
        let horizon = now_ms.saturating_sub(self.timespan_ms);
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0 >= horizon {
                break;
            }
            let at = entry.remove();
            self.remove_group(at);
            stats.groups_expired += 1;
        }
    }

    /// The slab position of the group for `key`, opening it (and evicting the least recently
    /// updated groups beyond the limit) when it is new.
    fn group_at(
        &mut self,
        key: &str,
        limits: &CorrelationLimits,
        stats: &mut CorrelationStats,
    ) -> usize {
        if let Some(&at) = self.index.get(key) {
            return at;
        }
        while self.index.len() >= limits.max_groups.max(1) {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.remove_group(oldest);
            stats.groups_evicted += 1;
        }
        let key: Arc<str> = Arc::from(key);
        // Not yet in `order`: the caller files it under this event's time.
        let group = Group::new(Arc::clone(&key), self.members, (i64::MIN, 0));
        let at = match self.free.pop() {
            Some(at) => {
                self.groups[at] = Some(group);
                at
            }
            None => {
                self.groups.push(Some(group));
                self.groups.len() - 1
            }
        };
        self.index.insert(key, at);
        at
    }

    /// Adds an event to its group and returns the firing, if the condition now holds.
    pub fn add(
        &mut self,
        key: &str,
        contribution: Contribution<'_>,
        limits: &CorrelationLimits,
        stats: &mut CorrelationStats,
    ) -> Option<Fired> {
        let now = contribution.time_ms;
        self.expire(now, stats);
        let at = self.group_at(key, limits, stats);
        self.seq += 1;
        let new_order = (now, self.seq);
        let group = self.groups.get_mut(at).and_then(Option::as_mut)?;
        self.order.remove(&group.order_key);
        group.order_key = new_order;
        self.order.insert(new_order, at);

        let horizon = now.saturating_sub(self.timespan_ms);
        while group.entries.front().is_some_and(|e| e.time_ms < horizon) {
            group.pop_front();
        }
        // Events normally arrive in time order; a late one is inserted in place.
        let position = group
            .entries
            .iter()
            .rposition(|e| e.time_ms <= now)
            .map_or(0, |p| p + 1);
        let entry = group.enter(contribution);
        group.entries.insert(position, entry);
        while group.entries.len() > limits.max_events_per_group.max(1) {
            group.pop_front();
            stats.events_dropped += 1;
        }

        let value = aggregate(self.kind, self.members, group);
        let holds = if self.condition.is_empty() {
            value >= self.members as f64
        } else {
            self.condition.iter().all(|(op, t)| op.holds(value, *t))
        };
        if !holds {
            return None;
        }
        let mut event_ids: Vec<String> = Vec::new();
        for e in group.entries.iter().rev() {
            if event_ids.len() >= limits.max_event_ids {
                break;
            }
            if let Some(id) = &e.event_id
                && !event_ids.iter().any(|seen| seen.as_str() == id.as_ref())
            {
                event_ids.push(id.to_string());
            }
        }
        event_ids.reverse();
        let fired = Fired {
            value,
            event_ids,
            first_ms: group.entries.front().map_or(now, |e| e.time_ms),
            last_ms: group.entries.back().map_or(now, |e| e.time_ms),
        };
        group.clear();
        Some(fired)
    }
}

/// The number the condition is compared with.
fn aggregate(kind: CorrelationType, members: usize, group: &Group) -> f64 {
    match kind {
        CorrelationType::EventCount => group.entries.len() as f64,
        CorrelationType::ValueCount => group.distinct.len() as f64,
        CorrelationType::ValueSum => group.sum,
        CorrelationType::ValueAvg => {
            if group.numbers == 0 {
                0.0
            } else {
                group.sum / group.numbers as f64
            }
        }
        CorrelationType::Temporal => group.per_member.iter().filter(|n| **n > 0).count() as f64,
        CorrelationType::TemporalOrdered => {
            // Length of the longest prefix of the rule list seen in order (greedy is optimal
            // for a subsequence test).
            let mut next = 0;
            for e in &group.entries {
                if next < members && e.member == next {
                    next += 1;
                }
            }
            next as f64
        }
    }
}

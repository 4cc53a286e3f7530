//! What the stages of the worker pass each other, and the helpers every stage uses:
//! the entry and its in-flight permit, the finished entry, and the retry of a step
//! that must not be skipped. Below the stages (consume → process → actions →
//! record): nothing here depends on them.

use rules_store::db::record::Decided;
use rules_store::streams::{Body, EntryId, StreamEntry};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use rules_store::backoff;

/// One stream entry on its way through the worker. Holds its in-flight ticket
/// until it is acknowledged.
pub struct Entry {
    pub stream: Arc<str>,
    pub id: EntryId,
    pub body: Body,
    /// How many times it has been delivered, this time included.
    pub deliveries: u64,
    pub ticket: Option<Ticket>,
    /// Its places in the lanes of the webhook destinations it calls.
    pub lanes: Option<LaneGuard>,
}

impl Entry {
    pub fn new(stream: &Arc<str>, entry: StreamEntry, deliveries: u64) -> Self {
        Self {
            stream: Arc::clone(stream),
            id: entry.id,
            body: entry.body,
            deliveries,
            ticket: None,
            lanes: None,
        }
    }

    /// What it counts against `worker.max_in_flight_bytes`: its fields as read,
    /// and a fixed overhead.
    pub fn size(&self) -> usize {
        let fields = match &self.body {
            Body::Fields(fields) => fields.iter().map(|(k, v)| k.len() + v.len()).sum(),
            Body::Deleted => 0,
            Body::Malformed(detail) => detail.len(),
        };
        fields + ENTRY_OVERHEAD_BYTES
    }

    /// The claim token of this entry in the gate: stream and id.
    pub fn token(&self) -> String {
        rules_store::streams::token(&self.stream, self.id)
    }
}

/// An entry done with: what to record, then acknowledge.
pub struct Done {
    pub entry: Entry,
    pub decided: Decided,
    /// When its batch was read, for the batch-latency metric.
    pub read_at: Instant,
}

impl Done {
    /// Nothing to record: only the acknowledgement.
    pub fn ack_only(entry: Entry, read_at: Instant) -> Self {
        Self {
            entry,
            decided: Decided::default(),
            read_at,
        }
    }
}

/// Batches waiting for the processor from one source (a stream's reader, the
/// claimer); the source may hold its next, waiting to send it. More than one, so
/// that a source's small reads made while the processor is busy wait as one batch
/// (see [`Inlets::recv`]).
const INLET_CAPACITY: usize = 4;

/// Where the processor takes its batches from: an inlet per source, taken in turn
/// when several have a batch waiting, so a quiet stream's batch waits behind at
/// most one of a busy stream's backlog, not behind a queue of them (with one
/// queue for all, events paced at 20,000 a second waited 50 ms at p99 behind a
/// draining backlog's batches).
///
/// A batch is taken together with the batches waiting behind it in the same inlet,
/// up to `worker.batch_size` entries: the processor's batches are made when it is
/// ready for one, not when the reads were. Each batch pays round trips of its own
/// (PostgreSQL's lookup, the gate), so reads of a few entries each, made while the
/// processor was busy, would otherwise queue as as many batches, each waiting for
/// the ones before it.
pub struct Inlets {
    receivers: Vec<mpsc::Receiver<Vec<Entry>>>,
    /// Per inlet: a batch taken from it that did not fit beside the one before it,
    /// served first at its next turn.
    held_over: Vec<Option<Vec<Entry>>>,
    next: usize,
    /// `worker.batch_size`: batches taken together stay within it.
    batch_size: usize,
}

impl Inlets {
    pub fn new(batch_size: usize) -> Self {
        Self {
            receivers: Vec::new(),
            held_over: Vec::new(),
            next: 0,
            batch_size: batch_size.max(1),
        }
    }

    /// A new inlet, for one source.
    pub fn sender(&mut self) -> mpsc::Sender<Vec<Entry>> {
        let (tx, rx) = mpsc::channel(INLET_CAPACITY);
        self.receivers.push(rx);
        self.held_over.push(None);
        tx
    }

    /// The next batch, from the first inlet with one after the last served, with
    /// what waits behind it there (up to `batch_size` entries, in read order);
    /// `None` once every source is gone and everything sent was taken.
    pub async fn recv(&mut self) -> Option<Vec<Entry>> {
        let (k, mut batch) = std::future::poll_fn(|cx| {
            let n = self.receivers.len();
            let mut closed = 0;
            for i in 0..n {
                let k = (self.next + i) % n;
                if let Some(batch) = self.held_over[k].take() {
                    return Poll::Ready(Some((k, batch)));
                }
                match self.receivers[k].poll_recv(cx) {
                    Poll::Ready(Some(batch)) => return Poll::Ready(Some((k, batch))),
                    Poll::Ready(None) => closed += 1,
                    Poll::Pending => {}
                }
            }
            if closed == n {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        })
        .await?;
        self.next = (k + 1) % self.receivers.len();
        while batch.len() < self.batch_size {
            let Ok(more) = self.receivers[k].try_recv() else {
                break;
            };
            if batch.len() + more.len() > self.batch_size {
                self.held_over[k] = Some(more);
                break;
            }
            batch.extend(more);
        }
        Some(batch)
    }
}

/// The (stream, id) of every entry in flight.
/// (FxHash: an insert and a removal per entry read, 5% of a drain's worker with
/// the standard SipHash.)
type HeldIds = Arc<Mutex<FxHashSet<(Arc<str>, EntryId)>>>;

/// What an entry is counted as against `worker.max_in_flight_bytes` beside its
/// fields: the entry itself and its allocations, so a flood of empty entries is
/// bounded too.
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// Entries read and not yet acknowledged: bounded in number by
/// `worker.max_in_flight` and in size by `worker.max_in_flight_bytes`, and known by
/// id, so the heartbeat can keep them from looking abandoned and the claimer never
/// takes an entry this process is still working on.
///
/// The number is taken before a read (it is the read's COUNT); the size only once
/// the entries are in hand. So that a read waiting for room holds little beyond the
/// budget, a reader asks for no more entries than the size room left holds at the
/// typical size of the entries admitted lately ([`InFlight::fitting`]).
#[derive(Clone)]
pub struct InFlight {
    room: Arc<Semaphore>,
    /// `worker.max_in_flight`.
    limit: usize,
    bytes: Arc<Semaphore>,
    /// `worker.max_in_flight_bytes`: a read larger than the whole budget waits for
    /// all of it, and then takes no more.
    byte_limit: usize,
    /// The typical size of an entry lately (a moving average over reads).
    typical: Arc<AtomicUsize>,
    ids: HeldIds,
}

impl InFlight {
    pub fn new(limit: usize, byte_limit: usize) -> Self {
        // A tokio semaphore holds at most `usize::MAX >> 3` permits, and a request
        // asks for at most `u32::MAX`.
        let byte_limit = byte_limit.clamp(1, u32::MAX as usize);
        Self {
            room: Arc::new(Semaphore::new(limit)),
            limit,
            bytes: Arc::new(Semaphore::new(byte_limit)),
            byte_limit,
            typical: Arc::new(AtomicUsize::new(ENTRY_OVERHEAD_BYTES)),
            ids: Arc::default(),
        }
    }

    /// How many of `wanted` entries the size room left holds at the typical size
    /// lately: at least one, so a read always makes progress.
    pub fn fitting(&self, wanted: usize) -> usize {
        let typical = self.typical.load(Ordering::Relaxed).max(1);
        (self.bytes.available_permits() / typical).clamp(1, wanted.max(1))
    }

    /// Waits for room for `n` entries; `None` once the worker is closing.
    pub async fn acquire(&self, n: usize) -> Option<Permits> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.room).acquire_many_owned(n).await.ok()?;
        Some(self.permits(permit))
    }

    /// Room for `n` entries now, or `None` (busy).
    pub fn try_acquire(&self, n: usize) -> Option<Permits> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.room).try_acquire_many_owned(n).ok()?;
        Some(self.permits(permit))
    }

    fn permits(&self, permit: OwnedSemaphorePermit) -> Permits {
        Permits {
            permit,
            in_flight: self.clone(),
        }
    }

    /// Room for how many more entries now.
    pub fn available(&self) -> usize {
        self.room.available_permits()
    }

    /// Entries in flight now.
    pub fn in_use(&self) -> usize {
        self.limit.saturating_sub(self.room.available_permits())
    }

    /// Bytes of the entries in flight now.
    pub fn bytes_in_use(&self) -> usize {
        self.byte_limit
            .saturating_sub(self.bytes.available_permits())
    }

    /// Whether this process holds entry `id` of `stream`.
    pub fn holds(&self, stream: &Arc<str>, id: EntryId) -> bool {
        self.lock().contains(&(Arc::clone(stream), id))
    }

    /// The ids held now, per stream.
    pub fn held(&self) -> BTreeMap<Arc<str>, Vec<EntryId>> {
        let mut by_stream: BTreeMap<Arc<str>, Vec<EntryId>> = BTreeMap::new();
        for (stream, id) in self.lock().iter() {
            by_stream.entry(Arc::clone(stream)).or_default().push(*id);
        }
        by_stream
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashSet<(Arc<str>, EntryId)>> {
        // A panic while holding this lock cannot leave the set inconsistent.
        self.ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Room for a batch's number of entries; [`Permits::admit`] adds room for their
/// size and hands both out, one ticket per entry.
pub struct Permits {
    permit: OwnedSemaphorePermit,
    in_flight: InFlight,
}

impl Permits {
    /// Waits for room for the size of `entries` (all of the budget for a read
    /// larger than it), then gives every entry its ticket; room for entries not
    /// read is released. False once the worker is closing.
    pub async fn admit(mut self, entries: &mut [Entry]) -> bool {
        let in_flight = &self.in_flight;
        let total = entries.iter().map(Entry::size).sum::<usize>();
        if let Some(average) = total.checked_div(entries.len()) {
            // A quarter of each read's average: a change of sizes shows within reads.
            let before = in_flight.typical.load(Ordering::Relaxed);
            in_flight
                .typical
                .store((before * 3 + average) / 4, Ordering::Relaxed);
        }
        let want = total.min(in_flight.byte_limit);
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        let Ok(mut bytes) = Arc::clone(&in_flight.bytes).acquire_many_owned(want).await else {
            return false;
        };
        let mut ids = in_flight.lock();
        for entry in entries.iter_mut() {
            let Some(permit) = self.permit.split(1) else {
                break;
            };
            // The last entries of a read larger than the budget share what is left.
            let size = entry.size().min(bytes.num_permits());
            let Some(bytes) = bytes.split(size) else {
                break;
            };
            ids.insert((Arc::clone(&entry.stream), entry.id));
            entry.ticket = Some(Ticket {
                held: Some(Held {
                    permit,
                    bytes,
                    ids: Arc::clone(&in_flight.ids),
                    stream: Arc::clone(&entry.stream),
                    id: entry.id,
                }),
            });
        }
        true
    }
}

/// One entry's place in flight; given back when the entry is dropped (acknowledged,
/// or abandoned at shutdown), or with others by [`release_tickets`].
pub struct Ticket {
    /// Taken out when given back with others (a ticket is dropped afterwards).
    held: Option<Held>,
}

struct Held {
    permit: OwnedSemaphorePermit,
    bytes: OwnedSemaphorePermit,
    ids: HeldIds,
    stream: Arc<str>,
    id: EntryId,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            release([held]);
        }
    }
}

/// Gives back the places of the entries in `entries` (the recorder's, after a
/// commit) together: one lock of the held ids and one return of room for them
/// all, where a ticket dropped alone takes both (a drain spent 3% of the worker's
/// CPU dropping tickets one by one). Entries keep no ticket afterwards.
pub fn release_tickets<'a>(entries: impl IntoIterator<Item = &'a mut Entry>) {
    release(
        entries
            .into_iter()
            .filter_map(|e| e.ticket.take().and_then(|mut t| t.held.take())),
    );
}

fn release(held: impl IntoIterator<Item = Held>) {
    let mut held = held.into_iter();
    let Some(first) = held.next() else {
        return;
    };
    let Held {
        permit: mut room,
        bytes: mut size,
        ids: set,
        stream,
        id,
    } = first;
    let mut ids = set
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ids.remove(&(stream, id));
    for h in held {
        ids.remove(&(h.stream, h.id));
        room.merge(h.permit);
        size.merge(h.bytes);
    }
    drop(ids);
    // Dropping the merged permits returns the room of every entry at once.
    drop(room);
    drop(size);
}

/// Records the time spent in one stage of a batch (`batch_stage_seconds`); returns
/// now, the start of the next.
pub fn stage_done(stage: &'static str, since: Instant) -> Instant {
    let now = Instant::now();
    metrics::histogram!("batch_stage_seconds", "stage" => stage)
        .record(now.duration_since(since).as_secs_f64());
    now
}

/// Longest error or reason kept in a record, dead letter or log line, in bytes:
/// they name a field and a problem, never carry a payload.
const MAX_REASON_BYTES: usize = 512;

/// `reason`, cut to a bounded length at a character boundary.
pub fn bounded(reason: &str) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason.to_owned();
    }
    format!("{}…", rules_core::truncated(reason, MAX_REASON_BYTES))
}

/// Entries in flight per webhook destination (host:port), each destination capped
/// (`worker.max_in_flight_per_destination`): a slow or hung destination holds at
/// most its lane, and the rest of the in-flight budget stays for everyone else.
#[derive(Clone)]
pub struct Lanes {
    cap: usize,
    counts: Arc<Mutex<std::collections::HashMap<Arc<str>, usize>>>,
}

impl Lanes {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            counts: Arc::default(),
        }
    }

    /// A place in the lane of every destination in `hosts`, or `None` (and no place
    /// taken) when any of them is full.
    pub fn admit(&self, hosts: Vec<Arc<str>>) -> Option<LaneGuard> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hosts
            .iter()
            .any(|h| counts.get(h).copied().unwrap_or(0) >= self.cap)
        {
            return None;
        }
        for host in &hosts {
            *counts.entry(Arc::clone(host)).or_default() += 1;
        }
        Some(LaneGuard {
            counts: Arc::clone(&self.counts),
            hosts,
        })
    }

    /// Entries in flight to `host` now.
    pub fn in_lane(&self, host: &str) -> usize {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.get(host).copied().unwrap_or(0)
    }
}

/// An entry's places in its destinations' lanes, given back when it is dropped.
pub struct LaneGuard {
    counts: Arc<Mutex<std::collections::HashMap<Arc<str>, usize>>>,
    hosts: Vec<Arc<str>>,
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for host in &self.hosts {
            if let Some(n) = counts.get_mut(host) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(host);
                }
            }
        }
    }
}

/// Lets a kind of warning through at most `per_second` times a second, and says how
/// many were held back since the last one let through: a failing destination under
/// load logs a few lines a second, not one per event.
pub struct LogBudget {
    per_second: u64,
    second: std::sync::atomic::AtomicU64,
    used: std::sync::atomic::AtomicU64,
    held_back: std::sync::atomic::AtomicU64,
}

impl LogBudget {
    pub const fn new(per_second: u64) -> Self {
        Self {
            per_second,
            second: std::sync::atomic::AtomicU64::new(0),
            used: std::sync::atomic::AtomicU64::new(0),
            held_back: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(held back before this one)` when this line may be logged.
    pub fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.second.swap(now, Relaxed) != now {
            self.used.store(0, Relaxed);
        }
        if self.used.fetch_add(1, Relaxed) < self.per_second {
            Some(self.held_back.swap(0, Relaxed))
        } else {
            self.held_back.fetch_add(1, Relaxed);
            None
        }
    }
}

/// First and longest pause between tries of a step.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Runs `step` until it succeeds; gives up (`None`) only when the worker is shutting
/// down, in which case the batch's entries stay pending and are redelivered.
pub async fn retry_step<T, F, Fut, E>(token: &CancellationToken, what: &str, step: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut delays = backoff::delays(RETRY_MIN, RETRY_MAX);
    loop {
        match step().await {
            Ok(v) => return Some(v),
            Err(e) => {
                metrics::counter!("step_failures_total", "step" => what.to_owned()).increment(1);
                tracing::warn!(error = %e, step = what, "failed; retrying");
                if token.is_cancelled() {
                    return None;
                }
                let delay = delays.next().unwrap_or(RETRY_MAX);
                tokio::select! {
                    _ = token.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_lane_admits_nothing_more_and_frees_on_drop() {
        let lanes = Lanes::new(2);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a:443"), Arc::from("b:443"));
        let first = lanes.admit(vec![Arc::clone(&a)]).expect("room");
        let second = lanes
            .admit(vec![Arc::clone(&a), Arc::clone(&b)])
            .expect("room");
        assert!(lanes.admit(vec![Arc::clone(&a)]).is_none(), "a is full");
        assert!(lanes.admit(vec![Arc::clone(&b), Arc::clone(&a)]).is_none());
        assert_eq!(
            lanes.in_lane("b:443"),
            1,
            "a refused admission takes no place"
        );
        assert!(lanes.admit(vec![Arc::clone(&b)]).is_some(), "b has room");
        drop(first);
        assert!(lanes.admit(vec![Arc::clone(&a)]).is_some());
        drop(second);
        assert_eq!(lanes.in_lane("b:443"), 0);
    }

    fn entries(stream: &Arc<str>, n: u64) -> Vec<Entry> {
        (1..=n)
            .map(|seq| {
                let entry = rules_store::streams::StreamEntry {
                    id: EntryId { ms: 1, seq },
                    body: Body::Deleted,
                };
                Entry::new(stream, entry, 1)
            })
            .collect()
    }

    /// Room for the whole of `batch`, in number and size; false when closing.
    async fn admit_all(in_flight: &InFlight, batch: &mut [Entry]) -> bool {
        let permits = in_flight.acquire(batch.len()).await.expect("room");
        permits.admit(batch).await
    }

    fn entries_of(stream: &Arc<str>, sizes: &[usize]) -> Vec<Entry> {
        sizes
            .iter()
            .zip(1..)
            .map(|(&size, seq)| {
                let entry = rules_store::streams::StreamEntry {
                    id: EntryId { ms: 2, seq },
                    body: Body::Fields(vec![(b"event".to_vec(), vec![b'x'; size])]),
                };
                Entry::new(stream, entry, 1)
            })
            .collect()
    }

    #[tokio::test]
    async fn tickets_released_together_give_back_their_room_and_ids_once() {
        let in_flight = InFlight::new(10, 1 << 20);
        let stream: Arc<str> = Arc::from("s");
        let mut batch = entries(&stream, 4);
        assert!(admit_all(&in_flight, &mut batch).await);
        assert_eq!(in_flight.in_use(), 4);
        assert_eq!(in_flight.bytes_in_use(), 4 * ENTRY_OVERHEAD_BYTES);
        assert!(in_flight.holds(&stream, EntryId { ms: 1, seq: 3 }));

        release_tickets(&mut batch[..3]);
        assert_eq!(in_flight.in_use(), 1, "three places back at once");
        assert!(!in_flight.holds(&stream, EntryId { ms: 1, seq: 3 }));
        assert!(in_flight.holds(&stream, EntryId { ms: 1, seq: 4 }));

        // Dropping released entries gives nothing back a second time; the one
        // still holding its ticket gives its place back when dropped.
        drop(batch);
        assert_eq!(in_flight.in_use(), 0);
        assert_eq!(in_flight.available(), 10, "no room counted twice");
        assert_eq!(in_flight.bytes_in_use(), 0, "no size counted twice");
        assert!(in_flight.held().is_empty());
    }

    #[tokio::test]
    async fn inlets_are_served_in_turn_and_close_when_every_source_is_gone() {
        let stream: Arc<str> = Arc::from("s");
        let mut inlets = Inlets::new(1000);
        let (busy, quiet) = (inlets.sender(), inlets.sender());
        let read = |seq| entries(&stream, seq).split_off(seq as usize - 1);
        busy.send(read(1)).await.expect("send");
        let first = inlets.recv().await.expect("a batch");
        // The busy source's next batch arrives before the quiet one's, and is
        // served after it.
        busy.send(read(3)).await.expect("send");
        quiet.send(read(2)).await.expect("send");
        let second = inlets.recv().await.expect("a batch");
        let third = inlets.recv().await.expect("a batch");
        let seqs: Vec<u64> = [first, second, third].iter().map(|b| b[0].id.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        drop(busy);
        quiet.send(read(4)).await.expect("send");
        drop(quiet);
        assert_eq!(inlets.recv().await.map(|b| b[0].id.seq), Some(4));
        assert!(inlets.recv().await.is_none(), "every source gone");
    }

    #[tokio::test]
    async fn batches_waiting_in_an_inlet_are_taken_as_one_within_the_batch_size() {
        let stream: Arc<str> = Arc::from("s");
        let mut inlets = Inlets::new(5);
        let (busy, quiet) = (inlets.sender(), inlets.sender());
        let read = |first: u64, last: u64| entries(&stream, last).split_off(first as usize - 1);
        let seqs = |batch: Vec<Entry>| batch.iter().map(|e| e.id.seq).collect::<Vec<u64>>();
        // Three small reads of the busy stream made while the processor was busy.
        for (first, last) in [(1, 2), (3, 4), (5, 6)] {
            busy.send(read(first, last)).await.expect("send");
        }
        quiet.send(read(7, 7)).await.expect("send");
        // The first two together; the third would pass the batch size and waits.
        assert_eq!(
            seqs(inlets.recv().await.expect("a batch")),
            vec![1, 2, 3, 4]
        );
        // The quiet stream's turn is not lost to the merge.
        assert_eq!(seqs(inlets.recv().await.expect("a batch")), vec![7]);
        // The one held over comes first at the busy stream's next turn, with what
        // arrived behind it, in read order.
        busy.send(read(8, 8)).await.expect("send");
        assert_eq!(seqs(inlets.recv().await.expect("a batch")), vec![5, 6, 8]);
        // A batch held over is still served after its source is gone.
        busy.send(read(9, 11)).await.expect("send");
        busy.send(read(12, 14)).await.expect("send");
        drop((busy, quiet));
        assert_eq!(seqs(inlets.recv().await.expect("a batch")), vec![9, 10, 11]);
        assert_eq!(
            seqs(inlets.recv().await.expect("a batch")),
            vec![12, 13, 14]
        );
        assert!(inlets.recv().await.is_none(), "every source gone");
    }

    #[tokio::test]
    async fn entries_wait_for_room_for_their_size() {
        let limit = 4 * 1024;
        let in_flight = InFlight::new(100, limit);
        let stream: Arc<str> = Arc::from("s");
        let mut first = entries_of(&stream, &[1000, 1000, 1000]);
        let size: usize = first.iter().map(Entry::size).sum();
        assert_eq!(size, 3 * (1000 + "event".len() + ENTRY_OVERHEAD_BYTES));
        assert!(admit_all(&in_flight, &mut first).await);
        assert_eq!(in_flight.bytes_in_use(), size);

        // Room for their number, not for their size: the second read waits until
        // the first is acknowledged.
        let mut second = entries_of(&stream, &[1000, 1000]);
        let permits = in_flight.acquire(2).await.expect("room");
        let waiting = tokio::spawn(async move {
            let admitted = permits.admit(&mut second).await;
            (admitted, second)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "admitted beyond the size budget");
        release_tickets(&mut first);
        let (admitted, second) = waiting.await.expect("admit");
        assert!(admitted);
        assert_eq!(
            in_flight.bytes_in_use(),
            second.iter().map(Entry::size).sum::<usize>()
        );
        drop(second);
        assert_eq!(in_flight.bytes_in_use(), 0);
    }

    #[tokio::test]
    async fn a_read_larger_than_the_whole_budget_takes_all_of_it() {
        let limit = 4 * 1024;
        let in_flight = InFlight::new(100, limit);
        let stream: Arc<str> = Arc::from("s");
        let mut huge = entries_of(&stream, &[3000, 3000, 3000]);
        assert!(admit_all(&in_flight, &mut huge).await);
        assert!(
            huge.iter().all(|e| e.ticket.is_some()),
            "every entry admitted"
        );
        assert_eq!(in_flight.bytes_in_use(), limit);
        assert!(in_flight.holds(&stream, EntryId { ms: 2, seq: 3 }));
        drop(huge);
        assert_eq!(in_flight.bytes_in_use(), 0);
        assert_eq!(in_flight.in_use(), 0);
    }

    #[tokio::test]
    async fn reads_ask_for_what_the_size_room_holds_at_the_typical_size() {
        let limit = 64 * 1024;
        let in_flight = InFlight::new(1000, limit);
        let stream: Arc<str> = Arc::from("s");
        assert_eq!(in_flight.fitting(100), 100, "small entries: the whole read");
        // Reads of 8 KB entries move the typical size towards theirs.
        for _ in 0..12 {
            let mut batch = entries_of(&stream, &[8 * 1024; 2]);
            assert!(admit_all(&in_flight, &mut batch).await);
        }
        let held = in_flight.bytes_in_use();
        let typical = 8 * 1024 + "event".len() + ENTRY_OVERHEAD_BYTES;
        let fits = (limit - held) / typical;
        let asked = in_flight.fitting(100);
        assert!(
            (fits..=fits + 1).contains(&asked),
            "{asked} asked, {fits} fit"
        );
        assert_eq!(in_flight.fitting(0), 1, "a read always asks for one");
    }

    #[test]
    fn a_log_budget_lets_a_few_through_a_second_and_counts_the_rest() {
        let budget = LogBudget::new(3);
        let allowed: Vec<Option<u64>> = (0..10).map(|_| budget.allow()).collect();
        let through = allowed.iter().filter(|a| a.is_some()).count();
        // Within one second three pass; across a second boundary at most six.
        assert!((3..=6).contains(&through), "{allowed:?}");
        assert_eq!(allowed[0], Some(0));
    }

    #[test]
    fn reasons_are_bounded_at_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(400);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_REASON_BYTES + "…".len());
        assert!(cut.ends_with('…'));
    }
}

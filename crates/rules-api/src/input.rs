//! Reading the workers' input streams from the API, read-only: the newest entries of
//! every input stream within a time range (merged across shards by entry time), and
//! the event an entry holds. The backtest replays them; the console's recent events
//! list them.

use chrono::{DateTime, Utc};
use rules_core::Event;
use rules_store::streams::{self, Body, EntryId, StreamEntry};

use crate::error::ApiError;
use crate::state::AppState;

/// Entries read per XREVRANGE.
const PAGE: usize = 10_000;

/// The event an entry holds (added at `at`), if it is a readable one.
pub fn read_event(entry: &StreamEntry, at: DateTime<Utc>, max_event_bytes: usize) -> Option<Event> {
    match &entry.body {
        Body::Fields(fields) => Event::from_stream_fields(fields, Some(at), max_event_bytes).ok(),
        Body::Deleted | Body::Malformed(_) => None,
    }
}

/// The newest `limit` entries of all input streams within `[from, to]`, oldest
/// first, and whether older ones in the range were left out.
pub async fn read_entries(
    state: &AppState,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<(Vec<(std::sync::Arc<str>, StreamEntry)>, bool), ApiError> {
    let start = EntryId::first_at(from)
        .ok_or_else(|| ApiError::invalid("from", "must not be before 1970"))?;
    let last =
        EntryId::last_at(to).ok_or_else(|| ApiError::invalid("to", "must not be before 1970"))?;
    let mut conn = state.redis().await?;
    let mut all: Vec<(std::sync::Arc<str>, StreamEntry)> = Vec::new();
    let mut truncated = false;
    for stream in state.input_streams.iter() {
        let name: std::sync::Arc<str> = stream.as_str().into();
        let (mut end, mut exclusive) = (last, false);
        let mut taken = 0;
        loop {
            let page = PAGE.min(limit - taken);
            let entries =
                streams::range_rev(&mut conn, stream, end, exclusive, start, page).await?;
            let n = entries.len();
            if let Some(oldest) = entries.last() {
                (end, exclusive) = (oldest.id, true);
            }
            all.extend(entries.into_iter().map(|e| (name.clone(), e)));
            taken += n;
            if n < page {
                break;
            }
            if taken >= limit {
                // Full: are there older entries in the range that were left out?
                let more = streams::range_rev(&mut conn, stream, end, exclusive, start, 1).await?;
                truncated |= !more.is_empty();
                break;
            }
        }
    }
    // Shards merged by time; the newest `limit` overall, replayed oldest first.
    all.sort_by_key(|(_, e)| std::cmp::Reverse(e.id));
    if all.len() > limit {
        all.truncate(limit);
        truncated = true;
    }
    all.reverse();
    Ok((all, truncated))
}

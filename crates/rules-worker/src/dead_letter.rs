//! The dead-letter sink: entries that cannot be processed (unreadable, or delivered
//! `worker.max_deliveries` times) are copied to `worker.dead_letter_stream` with the
//! reason, then acknowledged like any finished entry.

use rules_store::streams::{self, Body, DeadLetter, StreamError};

use crate::context::Context;
use crate::pipeline::Entry;

/// Copies `letters` (entry, reason) to the dead-letter stream in one pipeline.
pub async fn send(ctx: &Context, letters: &[(Entry, String)]) -> Result<(), StreamError> {
    let mut conn = ctx.redis.get().await?;
    let letters: Vec<DeadLetter<'_>> = letters
        .iter()
        .map(|(entry, reason)| DeadLetter {
            stream: &entry.stream,
            id: entry.id,
            fields: match &entry.body {
                Body::Fields(fields) => fields,
                Body::Deleted | Body::Malformed(_) => &[],
            },
            reason,
        })
        .collect();
    streams::dead_letter(
        &mut conn,
        &ctx.settings.dead_letter_stream,
        ctx.settings.dead_letter_maxlen,
        &letters,
    )
    .await
}

//! The live stream (`GET /api/v1/stream`): Server-Sent Events named `tally`, one per
//! changed total, whichever worker process committed it.
//!
//! Every process LISTENs on the PostgreSQL channel that batches NOTIFY at commit, moves
//! its values in memory (`values`), and fans the changed totals out to its open streams.
//! A stream starts with the current totals (also after a reconnect, with or without
//! `Last-Event-ID`), and a client that fell behind gets the current totals again; a
//! listener that lost its connection reads every value again and sends each total that
//! changed meanwhile: a lost notification never leaves a dashboard stale.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, watch};

use super::AppState;
use super::schema::Tally;
use super::values::Values;
use crate::store::tallies::TotalChange;

/// How many changes a slow client may fall behind before it is sent the current totals.
pub const BUFFER: usize = 4096;

/// The state of one client's stream.
struct Client {
    receiver: broadcast::Receiver<TotalChange>,
    values: Arc<Values>,
    pending: VecDeque<TotalChange>,
    shutdown: watch::Receiver<bool>,
    next_id: u64,
}

fn event(change: &TotalChange, id: u64) -> Event {
    let tally = Tally { framework: &change.framework, code: &change.code, period: &change.period, value: change.value };
    Event::default().event("tally").id(id.to_string()).json_data(tally).expect("a total serializes")
}

/// Live totals (Server-Sent Events).
///
/// Starts with every current total (one `tally` event each, zeros included), then sends one
/// `tally` event whenever a total changes, whichever worker process changed it. A client
/// that falls behind is sent the current totals again. A reconnect (with or without
/// `Last-Event-ID`) starts again with the current totals; event ids count from 1 per
/// connection. A `:keep-alive` comment is sent every 15 s of silence.
#[utoipa::path(get, path = "/api/v1/stream", operation_id = "stream", tag = "indicators",
    params(("Last-Event-ID" = Option<String>, Header,
        description = "Accepted (browsers send it on reconnect); the stream restarts with the current totals either way.")),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "`text/event-stream`: events named `tally`, each with an `id` and a `data` line holding a `Tally` \
            object.")))]
pub async fn stream(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed together with reading the current totals, so no change falls in between.
    let (receiver, totals) = state.values.subscribe();
    let client = Client {
        receiver,
        values: state.values.clone(),
        pending: totals.into(),
        shutdown: state.shutdown.clone(),
        next_id: 1,
    };
    let events = futures::stream::unfold(client, |mut client| async move {
        loop {
            if let Some(change) = client.pending.pop_front() {
                let id = client.next_id;
                client.next_id += 1;
                return Some((Ok(event(&change, id)), client));
            }
            if *client.shutdown.borrow() {
                return None;
            }
            let next = tokio::select! {
                next = client.receiver.recv() => next,
                _ = client.shutdown.changed() => return None,
            };
            match next {
                Ok(change) => client.pending.push_back(change),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    client.pending = client.values.totals().into();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
}

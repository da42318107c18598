//! The live stream (`GET /api/v1/stream`): Server-Sent Events named `tally`, one per
//! changed total, whichever worker process committed it.
//!
//! Every process LISTENs on the PostgreSQL channel that batches NOTIFY at commit, and fans
//! the changes out to its open streams. A stream starts with the current totals (also after
//! a reconnect, with or without `Last-Event-ID`), and a client that fell behind, or a
//! listener that lost its connection, gets the current totals again: a lost notification
//! never leaves a dashboard stale.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use super::AppState;
use super::schema::Tally;
use crate::store::read;
use crate::store::tallies::{TALLY_CHANNEL, TotalChange};
use crate::telemetry::one_line;

/// How many changes a slow client may fall behind before it is sent the current totals.
pub const BUFFER: usize = 4096;

/// Relays the notifications of every worker process to this process's streams, until
/// shutdown.
pub async fn relay(pool: PgPool, sender: broadcast::Sender<TotalChange>, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                warn!(error = one_line(&e), "Cannot LISTEN for tally changes; retrying in 1 s.");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen(TALLY_CHANNEL).await {
            warn!(error = one_line(&e), "Cannot LISTEN for tally changes; retrying.");
            continue;
        }
        // Changes may have been missed while not listening.
        resend_current(&pool, &sender).await;
        loop {
            let next = tokio::select! {
                next = listener.try_recv() => next,
                _ = shutdown.changed() => return,
            };
            match next {
                Ok(Some(notification)) => match serde_json::from_str::<Vec<TotalChange>>(notification.payload()) {
                    Ok(changes) => {
                        for change in changes {
                            let _ = sender.send(change);
                        }
                    }
                    Err(e) => warn!(error = one_line(&e), "Unreadable tally notification."),
                },
                Ok(None) => {
                    debug!("Tally listener reconnecting.");
                    resend_current(&pool, &sender).await;
                }
                Err(e) => {
                    warn!(error = one_line(&e), "Tally listener lost; reconnecting.");
                    break;
                }
            }
        }
    }
}

async fn resend_current(pool: &PgPool, sender: &broadcast::Sender<TotalChange>) {
    if sender.receiver_count() == 0 {
        return;
    }
    match read::current_totals(pool).await {
        Ok(totals) => {
            for total in totals {
                let _ = sender.send(total);
            }
        }
        Err(e) => warn!(error = one_line(&e), "Cannot read the current totals."),
    }
}

/// The state of one client's stream.
struct Client {
    receiver: broadcast::Receiver<TotalChange>,
    pool: PgPool,
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
    // Subscribe before reading the current totals, so no change falls in between.
    let receiver = state.tallies.subscribe();
    let pending = read::current_totals(&state.pool).await.unwrap_or_default().into();
    let client = Client { receiver, pool: state.pool.clone(), pending, shutdown: state.shutdown.clone(), next_id: 1 };
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
                    client.pending = read::current_totals(&client.pool).await.unwrap_or_default().into();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
}

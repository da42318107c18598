//! Prometheus metrics: what the worker did, how long batches take, and whether its
//! dependencies answer. Rendered at `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::apply::Outcome;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns the handle that renders it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("ecpat_batch_duration_seconds".into()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("ecpat_batch_messages".into()),
                    &[1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0],
                )
            })
            .expect("bucket lists are not empty")
            .install_recorder()
            .expect("the metrics recorder is installed once")
    })
}

/// Records a committed batch.
pub fn batch_committed(messages: usize, outcome: &Outcome, took: Duration) {
    counter!("ecpat_events_applied_total").increment(outcome.applied as u64);
    counter!("ecpat_events_duplicate_total").increment(outcome.duplicates as u64);
    counter!("ecpat_events_stale_total").increment(outcome.stale as u64);
    for reason in &outcome.rejected {
        counter!("ecpat_rejections_total", "reason" => reason.as_str()).increment(1);
    }
    histogram!("ecpat_batch_messages").record(messages as f64);
    histogram!("ecpat_batch_duration_seconds").record(took.as_secs_f64());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    gauge!("ecpat_last_commit_timestamp_seconds").set(now.as_secs_f64());
}

/// Records a batch that will be retried (database unavailable).
pub fn batch_retried() {
    counter!("ecpat_batch_retries_total").increment(1);
}

/// Records a message returned to the queue because it cannot be applied.
pub fn message_returned() {
    counter!("ecpat_messages_returned_total").increment(1);
}

/// Whether the database answered the last operation.
pub fn database_up(up: bool) {
    gauge!("ecpat_database_up").set(if up { 1.0 } else { 0.0 });
}

/// Whether the worker is connected to the broker and consuming.
pub fn broker_up(up: bool) {
    gauge!("ecpat_broker_up").set(if up { 1.0 } else { 0.0 });
}

/// The consumer's prefetch window now, in messages.
pub fn prefetch(messages: u16) {
    gauge!("ecpat_prefetch_messages").set(f64::from(messages));
}

/// A delivery read with a tag not above the previous one (see `consumer::check_order`).
pub fn delivery_out_of_order() {
    counter!("ecpat_deliveries_out_of_order_total").increment(1);
}

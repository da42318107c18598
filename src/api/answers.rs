//! Heavy answers (the evidence behind a value, the CSV export) made once per version of the
//! values in memory: requests for the same answer while it is being made wait for it, and
//! later ones at the same version get it without a query. Every batch that stores an event
//! moves the version (`store::tallies::notify`), as do a rebuild and a framework loaded or
//! removed, so a kept answer is never older than the version it is kept for.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use super::ApiError;

/// Distinct answers kept at most; past it, the ones not being made are forgotten.
const KEPT: usize = 64;

/// One answer: the `ETag` it was made at, and its body.
type Slot = Arc<tokio::sync::Mutex<Option<(String, Bytes)>>>;

#[derive(Default)]
pub struct Answers {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Answers {
    /// The answer `key` at the version `etag`: kept, or made by `make` (once, however many
    /// ask for it meanwhile) and kept.
    pub async fn get_or_make<F, Fut>(&self, key: String, etag: &str, make: F) -> Result<Bytes, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, ApiError>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.len() >= KEPT && !slots.contains_key(&key) {
                slots.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
            Arc::clone(slots.entry(key).or_default())
        };
        let mut kept = slot.lock().await;
        if let Some((tag, body)) = kept.as_ref()
            && tag == etag
        {
            return Ok(body.clone());
        }
        let body = make().await?;
        *kept = Some((etag.to_owned(), body.clone()));
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_is_made_once_per_version() {
        let answers = Answers::default();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = || async {
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Bytes::from_static(b"x"))
        };
        for _ in 0..3 {
            assert_eq!(answers.get_or_make("a".into(), "\"1\"", make).await.unwrap(), "x");
        }
        assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 1);
        answers.get_or_make("a".into(), "\"2\"", make).await.unwrap();
        answers.get_or_make("b".into(), "\"2\"", make).await.unwrap();
        assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 3, "a new version, another answer");
        let failed = answers.get_or_make("c".into(), "\"2\"", || async { Err(ApiError::Busy) }).await;
        assert!(failed.is_err(), "a failure is not kept");
        answers.get_or_make("c".into(), "\"2\"", make).await.unwrap();
    }
}

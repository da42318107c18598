//! Heavy answers (the evidence behind a value, the CSV export) made once per version of the
//! values in memory. Every batch that stores an event moves the version
//! (`store::tallies::notify`), as do a rebuild and a framework loaded or removed: during a
//! drain that is many times a second, and making such an answer anew at every version
//! would cost the counting much of the database and the CPU. So an answer that took T to
//! make is served as it is, with the `ETag` of the version it was made at, until it is
//! [`REUSE`]·T old (and at most `http.heavy_max_age_ms`), however far the values moved:
//! making any one answer then takes at most about 1/(REUSE+1) of the time. A small
//! answer on a quiet system is made in milliseconds and so is practically always current;
//! during a drain, a large one is some hundreds of milliseconds behind. Past that age it is
//! made anew, once however many ask for it meanwhile, and while it is being made the
//! others get the one kept. With a maximum age of 0, every answer is made at the current
//! version (requests for it meanwhile wait for it).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use super::ApiError;

/// Distinct answers kept at most; past it, the ones not being made are forgotten.
const KEPT: usize = 64;

/// An answer is served until it is this many times as old as it took to make.
const REUSE: u32 = 20;

/// An answer as made: the `ETag` of the version it was made at, when, and its body.
#[derive(Clone)]
pub struct Kept {
    pub etag: String,
    /// When its making started, and how long it took.
    made: Instant,
    took: Duration,
    pub body: Bytes,
}

/// One answer: the one kept, and the lock of whoever makes the next one.
#[derive(Default)]
struct Slot {
    kept: Mutex<Option<Kept>>,
    making: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The kept answer if it is at `etag`, or younger than [`REUSE`] times what it took to
    /// make and than `max_age`.
    fn fresh(&self, etag: &str, max_age: Duration) -> Option<Kept> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref().filter(|k| k.etag == etag || k.made.elapsed() < max_age.min(k.took * REUSE)).cloned()
    }

    fn any(&self) -> Option<Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct Answers {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    max_age: Duration,
}

impl Answers {
    pub fn new(max_age: Duration) -> Answers {
        Answers { slots: Mutex::default(), max_age }
    }

    /// The answer `key`: the one kept if it was made at the version `etag` or is young
    /// enough (or, while another request makes the next one, whatever its age); else made
    /// by `make` at `etag` and kept.
    pub async fn get_or_make<F, Fut>(&self, key: String, etag: &str, make: F) -> Result<Kept, ApiError>
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
        if let Some(kept) = slot.fresh(etag, self.max_age) {
            return Ok(kept);
        }
        let _making = match slot.making.try_lock() {
            Ok(making) => making,
            Err(_) => match slot.any().filter(|_| !self.max_age.is_zero()) {
                Some(kept) => return Ok(kept),
                None => slot.making.lock().await,
            },
        };
        // Made meanwhile by the request that held the lock.
        if let Some(kept) = slot.fresh(etag, self.max_age) {
            return Ok(kept);
        }
        let made = Instant::now();
        let body = make().await?;
        let kept = Kept { etag: etag.to_owned(), made, took: made.elapsed(), body };
        *slot.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(kept.clone());
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn with_no_maximum_age_an_answer_is_made_once_per_version() {
        let answers = Answers::new(Duration::ZERO);
        let made = AtomicUsize::new(0);
        let make = || async {
            made.fetch_add(1, Ordering::Relaxed);
            Ok(Bytes::from_static(b"x"))
        };
        for _ in 0..3 {
            assert_eq!(answers.get_or_make("a".into(), "\"1\"", make).await.unwrap().body, "x");
        }
        assert_eq!(made.load(Ordering::Relaxed), 1);
        let kept = answers.get_or_make("a".into(), "\"2\"", make).await.unwrap();
        assert_eq!(kept.etag, "\"2\"");
        answers.get_or_make("b".into(), "\"2\"", make).await.unwrap();
        assert_eq!(made.load(Ordering::Relaxed), 3, "a new version, another answer");
        let failed = answers.get_or_make("c".into(), "\"2\"", || async { Err(ApiError::Busy) }).await;
        assert!(failed.is_err(), "a failure is not kept");
        answers.get_or_make("c".into(), "\"2\"", make).await.unwrap();
    }

    #[tokio::test]
    async fn an_answer_is_served_until_it_is_reuse_times_as_old_as_it_took_to_make_at_most_the_maximum_age() {
        let made = AtomicUsize::new(0);
        let make = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            made.fetch_add(1, Ordering::Relaxed);
            Ok(Bytes::from(made.load(Ordering::Relaxed).to_string()))
        };
        // At least 20 ms to make: kept for at least 400 ms, then made anew.
        let answers = Answers::new(Duration::from_secs(10));
        let start = std::time::Instant::now();
        assert_eq!(answers.get_or_make("a".into(), "\"1\"", make).await.unwrap().body, "1");
        let kept = answers.get_or_make("a".into(), "\"2\"", make).await.unwrap();
        assert_eq!((kept.etag.as_str(), kept.body.as_ref()), ("\"1\"", b"1".as_ref()), "young: the kept one");
        loop {
            let kept = answers.get_or_make("a".into(), "\"2\"", make).await.unwrap();
            if kept.etag == "\"2\"" {
                assert_eq!(kept.body, "2", "old: made anew");
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "made anew before the maximum age");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(start.elapsed() >= Duration::from_millis(400), "not before: {:?}", start.elapsed());
        assert_eq!(made.load(Ordering::Relaxed), 2);

        // The maximum age bounds it.
        let answers = Answers::new(Duration::from_millis(50));
        answers.get_or_make("a".into(), "\"1\"", make).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(answers.get_or_make("a".into(), "\"2\"", make).await.unwrap().etag, "\"2\"");
    }

    #[tokio::test]
    async fn while_one_request_makes_an_answer_the_others_get_the_one_kept() {
        let answers = Arc::new(Answers::new(Duration::from_secs(10)));
        answers.get_or_make("a".into(), "\"1\"", || async { Ok(Bytes::from_static(b"old")) }).await.unwrap();
        // Made at once: kept for next to no time.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (started, release) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
        let maker = tokio::spawn({
            let (answers, started, release) = (answers.clone(), started.clone(), release.clone());
            async move {
                answers
                    .get_or_make("a".into(), "\"2\"", || async move {
                        started.notify_one();
                        release.notified().await;
                        Ok(Bytes::from_static(b"new"))
                    })
                    .await
                    .unwrap()
            }
        });
        started.notified().await;
        let meanwhile = answers.get_or_make("a".into(), "\"2\"", || async { panic!("made twice") }).await.unwrap();
        assert_eq!((meanwhile.etag.as_str(), meanwhile.body.as_ref()), ("\"1\"", b"old".as_ref()));
        release.notify_one();
        assert_eq!(maker.await.unwrap().body, "new");
        let after = answers.get_or_make("a".into(), "\"2\"", || async { panic!("made twice") }).await.unwrap();
        assert_eq!(after.body, "new");
    }
}

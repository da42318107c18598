//! Waits between retries: exponential with jitter, never above the configured maximum
//! (`backon`'s exponential backoff).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::config::Settings;

/// Waits that double from `consumer.retry_initial_ms` up to `consumer.retry_max_ms`, each
/// a random amount from half of that delay to all of it ("equal jitter"), so that several
/// workers do not retry in step.
pub struct Backoff {
    /// The waits from the first one, for a reset.
    from_first: ExponentialBuilder,
    /// The waits from the longest one, for [`Backoff::longest`].
    from_longest: ExponentialBuilder,
    /// The waits still to come.
    waits: ExponentialBackoff,
}

impl Backoff {
    pub fn new(settings: &Settings) -> Self {
        let max = Duration::from_millis(settings.consumer.retry_max_ms);
        let initial = Duration::from_millis(settings.consumer.retry_initial_ms).min(max);
        let from_first = equal_jitter(initial, max);
        Backoff { from_first, from_longest: equal_jitter(max, max), waits: from_first.build() }
    }

    pub fn next_wait(&mut self) -> Duration {
        self.waits.next().expect("the waits never run out")
    }

    /// The longest wait (and the waits after it stay there until a reset).
    pub fn longest(&mut self) -> Duration {
        self.waits = self.from_longest.build();
        self.next_wait()
    }

    pub fn reset(&mut self) {
        self.waits = self.from_first.build();
    }
}

/// `backon` adds a random part of each delay to it: halving the bounds gives waits from half
/// of the doubling delay to all of it.
fn equal_jitter(initial: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::new().with_min_delay(initial / 2).with_max_delay(max / 2).with_jitter().without_max_times()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Allows for `backon` computing delays in `f32` seconds.
    const ROUNDING: Duration = Duration::from_micros(10);

    fn backoff(initial_ms: u64, max_ms: u64) -> Backoff {
        let mut settings = Settings::load(Path::new("/no/such/folder")).unwrap();
        settings.consumer.retry_initial_ms = initial_ms;
        settings.consumer.retry_max_ms = max_ms;
        Backoff::new(&settings)
    }

    fn assert_between(wait: Duration, full: Duration) {
        assert!(wait + ROUNDING >= full / 2 && wait <= full + ROUNDING, "{wait:?} is not within half of {full:?}");
    }

    #[test]
    fn waits_double_up_to_the_max_with_jitter_and_start_again_after_a_reset() {
        let mut backoff = backoff(100, 1000);
        for full in [100, 200, 400, 800, 1000, 1000] {
            assert_between(backoff.next_wait(), Duration::from_millis(full));
        }
        backoff.reset();
        assert_between(backoff.next_wait(), Duration::from_millis(100));
    }

    #[test]
    fn the_longest_wait_lasts_until_a_reset() {
        let mut backoff = backoff(100, 1000);
        for _ in 0..3 {
            assert_between(backoff.longest(), Duration::from_millis(1000));
            assert_between(backoff.next_wait(), Duration::from_millis(1000));
        }
        backoff.reset();
        assert_between(backoff.next_wait(), Duration::from_millis(100));
    }
}

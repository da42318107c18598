//! The consumer's prefetch window: how many messages the broker may hand the worker at once,
//! set from the events per message it receives.

/// The prefetch window, in messages: about `events_in_flight` events, from the mean
/// number of events per message seen lately, between [`Window::MIN`] and `max`.
#[derive(Debug)]
pub(super) struct Window {
    pub(super) current: u16,
    max: u16,
    events_in_flight: usize,
    /// Events per message, a moving mean over batches.
    per_message: Option<f64>,
}

impl Window {
    /// The smallest window the worker sets by itself.
    pub(super) const MIN: u16 = 16;
    /// The window before anything is known of the messages: small, so that a backlog of
    /// large messages does not arrive at once; it grows after the first batch if they are
    /// small.
    const FIRST: u16 = 64;

    /// `max` 0: no bound but the protocol's.
    pub(super) fn new(max: u16, events_in_flight: usize) -> Window {
        let max = if max == 0 { u16::MAX } else { max };
        Window { current: Self::FIRST.min(max), max, events_in_flight, per_message: None }
    }

    /// After a batch of `messages` holding `events`: the new window, when the one wanted is
    /// at least double or at most half the current one (or the largest allowed).
    pub(super) fn observe(&mut self, messages: usize, events: usize) -> Option<u16> {
        let mean = events.max(1) as f64 / messages.max(1) as f64;
        let per_message = self.per_message.map_or(mean, |before| 0.7 * before + 0.3 * mean);
        self.per_message = Some(per_message);
        let wanted = ((self.events_in_flight as f64 / per_message).round() as usize)
            .max(usize::from(Self::MIN))
            .min(usize::from(self.max)) as u16;
        let grow = wanted != self.current && wanted >= self.current.saturating_mul(2).min(self.max);
        let shrink = wanted.saturating_mul(2) <= self.current;
        (grow || shrink).then_some(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    /// Feeds batches of `messages` messages of `per_message` events until the window settles.
    fn settle(window: &mut Window, messages: usize, per_message: usize) -> u16 {
        for _ in 0..20 {
            if let Some(prefetch) = window.observe(messages, messages * per_message) {
                window.current = prefetch;
            }
        }
        window.current
    }

    #[test]
    fn the_window_holds_about_the_events_wanted_within_its_bounds() {
        let mut window = Window::new(2000, 30_000);
        assert_eq!(window.current, 64, "small until the messages are seen");
        assert_eq!(settle(&mut window, 10, 100), 300, "CloudEvents batches of 100");
        assert_eq!(settle(&mut window, 1000, 1), 2000, "one event per message: the configured largest");
        let huge = settle(&mut window, 1, 5000);
        assert!((16..32).contains(&huge), "huge batches: near the smallest (within the hysteresis), not {huge}");
        assert_eq!(Window::new(1, 30_000).current, 1, "a configured prefetch of 1 is kept");
        assert_eq!(settle(&mut Window::new(1, 30_000), 1, 1), 1);
        assert_eq!(settle(&mut Window::new(0, 30_000), 1000, 1), 30_000, "prefetch 0: no bound but the events");
    }

    #[test]
    fn small_changes_in_message_size_do_not_resize_it() {
        let mut window = Window::new(2000, 30_000);
        settle(&mut window, 10, 100);
        for per_message in [60, 150, 80, 120] {
            assert_eq!(window.observe(10, 10 * per_message), None, "{per_message} events per message");
        }
        assert_eq!(window.current, 300);
    }
}

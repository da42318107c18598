//! The consumer's prefetch window: how many messages the broker may hand the worker at once,
//! set from the events and bytes per message it receives.

/// The prefetch window, in messages: about `events_in_flight` events and at most
/// `bytes_in_flight` bytes, from the mean events and bytes per message seen lately,
/// between [`Window::MIN`] and `max`.
#[derive(Debug)]
pub(super) struct Window {
    pub(super) current: u16,
    max: u16,
    events_in_flight: usize,
    bytes_in_flight: usize,
    /// Events and bytes per message, moving means over batches.
    per_message: Option<(f64, f64)>,
}

impl Window {
    /// The smallest window the worker sets by itself.
    pub(super) const MIN: u16 = 16;
    /// The window before anything is known of the messages: small, so that a backlog of
    /// large messages does not arrive at once; it grows after the first batch if they are
    /// small.
    const FIRST: u16 = 64;

    /// `max` 0: no bound but the protocol's.
    pub(super) fn new(max: u16, events_in_flight: usize, bytes_in_flight: usize) -> Window {
        let max = if max == 0 { u16::MAX } else { max };
        Window { current: Self::FIRST.min(max), max, events_in_flight, bytes_in_flight, per_message: None }
    }

    /// After a batch of `messages` holding `events` in `bytes`: the new window, when the one
    /// wanted is at least double or at most half the current one (or the largest allowed),
    /// or when the current one holds more than the bytes allowed.
    pub(super) fn observe(&mut self, messages: usize, events: usize, bytes: usize) -> Option<u16> {
        let messages = messages.max(1) as f64;
        let mean = (events.max(1) as f64 / messages, bytes.max(1) as f64 / messages);
        let (events, bytes) = self.per_message.map_or(mean, |(e, b)| (0.7 * e + 0.3 * mean.0, 0.7 * b + 0.3 * mean.1));
        self.per_message = Some((events, bytes));
        let wanted = ((self.events_in_flight as f64 / events).min(self.bytes_in_flight as f64 / bytes).round() as usize)
            .max(usize::from(Self::MIN))
            .min(usize::from(self.max)) as u16;
        let grow = wanted != self.current && wanted >= self.current.saturating_mul(2).min(self.max);
        // The bytes are a bound, not an aim: a window more than 10% over them shrinks at once.
        let over_bytes = f64::from(self.current) * bytes > 1.1 * self.bytes_in_flight as f64;
        let shrink = wanted < self.current && (wanted.saturating_mul(2) <= self.current || over_bytes);
        (grow || shrink).then_some(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    const MIB: usize = 1 << 20;

    /// Feeds batches of `messages` messages of `per_message` events (of 500 bytes each)
    /// until the window settles.
    fn settle(window: &mut Window, messages: usize, per_message: usize) -> u16 {
        settle_bytes(window, messages, per_message, per_message * 500)
    }

    fn settle_bytes(window: &mut Window, messages: usize, per_message: usize, bytes: usize) -> u16 {
        for _ in 0..20 {
            if let Some(prefetch) = window.observe(messages, messages * per_message, messages * bytes) {
                window.current = prefetch;
            }
        }
        window.current
    }

    #[test]
    fn the_window_holds_about_the_events_wanted_within_its_bounds() {
        let mut window = Window::new(2000, 30_000, 32 * MIB);
        assert_eq!(window.current, 64, "small until the messages are seen");
        assert_eq!(settle(&mut window, 10, 100), 300, "CloudEvents batches of 100");
        assert_eq!(settle(&mut window, 1000, 1), 2000, "one event per message: the configured largest");
        let huge = settle(&mut window, 1, 5000);
        assert!((16..32).contains(&huge), "huge batches: near the smallest (within the hysteresis), not {huge}");
        assert_eq!(Window::new(1, 30_000, 32 * MIB).current, 1, "a configured prefetch of 1 is kept");
        assert_eq!(settle(&mut Window::new(1, 30_000, 32 * MIB), 1, 1), 1);
        assert_eq!(
            settle(&mut Window::new(0, 30_000, 32 * MIB), 1000, 1),
            30_000,
            "prefetch 0: no bound but the events"
        );
    }

    #[test]
    fn small_changes_in_message_size_do_not_resize_it() {
        let mut window = Window::new(2000, 30_000, 32 * MIB);
        settle(&mut window, 10, 100);
        for per_message in [60, 150, 80, 120] {
            assert_eq!(
                window.observe(10, 10 * per_message, 10 * per_message * 500),
                None,
                "{per_message} events per message"
            );
        }
        assert_eq!(window.current, 300);
    }

    #[test]
    fn large_messages_are_held_to_the_bytes_in_flight() {
        let mut window = Window::new(2000, 30_000, 32 * MIB);
        assert_eq!(settle_bytes(&mut window, 20, 1, 900 * 1024), 36, "events of 900 KiB: 32 MiB in flight");
        assert_eq!(settle_bytes(&mut window, 20, 1, 8 * MIB), Window::MIN, "never below the smallest window");
        assert_eq!(settle_bytes(&mut window, 1000, 1, 500), 2000, "small events again: the largest");
    }
}

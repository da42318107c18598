//! CPU time during a drain, per event: the machine's, and by process (the drainer itself,
//! PostgreSQL, RabbitMQ).

use crate::machine;

/// Clock ticks per second of the CPU times in /proc (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time used so far, in clock ticks.
pub struct CpuMark {
    /// The machine's busy time (everything but idle and I/O wait) and its total.
    busy: u64,
    total: u64,
    /// Every process named `postgres`: the postmaster and its backends.
    postgres: u64,
    /// RabbitMQ's Erlang VM, `beam.smp`.
    rabbitmq: u64,
    /// This process's children that have exited and been waited for (a peer, once it has).
    pub children: u64,
}

/// The CPU time of one drain.
pub struct CpuUse {
    /// The machine's busy share of its CPU time (all processes).
    pub busy: f64,
    /// Microseconds per event: the machine's busy time, the drainer's own (the worker
    /// processes, or the peer), PostgreSQL's and RabbitMQ's.
    pub all_us: f64,
    pub own_us: f64,
    pub postgres_us: f64,
    pub rabbitmq_us: f64,
}

impl CpuMark {
    pub fn now() -> CpuMark {
        let (busy, total) = machine::cpu_ticks();
        CpuMark {
            busy,
            total,
            postgres: machine::ticks_of("postgres"),
            rabbitmq: machine::ticks_of("beam.smp"),
            children: machine::waited_children_ticks(),
        }
    }

    /// The CPU time used since this mark, per event of `events`, with the drainer's own
    /// `own_ticks` (read by the caller, who knows its processes).
    pub fn per_event(&self, events: usize, own_ticks: u64) -> CpuUse {
        let now = CpuMark::now();
        let us = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1e6 / events.max(1) as f64;
        CpuUse {
            busy: (now.busy - self.busy) as f64 / (now.total - self.total).max(1) as f64,
            all_us: us(now.busy - self.busy),
            own_us: us(own_ticks),
            // A backend that exited and was not yet waited for drops out of the sum.
            postgres_us: us(now.postgres.saturating_sub(self.postgres)),
            rabbitmq_us: us(now.rabbitmq.saturating_sub(self.rabbitmq)),
        }
    }
}

impl CpuUse {
    /// For the report: `own` names the drainer.
    pub fn describe(&self, own: &str) -> String {
        format!(
            "CPU {:.0}% busy, {:.0} µs per event; by process: {own} {:.1}, PostgreSQL {:.1}, RabbitMQ {:.1} µs per event",
            self.busy * 100.0,
            self.all_us,
            self.own_us,
            self.postgres_us,
            self.rabbitmq_us
        )
    }
}

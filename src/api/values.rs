//! The indicator values in memory: every tally row of every framework, and the frameworks
//! as loaded, read once and then moved by the notifications that each batch sends at
//! commit (`store::tallies::notify`), so that reading a value, a series or the frameworks
//! costs no query.
//!
//! - **Exact.** A batch announces every tally row it changed, with its new value, on the
//!   channel that every process LISTENs on; PostgreSQL delivers notifications in commit
//!   order, and batches commit one at a time (the apply lock), so applying each
//!   announcement in turn gives the values of that commit. A transaction's announcement
//!   may take several notifications: they are applied together, so that no read sees half
//!   a batch. The streams hear of each changed total only after it is in memory, so a
//!   dashboard that fetches on a `tally` event gets at least that value.
//! - **Full reload.** On start, after the listening connection was lost (notifications
//!   may have been missed), after a rebuild (`recompute`, a framework loaded or removed)
//!   and after an announcement that does not read, every value is read again, in one
//!   snapshot of the database. Announcements of transactions that this snapshot already
//!   sees are skipped; the later ones are applied.
//! - **Staleness.** A read sees a commit once its notification has been received and
//!   applied: PostgreSQL sends it at commit, so the values lag the database by that
//!   delivery and this task's turn to run. While the listening connection is
//!   down, or before the first load, the values are not served (503) rather than served
//!   stale, and `/readyz` says so.
//! - **Versions.** Every change (an announcement applied, a reload) moves the version,
//!   from which the answers' `ETag` is made: it is unique to this process and version.
//!   Every batch that stores an event announces itself, even with no tally row changed,
//!   so the version also moves with the evidence (`answers`).
//! - **By hand.** Tallies or records changed in the database without a batch are not
//!   announced: they show after the next reload (`recompute`, a restart).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

use crate::framework::Frameworks;
use crate::store::read::{self, ValueRow};
use crate::store::tallies::{Announcement, RowChange, TALLY_CHANNEL, TotalChange};
use crate::store::{frameworks, tallies};
use crate::telemetry::one_line;

/// (indicator, dimension, key) → value, zeros included (`tallies` keeps rows at 0).
type PeriodValues = BTreeMap<(String, String, String), i64>;

/// One framework's values: period → its rows.
type FrameworkValues = BTreeMap<String, PeriodValues>;

/// Every value, as of one commit.
pub struct Snapshot {
    pub frameworks: Arc<Frameworks>,
    values: HashMap<String, FrameworkValues>,
}

impl Snapshot {
    fn new(frameworks: Arc<Frameworks>, rows: Vec<RowChange>) -> Snapshot {
        let mut snapshot = Snapshot { frameworks, values: HashMap::new() };
        snapshot.apply(rows);
        snapshot
    }

    fn apply(&mut self, rows: impl IntoIterator<Item = RowChange>) {
        for row in rows {
            let periods = self.values.entry(row.framework).or_default();
            periods.entry(row.period).or_default().insert((row.indicator, row.dimension, row.key), row.value);
        }
    }

    /// The non-zero values of every indicator of a framework for one period, as
    /// `framework_values` holds them.
    pub fn period_rows(&self, framework: &str, period: &str) -> Vec<ValueRow> {
        let Some(rows) = self.values.get(framework).and_then(|periods| periods.get(period)) else { return vec![] };
        rows.iter()
            .filter(|(_, value)| **value != 0)
            .map(|((indicator, dimension, key), value)| ValueRow {
                indicator: indicator.clone(),
                period: period.to_owned(),
                dimension: dimension.clone(),
                key: key.clone(),
                value: *value,
            })
            .collect()
    }

    /// An indicator's non-zero total for every year, oldest first.
    pub fn yearly_totals(&self, framework: &str, indicator: &str) -> Vec<(String, i64)> {
        let Some(periods) = self.values.get(framework) else { return vec![] };
        let total = (indicator.to_owned(), String::new(), String::new());
        periods
            .iter()
            .filter(|(period, _)| period.chars().count() == 4)
            .filter_map(|(period, rows)| rows.get(&total).filter(|v| **v != 0).map(|v| (period.clone(), *v)))
            .collect()
    }

    /// Every stored total, zeros included, by framework, indicator and period.
    pub fn totals(&self) -> BTreeMap<(String, String, String), i64> {
        let mut totals = BTreeMap::new();
        for (framework, periods) in &self.values {
            for (period, rows) in periods {
                for ((indicator, _, _), value) in rows.iter().filter(|((_, d, k), _)| d.is_empty() && k.is_empty()) {
                    totals.insert((framework.clone(), indicator.clone(), period.clone()), *value);
                }
            }
        }
        totals
    }
}

fn as_changes(totals: BTreeMap<(String, String, String), i64>) -> Vec<TotalChange> {
    totals
        .into_iter()
        .map(|((framework, code, period), value)| TotalChange { framework, code, period, value })
        .collect()
}

struct Inner {
    snapshot: Option<Snapshot>,
    /// Whether `snapshot` is known to be current: loaded, and the listening connection up
    /// since.
    current: bool,
    version: u64,
}

/// The values in memory, shared by the HTTP handlers and the task that keeps them current
/// ([`keep_current`]).
pub struct Values {
    inner: RwLock<Inner>,
    /// Changed totals, for the live streams.
    streams: broadcast::Sender<TotalChange>,
    /// Makes this process's versions its own.
    epoch: u64,
}

/// A read of the values, with the version it is of.
pub struct Current<'a> {
    guard: RwLockReadGuard<'a, Inner>,
    epoch: u64,
}

impl Current<'_> {
    pub fn snapshot(&self) -> &Snapshot {
        self.guard.snapshot.as_ref().expect("a current read has a snapshot")
    }

    /// The entity tag of every answer made from this version.
    pub fn etag(&self) -> String {
        format!("\"{:x}-{}\"", self.epoch, self.guard.version)
    }
}

impl Values {
    pub fn new(streams: broadcast::Sender<TotalChange>) -> Arc<Values> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let epoch = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
        Arc::new(Values { inner: RwLock::new(Inner { snapshot: None, current: false, version: 0 }), streams, epoch })
    }

    fn read_inner(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The values, if they are current.
    pub fn current(&self) -> Option<Current<'_>> {
        let guard = self.read_inner();
        (guard.current && guard.snapshot.is_some()).then_some(Current { guard, epoch: self.epoch })
    }

    /// Whether the values are loaded and followed.
    pub fn is_current(&self) -> bool {
        self.current().is_some()
    }

    /// The frameworks as loaded now, if the values are current.
    pub fn frameworks(&self) -> Option<Arc<Frameworks>> {
        self.current().map(|c| Arc::clone(&c.snapshot().frameworks))
    }

    /// A stream's start: a receiver of the changes to come and every total now (zeros
    /// included), taken together, so that no change falls in between; no totals while the
    /// values are not loaded (they are sent when they are).
    pub fn subscribe(&self) -> (broadcast::Receiver<TotalChange>, Vec<TotalChange>) {
        let guard = self.read_inner();
        let receiver = self.streams.subscribe();
        let totals = guard.snapshot.as_ref().map(|s| as_changes(s.totals())).unwrap_or_default();
        (receiver, totals)
    }

    /// Every total now (zeros included), for a stream that fell behind.
    pub fn totals(&self) -> Vec<TotalChange> {
        self.read_inner().snapshot.as_ref().map(|s| as_changes(s.totals())).unwrap_or_default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The values may have moved without this process hearing of it: stop serving them.
    fn lost(&self) {
        self.write().current = false;
    }

    /// Replaces every value; the streams hear of every total that changed.
    fn replace(&self, snapshot: Snapshot) {
        let mut inner = self.write();
        let before = inner.snapshot.as_ref().map(Snapshot::totals).unwrap_or_default();
        let after = snapshot.totals();
        inner.snapshot = Some(snapshot);
        inner.current = true;
        inner.version += 1;
        let changed = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| (k.clone(), after.get(k).copied().unwrap_or(0)))
            .collect::<BTreeMap<_, _>>();
        for change in as_changes(changed) {
            let _ = self.streams.send(change);
        }
    }

    /// Applies one transaction's changed rows; the streams hear of its totals.
    fn apply(&self, rows: Vec<RowChange>) {
        let mut inner = self.write();
        let Some(snapshot) = inner.snapshot.as_mut() else { return };
        let mut totals: Vec<TotalChange> = rows.iter().filter_map(RowChange::total).collect();
        totals.sort();
        snapshot.apply(rows);
        inner.version += 1;
        for total in totals {
            let _ = self.streams.send(total);
        }
    }
}

/// Reads every value and the frameworks in one snapshot of the database, and puts them in
/// `values`; returns which transactions that snapshot sees.
async fn load(pool: &PgPool, values: &Values) -> Result<String, frameworks::ReadError> {
    let mut tx = pool.begin_with("begin isolation level repeatable read, read only").await?;
    let seen = read::visibility(&mut *tx).await?;
    let loaded = frameworks::current(&mut tx).await?;
    let rows = read::tally_rows(&mut *tx).await?;
    tx.commit().await?;
    values.replace(Snapshot::new(loaded, rows));
    debug!(snapshot = seen, "Indicator values loaded.");
    Ok(seen)
}

/// Keeps `values` current until shutdown: listens, loads, then applies every announcement
/// (see the module's documentation); after a failure, stops serving the values and starts
/// again after a pause.
pub async fn keep_current(pool: PgPool, values: Arc<Values>, mut shutdown: watch::Receiver<bool>) {
    let mut pause = Duration::from_millis(100);
    while !*shutdown.borrow() {
        match follow(&pool, &values, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                values.lost();
                warn!(error = one_line(&e), "Cannot follow the indicator values; retrying.");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// A transaction's announcement, while its parts come in.
struct Partial {
    xid: u64,
    next: usize,
    rows: Vec<RowChange>,
}

/// Listens, loads, and applies announcements until shutdown (`Ok`) or a failure.
async fn follow(
    pool: &PgPool,
    values: &Values,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), frameworks::ReadError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(TALLY_CHANNEL).await?;
    let mut seen = load(pool, values).await?;
    let mut partial: Option<Partial> = None;
    loop {
        let next = tokio::select! {
            next = listener.try_recv() => next?,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(notification) = next else {
            debug!("Tally listener reconnected; reading every value again.");
            values.lost();
            partial = None;
            seen = load(pool, values).await?;
            continue;
        };
        let reload = match tallies::parse(notification.payload()) {
            Some((xid, _)) if read::visible(&seen, xid) == Some(true) => false,
            Some((_, Announcement::Reload)) => true,
            Some((xid, Announcement::Rows { part, parts, rows })) => {
                let mut arrived = match partial.take() {
                    None if part == 0 => Partial { xid, next: 0, rows: vec![] },
                    Some(p) if p.xid == xid && p.next == part => p,
                    _ => {
                        warn!(xid, part, "A tally announcement arrived out of order; reading every value again.");
                        values.lost();
                        partial = None;
                        seen = load(pool, values).await?;
                        continue;
                    }
                };
                arrived.rows.extend(rows);
                arrived.next += 1;
                if arrived.next >= parts {
                    values.apply(arrived.rows);
                } else {
                    partial = Some(arrived);
                }
                false
            }
            None => {
                warn!(payload = notification.payload(), "Unreadable tally announcement; reading every value again.");
                true
            }
        };
        if reload {
            partial = None;
            seen = load(pool, values).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(indicator: &str, period: &str, dimension: &str, key: &str, value: i64) -> RowChange {
        RowChange {
            framework: "f".into(),
            indicator: indicator.into(),
            period: period.into(),
            dimension: dimension.into(),
            key: key.into(),
            value,
        }
    }

    #[test]
    fn a_snapshot_reads_like_framework_values() {
        let frameworks = Arc::new(Frameworks { generation: 0, loaded: vec![] });
        let mut snapshot = Snapshot::new(
            frameworks,
            vec![
                row("KE1", "2019", "", "", 2),
                row("KE1", "2019", "scope", "global", 2),
                row("KE1", "2020", "", "", 0),
                row("KE1", "2018-2021", "", "", 2),
                row("KE1", "all", "", "", 2),
                row("KE2", "2019", "", "", 1),
            ],
        );
        assert_eq!(snapshot.yearly_totals("f", "KE1"), vec![("2019".to_owned(), 2)], "zeros and spans left out");
        assert_eq!(snapshot.period_rows("f", "2020"), vec![], "zeros left out");
        assert_eq!(snapshot.period_rows("f", "2019").len(), 3);
        assert_eq!(snapshot.totals().len(), 5, "zeros included");
        snapshot.apply([row("KE1", "2019", "scope", "global", 0), row("KE1", "2020", "", "", 1)]);
        assert_eq!(snapshot.period_rows("f", "2019").len(), 2);
        assert_eq!(snapshot.yearly_totals("f", "KE1"), vec![("2019".to_owned(), 2), ("2020".to_owned(), 1)]);
        assert!(snapshot.period_rows("g", "2019").is_empty(), "another framework");
    }

    #[test]
    fn visibility_follows_pg_current_snapshot() {
        assert_eq!(read::visible("100:105:101,103", 99), Some(true));
        assert_eq!(read::visible("100:105:101,103", 101), Some(false), "running");
        assert_eq!(read::visible("100:105:101,103", 102), Some(true));
        assert_eq!(read::visible("100:105:101,103", 105), Some(false), "started after");
        assert_eq!(read::visible("100:100:", 100), Some(false));
        assert_eq!(read::visible("nonsense", 1), None);
    }
}

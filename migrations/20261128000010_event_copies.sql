-- Two workers that store copies of one event at once no longer wait for each other.
--
-- Batches insert their events before they take the apply lock. With a unique index on
-- `event_key`, a copy inserted while another worker's batch holding the same event was
-- still open waited for that batch to commit; with two workers and events repeated within
-- a few batches, the waits chained the workers into a convoy. Now the index is not unique
-- and the apply lock decides: a batch inserts only events not already stored, and under
-- the lock deletes its own uncommitted copy of any event that another batch committed
-- since (it finds them in `apply_log.events`, or by reading `events` when the log cannot
-- tell). Batches commit one at a time under that lock, so exactly one copy of each event
-- is ever committed, and a committed event is never deleted.
--
-- Upgrading: stop every worker of an older version before the first new one starts (the
-- older ones insert with `on conflict (event_key)`, which needs the unique index). Writes
-- to `events` wait while the index is built. Going back to an older version needs the
-- unique constraint again: `alter table events add unique (event_key)`.
create index events_event_key on events (event_key);
alter table events drop constraint events_event_key_key;
alter table apply_log add column events bigint[] not null default '{}';

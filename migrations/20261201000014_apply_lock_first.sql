-- A batch takes the apply lock before it stores its events, so it sees every event that
-- another batch committed and never stores a copy: the event key is unique again, and the
-- generation counter and the log of changed keys, which let batches work before the lock,
-- are no longer needed.
create unique index events_event_key_unique on events (event_key);
drop index events_event_key;
drop table apply_log;
drop table apply_generation;

-- The foreign keys from the current versions to their events were checked row by row, in
-- a trigger, on every batch: about a tenth of PostgreSQL's work. Events are never deleted
-- and a current version is written in the same transaction as its event, so the reference
-- holds by construction (and `recompute` and the tests check the records against the events).
alter table records drop constraint if exists records_event_seq_fkey;
alter table post_withdrawals drop constraint if exists post_withdrawals_event_seq_fkey;

-- Versions compare `time` to its last fractional digit. RFC 3339 allows any number of
-- fractional digits; `version_secs` and `version_nanos` hold nine, and `version_subnanos`
-- holds the digits past the ninth, trailing zeros trimmed ('' when there are none). Two
-- such digit strings compare, byte by byte, as the fractions they write ('' < '05' < '1' <
-- '12'), hence the "C" collation: the version order is secs, nanos, subnanos, source, id.
alter table records add column version_subnanos text collate "C" not null default '';
alter table post_withdrawals add column version_subnanos text collate "C" not null default '';

-- Current versions stored before: their digits past the ninth, from their event's `time`
-- (events are kept as received). Only the rare times with such digits are rewritten.
-- PostgreSQL's json operators fail on a document holding an escaped NUL anywhere (`\u0000`
-- in a free-text field): such an event is left out, and its version compares to the
-- nanosecond, as before.
update records r
set version_subnanos = substring(t.time from '\.[0-9]{9}([0-9]*[1-9])')
from (
    select e.seq, case when strpos(e.body::text, '\u0000') = 0 then e.body->>'time' end as time
    from events e
) t
where t.seq = r.event_seq and t.time ~ '\.[0-9]{9}[0-9]*[1-9]';
update post_withdrawals w
set version_subnanos = substring(t.time from '\.[0-9]{9}([0-9]*[1-9])')
from (
    select e.seq, case when strpos(e.body::text, '\u0000') = 0 then e.body->>'time' end as time
    from events e
) t
where t.seq = w.event_seq and t.time ~ '\.[0-9]{9}[0-9]*[1-9]';

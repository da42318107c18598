-- Versions compare `time` to its last fractional digit. RFC 3339 allows any number of
-- fractional digits; `version_secs` and `version_nanos` hold nine, and `version_subnanos`
-- holds the digits past the ninth, trailing zeros trimmed ('' when there are none). Two
-- such digit strings compare, byte by byte, as the fractions they write ('' < '05' < '1' <
-- '12'), hence the "C" collation: the version order is secs, nanos, subnanos, source, id.
alter table records add column version_subnanos text collate "C" not null default '';
alter table post_withdrawals add column version_subnanos text collate "C" not null default '';

-- Current versions stored before: their digits past the ninth, from their event's `time`
-- (events are kept as received). Only the rare times with such digits are rewritten.
update records r
set version_subnanos = substring(e.body->>'time' from '\.[0-9]{9}([0-9]*[1-9])')
from events e
where e.seq = r.event_seq and e.body->>'time' ~ '\.[0-9]{9}[0-9]*[1-9]';
update post_withdrawals w
set version_subnanos = substring(e.body->>'time' from '\.[0-9]{9}([0-9]*[1-9])')
from events e
where e.seq = w.event_seq and e.body->>'time' ~ '\.[0-9]{9}[0-9]*[1-9]';

-- Each distinct item remembers the change its last batch made to its reference count, so
-- that the batch's statement can tell, from the row alone, which items started or stopped
-- counting (their count before the batch is `refs - last_delta`).
alter table tally_items add column last_delta int8 not null default 0;

-- A distinct item's reference count under `all` and under its framework's span is the
-- number of years in which it counts (its count in a year is the number of records that
-- name it there), so that a batch moves it only when the item starts or stops counting in
-- a year. The tallies themselves do not change.
--
-- The items' key starts with the item, which tells keys apart at the first column: a batch
-- looks up each item it moves by the whole key, and comparing keys that share their first
-- five columns made those look-ups about a fifth slower.
--
-- Upgrading: stop every worker of an older version before the first new one starts.
delete from tally_items where period !~ '^[0-9]{4}$';

insert into tally_items (framework, indicator, period, dimension, key, item, refs, last_delta)
select framework, indicator, 'all', dimension, key, item, count(*), 0
from tally_items
where refs > 0
group by framework, indicator, dimension, key, item;

-- Each framework's span, as its tallies name it.
insert into tally_items (framework, indicator, period, dimension, key, item, refs, last_delta)
select t.framework, t.indicator, s.period, t.dimension, t.key, t.item, count(*), 0
from tally_items as t
join (select distinct framework, period from tallies where period ~ '^[0-9]{4}-[0-9]{4}$') as s
    on s.framework = t.framework
    and t.period between split_part(s.period, '-', 1) and split_part(s.period, '-', 2)
where t.refs > 0 and t.period ~ '^[0-9]{4}$'
group by t.framework, t.indicator, s.period, t.dimension, t.key, t.item;

alter table tally_items drop constraint tally_items_pkey;
alter table tally_items add primary key (item, key, dimension, period, indicator, framework);

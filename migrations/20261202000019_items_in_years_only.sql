-- A distinct item is stored under its years only: whether it counts under `all` and under
-- its framework's span follows from the years in which it counts, read when a batch makes
-- it start or stop counting in a year. The tallies themselves do not change.
--
-- Upgrading: stop every worker of an older version before the first new one starts.
delete from tally_items where period !~ '^[0-9]{4}$';

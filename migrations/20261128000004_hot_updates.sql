-- Leave room in each page so that updating a current version, a tally or a reference count
-- can be a HOT update (no index maintenance): these rows are rewritten by most batches.
alter table records set (fillfactor = 70);
alter table tallies set (fillfactor = 70);
alter table tally_items set (fillfactor = 70);

-- What each batch changed: the hashes of the record keys and post keys it wrote
-- (src/store/known.rs), under the generation it took. A worker whose memory of the current
-- versions is a few generations old forgets only what changed since, instead of
-- everything. A generation with no row here (a hand edit that took one, or rows pruned)
-- makes every worker forget everything: that is always safe. Batches delete the rows more
-- than 1000 generations old.
create table apply_log (
    generation bigint primary key,
    records bigint[] not null,
    posts bigint[] not null
);

-- A social post's attributes (`member`, `published_at`, `publication_id`, `url`) are those
-- of its latest snapshot, whatever metrics it carries (docs/events.md); until now each
-- metric series kept those of its own latest snapshot. Every live series of a post takes
-- the attributes of the post's latest snapshot, then the tallies are rebuilt.
--
-- The post's latest snapshot is the current version of the post's live series with the
-- greatest version: a live series is newer than every withdrawal of the post, so the
-- latest snapshot is too, and it is current for every metric it carries. Under the old
-- rule that series holds the attributes of its own current snapshot, that is of the
-- latest one. (Versions compare as the batches compare them: instant, then `source` and
-- `id` by code point; the fractional digits past the ninth as text, which compares them
-- digit by digit.)

-- Tallies to rebuild from the current records before any batch is applied again: a
-- migration that changes stored records adds a row; `migrate` (which every command runs
-- first) then rebuilds every tally, as `recompute` does, and deletes the rows in the same
-- transaction (src/store/recompute.rs).
create table pending_recompute (
    reason text primary key
);

-- PostgreSQL's json operators fail on a document holding an escaped NUL anywhere (a `url`
-- may hold `\u0000`): a post with such a series is left as it is, and its next snapshot
-- gives its series their attributes.
with latest as (
    select distinct on (post_key) post_key, record
    from records
    where record_type = 'social_post' and post_key is not null and record is not null
        and post_key not in (
            select post_key from records
            where record_type = 'social_post' and post_key is not null and strpos(record::text, '\u0000') > 0
        )
    order by post_key, version_secs desc, version_nanos desc, version_subnanos collate "C" desc,
        version_source collate "C" desc,
        version_id collate "C" desc
),
rewritten as (
    update records r set
        record = json_build_object(
            'record_type', r.record -> 'record_type', 'platform', r.record -> 'platform',
            'post_id', r.record -> 'post_id', 'metric', r.record -> 'metric', 'value', r.record -> 'value',
            'member', l.record -> 'member', 'published_at', l.record -> 'published_at',
            'publication_id', l.record -> 'publication_id', 'url', l.record -> 'url'
        ),
        updated_at = now()
    from latest l
    where r.record_type = 'social_post' and r.post_key = l.post_key and r.record is not null
        -- (a case, so that the operators see no series the subquery above left out)
        and case when strpos(r.record::text, '\u0000') = 0 then
            (r.record ->> 'member', r.record ->> 'published_at', r.record ->> 'publication_id', r.record ->> 'url')
                is distinct from
                (l.record ->> 'member', l.record ->> 'published_at', l.record ->> 'publication_id', l.record ->> 'url')
            else false end
    returning 1
)
insert into pending_recompute (reason)
select 'social post attributes follow the latest snapshot' where exists (select from rewritten);

-- The current versions changed: every worker forgets what it knew of them (src/store/known.rs).
update apply_generation set n = n + 1;

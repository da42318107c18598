-- The social posts the collector polls (`ecpat-indicators collect`): registered with
-- `track add`, or found among the records (every post already seen in a snapshot).
create table tracked_posts (
    platform text not null,
    post_id text not null,
    -- the records' key of the post (`["x","123"]`), to find its withdrawals
    post_key text not null,
    member text not null,
    published_at timestamptz not null,
    publication_id text,
    url text,
    -- active: polled on schedule; gone: the platform answered 404/410 (or left it out of a
    -- batch answer), never polled again; withdrawn: a withdrawal newer than the tracking
    -- says it does not count; removed: `track remove`
    status text not null default 'active' check (status in ('active', 'gone', 'withdrawn', 'removed')),
    -- how it came to be tracked: 'cli' (`track add`) or 'records' (seen in a snapshot)
    origin text not null check (origin in ('cli', 'records')),
    tracked_since timestamptz not null,
    last_polled_at timestamptz,
    next_poll_at timestamptz not null,
    -- the last failure, for operators (never holds a token)
    last_error text,
    primary key (platform, post_id)
);
create index tracked_posts_due on tracked_posts (platform, next_poll_at) where status = 'active';

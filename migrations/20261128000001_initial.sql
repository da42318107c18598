-- The evidence (every accepted event), the current version of every record, the
-- indicator tallies, and every rejected message.

-- Every accepted event, exactly as received. `source` + `id` identifies an event: a second
-- one with the same pair is a duplicate. `event_key` is the SHA-256 of that pair (a
-- btree entry of a 1024-character source could exceed PostgreSQL's index row limit).
create table events (
    seq bigserial primary key,
    event_key bytea not null unique,
    source text not null,
    id text not null,
    type text not null,
    time timestamptz not null,
    received_at timestamptz not null default now(),
    routing_key text not null,
    -- the records the event is a version of (record_type + keys; a post key for a post withdrawal)
    record_type text not null,
    record_keys text[] not null,
    -- `json`, not `jsonb`: kept verbatim, and `\u0000` is allowed
    body json not null
);
create index events_record_keys on events using gin (record_keys);

-- The current version of each record (for social posts: of each metric series).
create table records (
    record_type text not null,
    record_key text not null,
    post_key text,
    version_secs bigint not null,
    version_nanos integer not null,
    version_source text not null,
    version_id text not null,
    event_seq bigint not null references events (seq),
    -- the normalised record; null when the current version is a withdrawal
    record json,
    updated_at timestamptz not null default now(),
    primary key (record_type, record_key)
);
create index records_post_key on records (post_key) where post_key is not null;

-- The latest withdrawal of each social post; it also covers series not seen yet.
create table post_withdrawals (
    post_key text primary key,
    version_secs bigint not null,
    version_nanos integer not null,
    version_source text not null,
    version_id text not null,
    event_seq bigint not null references events (seq)
);

-- Indicator values: a total (dimension = '' and key = '') or a breakdown value.
create table tallies (
    indicator text not null,
    period text not null,
    dimension text not null,
    key text not null,
    value bigint not null,
    updated_at timestamptz not null default now(),
    primary key (indicator, period, dimension, key)
);

-- For distinct counts: how many current records name each item.
create table tally_items (
    indicator text not null,
    period text not null,
    dimension text not null,
    key text not null,
    item text not null,
    refs bigint not null,
    primary key (indicator, period, dimension, key, item)
);

-- Messages and events that could not be applied, kept with their bytes.
create table rejections (
    id bigserial primary key,
    received_at timestamptz not null default now(),
    reason text not null check (reason in ('too_large', 'not_json', 'invalid_envelope', 'unknown_type', 'invalid_data')),
    detail text not null,
    routing_key text not null,
    headers json not null,
    -- the body (bodies over 1 MiB: its first 64 KiB); for one event of a batch, that event
    body bytea not null,
    size bigint not null,
    sha256 text not null,
    truncated boolean not null,
    batch_index integer,
    replayed_at timestamptz
);
create index rejections_received on rejections (received_at desc, id desc);

-- The public interface for BI tools: a missing row means 0.
create view indicator_values as
select indicator, period, dimension, key, value, updated_at
from tallies
where value <> 0;

-- Evidence look-ups by a btree-indexed group instead of a GIN index over every key (GIN
-- maintenance was a large part of each batch's cost). The group is the record key, or for
-- social posts the post key (which also names post withdrawals).
alter table events add column record_group text;

update events set record_group = case
    when record_type = 'social_post' and json_array_length(record_keys[1]::json) = 3 then
        '[' || to_json(record_keys[1]::json ->> 0)::text || ',' || to_json(record_keys[1]::json ->> 1)::text || ']'
    else record_keys[1]
end;

alter table events alter column record_group set not null;
drop index events_record_keys;
create index events_record_group on events (record_type, record_group);

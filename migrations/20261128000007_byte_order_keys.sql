-- Keys are compared byte by byte ("C") instead of through the database's locale: every
-- batch descends the key indexes thousands of times, and locale-aware comparison was a
-- large part of that. For UTF-8 text the "C" order is the code-point order, the same order
-- as the C.UTF-8 locale; no one reads these keys in a language's alphabetical order.
--
-- The view `indicator_values` (a public interface) depends on `tallies` and is recreated
-- with the same shape; the privileges granted on it (e.g. to a dashboards role) are kept.
do $migration$
declare
    granted aclitem[];
    grant_row record;
begin
    select relacl into granted from pg_class where oid = 'indicator_values'::regclass;
    drop view indicator_values;

    alter table tallies
        alter column indicator type text collate "C",
        alter column period type text collate "C",
        alter column dimension type text collate "C",
        alter column key type text collate "C";
    alter table tally_items
        alter column indicator type text collate "C",
        alter column period type text collate "C",
        alter column dimension type text collate "C",
        alter column key type text collate "C",
        alter column item type text collate "C";
    alter table records
        alter column record_type type text collate "C",
        alter column record_key type text collate "C",
        alter column post_key type text collate "C";
    alter table post_withdrawals alter column post_key type text collate "C";
    alter table events
        alter column record_type type text collate "C",
        alter column record_group type text collate "C";

    -- The public interface for BI tools: a missing row means 0.
    create view indicator_values as
    select indicator, period, dimension, key, value, updated_at
    from tallies
    where value <> 0;

    for grant_row in
        select acl.grantee, acl.privilege_type, acl.is_grantable
        from unnest(coalesce(granted, '{}')) as item, aclexplode(array[item]) as acl
        where acl.grantee <> acl.grantor
    loop
        execute format(
            'grant %s on indicator_values to %s%s',
            grant_row.privilege_type,
            case when grant_row.grantee = 0 then 'public' else grant_row.grantee::regrole::text end,
            case when grant_row.is_grantable then ' with grant option' else '' end
        );
    end loop;
end
$migration$;

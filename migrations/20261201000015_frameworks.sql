-- Frameworks: the indicator definitions live in the database, versioned, so that every
-- worker counts by the same ones. Tallies are kept per framework; the existing tallies are
-- those of the default framework, `ecpat-2018-2021`.

-- Each framework loaded, with its current version.
create table frameworks (
    id text collate "C" primary key,
    version integer not null
);

-- Every version ever loaded, kept so that a figure can be traced to its definition.
create table framework_versions (
    framework text collate "C" not null,
    version integer not null,
    loaded_at timestamptz not null default now(),
    sha256 text not null,
    document text not null,
    primary key (framework, version)
);

-- Changes with every load or removal (the id of the transaction that made it, unique in
-- the cluster): a worker that holds the apply lock and sees another value reloads the
-- frameworks before it counts.
create table framework_generation (generation bigint not null);
insert into framework_generation values (txid_current());

do $migration$
declare
    granted aclitem[];
    grant_row record;
begin
    select relacl into granted from pg_class where oid = 'indicator_values'::regclass;
    drop view indicator_values;

    alter table tallies add column framework text collate "C" not null default 'ecpat-2018-2021';
    alter table tallies alter column framework drop default;
    alter table tallies drop constraint tallies_pkey;
    alter table tallies add primary key (framework, indicator, period, dimension, key);

    alter table tally_items add column framework text collate "C" not null default 'ecpat-2018-2021';
    alter table tally_items alter column framework drop default;
    alter table tally_items drop constraint tally_items_pkey;
    alter table tally_items add primary key (framework, indicator, period, dimension, key, item);

    -- The public interface for BI tools, for the default framework: a missing row means 0.
    create view indicator_values as
    select indicator, period, dimension, key, value, updated_at
    from tallies
    where value <> 0 and framework = 'ecpat-2018-2021';

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

-- Every framework's values, for BI tools: a missing row means 0.
create view framework_values as
select framework, indicator, period, dimension, key, value, updated_at
from tallies
where value <> 0;

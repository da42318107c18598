-- Every applied batch takes the next generation, under the apply lock. A worker remembers
-- the current versions it read and wrote, and trusts them only if the generation before
-- its batch is that of its own last commit (src/store/known.rs). Anything else that
-- changes `records` or `post_withdrawals` must take a generation too:
--     update apply_generation set n = n + 1;
create table apply_generation (
    single boolean primary key default true check (single),
    n bigint not null
);
insert into apply_generation (n) values (0);

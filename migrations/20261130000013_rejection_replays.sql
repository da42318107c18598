-- A replayed message that is rejected again points to the rejection it replayed.
alter table rejections add column replay_of bigint;

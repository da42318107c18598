-- A redelivered message's rejections are stored once: look them up by hash.
create index rejections_sha256 on rejections (sha256);

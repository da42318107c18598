-- A new rejection reason: `unauthorized`, an event its producer may not send (producer rules).
alter table rejections drop constraint rejections_reason_check;
alter table rejections add constraint rejections_reason_check
    check (reason in ('too_large', 'not_json', 'invalid_envelope', 'unknown_type', 'invalid_data', 'unauthorized'));

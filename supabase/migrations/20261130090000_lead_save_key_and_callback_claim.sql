-- Exactly-once saves and callbacks that survive a lost Redis.
--
-- save_key: one lead per (web session, phone number). The server derives it (a hash of both);
-- a save retried after a timeout whose insert did land updates that lead instead of adding a
-- second one (`POST ...?on_conflict=save_key` with `resolution=merge-duplicates`).
--
-- callback_requested_at: set by a conditional update (`... where callback_requested_at is null`)
-- just before the dial, so a lead is dialled at most once even if every Redis claim is gone, and
-- the per-number cooldown can be checked here as well. Reset to null only when Telnyx certainly
-- did not place the call.

alter table public.leads
  add column save_key text constraint leads_save_key_format check (save_key is null or char_length(save_key) between 16 and 64),
  add column callback_requested_at timestamptz,
  add column callback_attempts smallint not null default 0 check (callback_attempts between 0 and 10);

create unique index leads_save_key_idx on public.leads (save_key);
create index leads_phone_callback_idx on public.leads (phone_e164, callback_requested_at desc);

comment on column public.leads.save_key is 'Server-derived idempotency key of the save (hash of web session and number): one lead per pair.';
comment on column public.leads.callback_attempts is 'Call attempts claimed so far (a retry claims attempt n+1 only if n is the current count).';
comment on column public.leads.callback_requested_at is 'When the callback was claimed, just before the dial; null while none was placed.';

-- Leads captured by the voice agent, with the consent they gave and the state of their callback.
-- Only the service role (server side) touches this table: RLS is on with no policy for anon or
-- authenticated, and their privileges are revoked as well (Supabase grants ALL to them by default).

create table public.leads (
  id              uuid primary key default gen_random_uuid(),
  first_name      text not null check (char_length(first_name) between 1 and 100),
  last_name       text not null check (char_length(last_name) between 1 and 100),
  phone_raw       text not null check (char_length(phone_raw) between 1 and 64),
  phone_e164      text not null constraint leads_phone_e164_format check (phone_e164 ~ '^\+[1-9]\d{1,14}$'),
  created_at      timestamptz not null default now(),
  source          text not null default 'voice_agent' check (char_length(source) <= 32),
  summary         text check (summary is null or char_length(summary) <= 4000),
  consent_at      timestamptz not null,
  consent_version text not null check (char_length(consent_version) between 1 and 32),
  callback_status text not null default 'pending' constraint leads_callback_status_known check (
    callback_status in ('pending', 'dialing', 'ringing', 'answered', 'completed', 'voicemail', 'no_answer', 'busy', 'failed')
  ),
  web_session_id  text not null check (char_length(web_session_id) between 1 and 64)
);

comment on table public.leads is 'Callback requests from the Callway voice agent (personal data: retention purge, delete by number).';
comment on column public.leads.consent_at is 'When the visitor said yes to the consent question.';
comment on column public.leads.consent_version is 'Version of the consent wording read out (callway_core::prompts::CONSENT_VERSION).';
comment on column public.leads.web_session_id is 'Opaque id of the web conversation; binds trigger_call to the session that created the lead.';

create index leads_created_at_idx on public.leads (created_at desc);
create index leads_phone_e164_idx on public.leads (phone_e164);
create index leads_web_session_idx on public.leads (web_session_id);

alter table public.leads enable row level security;
revoke all on table public.leads from anon, authenticated;
grant select, insert, update, delete on table public.leads to service_role;

-- Redundant with BYPASSRLS, but it documents who may touch the table.
create policy leads_service_role_all on public.leads
  as permissive for all to service_role using (true) with check (true);

-- Retention purge, called by the server with the service role (`callway purge-leads`). A function
-- rather than a filtered DELETE so the cutoff is typed on the database side.
create function public.purge_leads_before(cutoff timestamptz) returns integer
language sql volatile security invoker set search_path = ''
as $$
  with gone as (delete from public.leads where created_at < cutoff returning 1)
  select count(*)::integer from gone;
$$;
revoke execute on function public.purge_leads_before(timestamptz) from public, anon, authenticated;
grant execute on function public.purge_leads_before(timestamptz) to service_role;

-- One row per call attempt (callbacks, later inbound calls): what the business gets from a call.
-- Same rules as `leads`: only the service role touches it (RLS on, a policy for service_role only;
-- anon and authenticated lose every privilege). A lead's erasure (`delete-lead`) and the retention purge
-- delete its call records with it (on delete cascade).

create table public.call_attempts (
  call_ref                text primary key check (char_length(call_ref) between 4 and 64),
  lead_id                 uuid not null references public.leads (id) on delete cascade,
  attempt                 smallint not null default 1 check (attempt between 1 and 10),
  direction               text not null default 'outbound' check (direction in ('outbound', 'inbound')),
  telnyx_call_control_id  text check (char_length(telnyx_call_control_id) <= 256),
  telnyx_call_session_id  text check (char_length(telnyx_call_session_id) <= 128),
  dialled_at              timestamptz not null default now(),
  answered_at             timestamptz,
  ended_at                timestamptz,
  outcome                 text check (outcome in ('completed', 'voicemail', 'no_answer', 'busy', 'failed')),
  amd_result              text check (amd_result in ('human', 'machine', 'fax')),
  hangup_cause            text check (char_length(hangup_cause) <= 64),
  duration_secs           integer check (duration_secs between 0 and 86400),
  transcript              jsonb not null default '[]'::jsonb check (jsonb_typeof(transcript) = 'array'),
  qualification           jsonb check (qualification is null or jsonb_typeof(qualification) = 'object'),
  consent_version         text not null check (char_length(consent_version) between 1 and 32)
);

create index call_attempts_lead_idx on public.call_attempts (lead_id, dialled_at);

alter table public.call_attempts enable row level security;
revoke all on table public.call_attempts from anon, authenticated;
grant select, insert, update, delete on table public.call_attempts to service_role;
create policy call_attempts_service_role_all on public.call_attempts
  as permissive for all to service_role using (true) with check (true);

comment on table public.call_attempts is 'Each callback attempt: times, outcome, AMD, hang-up cause, phone-leg transcript (personal data, consent version), qualification.';
comment on column public.call_attempts.transcript is 'Phone-leg transcript, both sides: [{speaker, text}] (consent wording 2026-11-v3 names it).';
comment on column public.call_attempts.qualification is 'What the phone agent recorded with record_qualification, validated server side.';

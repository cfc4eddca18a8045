#!/usr/bin/env bash
# Runs once, on the first start of the `local-db` PostgreSQL container (the official image runs
# /docker-entrypoint-initdb.d/* as the superuser on an empty volume). It does what a Supabase
# project has before our migrations (roles, grants), then applies supabase/migrations in order
# with their history rows, as `supabase db push` would. The same steps as the test kit's
# TempPostgres, so what runs here is what the tests exercise.
set -euo pipefail
: "${LOCAL_DB_AUTHENTICATOR_PASSWORD:?set LOCAL_DB_AUTHENTICATOR_PASSWORD in .env (the password PostgREST logs in with)}"
supabase_dir=${CALLWAY_SUPABASE_DIR:-/callway/supabase}   # where compose mounts ./supabase
psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB")

"${psql[@]}" -f "$supabase_dir/tests/bootstrap_roles.sql"
"${psql[@]}" -v pw="$LOCAL_DB_AUTHENTICATOR_PASSWORD" <<'SQL'
alter role authenticator password :'pw';
SQL
for migration in $(ls "$supabase_dir"/migrations/*.sql | sort); do
  name=$(basename "$migration" .sql)
  version=${name%%_*}
  label=${name#*_}
  echo "applying migration $name"
  # The migration and its history row in one transaction, like the Supabase CLI.
  { cat "$migration"
    printf "\n;insert into supabase_migrations.schema_migrations(version, name) values ('%s', '%s');\n" "$version" "$label"
  } | "${psql[@]}" --single-transaction
done
"${psql[@]}" -c "notify pgrst, 'reload schema'"

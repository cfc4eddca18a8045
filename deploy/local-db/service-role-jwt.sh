#!/usr/bin/env bash
# Prints a service_role key (HS256 JWT, as Supabase's legacy keys are) for the `local-db` PostgREST:
#   SUPABASE_SERVICE_KEY=$(deploy/local-db/service-role-jwt.sh "$LOCAL_DB_JWT_SECRET")
# The secret must be the LOCAL_DB_JWT_SECRET PostgREST verifies with (32 characters or more).
set -euo pipefail
secret=${1:?usage: service-role-jwt.sh <LOCAL_DB_JWT_SECRET>}
[ ${#secret} -ge 32 ] || { echo "the JWT secret must be at least 32 characters" >&2; exit 2; }
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
header=$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | b64url)
payload=$(printf '{"role":"service_role","iss":"supabase","iat":%d,"exp":%d}' "$(date +%s)" "$(( $(date +%s) + 10 * 365 * 86400 ))" | b64url)
signature=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
printf '%s.%s.%s\n' "$header" "$payload" "$signature"

#!/usr/bin/env bash
# Start-up of the Accord image (Deploy/docker/Dockerfile). There is no container engine where
# Accord is developed, so the tests run this very script as a plain script (AccordCLITests).
#
#   entrypoint.sh [serve [flags]]   the server (the default); the schema must be current
#   entrypoint.sh migrate [flags]   applies the migrations as the owner role, then exits
#   entrypoint.sh probe [PATH]      exits 0 when GET PATH (default /readyz) on the server answers 200
#                                   (for HEALTHCHECK: the image has no curl)
#   entrypoint.sh accord ARGS…      any other accord command (import, seed, admin …)
#
# Secrets may come as files (Docker and Kubernetes secrets): VAR_FILE=/path sets VAR from the file,
# for ACCORD_DATABASE_URL, ACCORD_MIGRATION_DATABASE_URL, ACCORD_ADMIN_PASSWORD, ACCORD_SMTP_URL
# and ACCORD_METRICS_TOKEN.
set -euo pipefail

accord=${ACCORD_BIN:-/app/accord}

fail() {
  echo "error: $*" >&2
  exit 64
}

for name in ACCORD_DATABASE_URL ACCORD_MIGRATION_DATABASE_URL ACCORD_ADMIN_PASSWORD ACCORD_SMTP_URL ACCORD_METRICS_TOKEN; do
  file_var="${name}_FILE"
  file="${!file_var:-}"
  [[ -n $file ]] || continue
  [[ -z ${!name:-} ]] || fail "both $name and $file_var are set; keep one"
  [[ -r $file ]] || fail "$file_var names $file, which cannot be read"
  value="$(<"$file")"  # without its trailing newline
  [[ -n $value ]] || fail "$file_var names $file, which is empty"
  export "$name=$value"
  unset "$file_var"
done

command=${1:-serve}
[[ $# -gt 0 ]] && shift

case $command in
  serve)
    [[ -n ${ACCORD_DATABASE_URL:-} ]] || fail "ACCORD_DATABASE_URL (or ACCORD_DATABASE_URL_FILE) is not set: the server's database, as the application role"
    exec "$accord" serve "$@"
    ;;
  migrate)
    [[ -n ${ACCORD_MIGRATION_DATABASE_URL:-${ACCORD_DATABASE_URL:-}} ]] ||
      fail "ACCORD_MIGRATION_DATABASE_URL (or ACCORD_MIGRATION_DATABASE_URL_FILE) is not set: the database, as the owner role"
    exec "$accord" migrate "$@"
    ;;
  probe)
    path=${1:-/readyz}
    [[ $path == /* ]] || fail "probe takes a path such as /readyz"
    exec 3<>"/dev/tcp/127.0.0.1/${ACCORD_PORT:-8080}" || exit 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
    IFS= read -r -t 5 status <&3 || exit 1
    [[ $status == "HTTP/1.1 200"* ]]
    ;;
  accord)
    exec "$accord" "$@"
    ;;
  *)
    fail "unknown command '$command' (serve, migrate, probe, accord …)"
    ;;
esac

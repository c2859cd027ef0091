# Sourced by the end-to-end scripts (contract-fuzz, browser-test): serves a fresh demo network the
# way `make run` does — a database of its own on the private PostgreSQL, `accord migrate`,
# `accord seed demo`, `accord serve` on a free port — and removes it all on exit.
#   demo_server_start NAME WORK [ENV=VALUE …]   sets base, owner_url; the server's log is WORK/server.log
#   demo_server_5xx WORK                        fails, listing them, when the server answered any 5xx
# Needs: root (the checkout), a built `accord`, `eval "$(Deploy/local/env)"`.

accord="${ACCORD_BIN:-$root/.build/debug/accord}"
demo_server=""
demo_database=""

demo_server_stop() {
  [[ -n $demo_server ]] && kill "$demo_server" 2>/dev/null && wait "$demo_server" 2>/dev/null || true
  [[ -n $demo_database ]] && psql "$ACCORD_MIGRATION_DATABASE_URL" -Xqc "DROP DATABASE IF EXISTS $demo_database WITH (FORCE)" >/dev/null 2>&1 || true
}

demo_server_start() {
  local name=$1 work=$2
  shift 2
  [[ -x $accord ]] || { echo "error: no $accord; build first (swift build)" >&2; exit 1; }
  : "${ACCORD_MIGRATION_DATABASE_URL:?eval \"\$(Deploy/local/env)\" first}"
  demo_database="accord_${name}_$$"
  owner_url="${ACCORD_MIGRATION_DATABASE_URL/\/accord\?//$demo_database?}"
  local app_url="${ACCORD_DATABASE_URL/\/accord\?//$demo_database?}"
  trap demo_server_stop EXIT
  psql "$ACCORD_MIGRATION_DATABASE_URL" -Xqc "CREATE DATABASE $demo_database"
  export ACCORD_SCHEMA_DIR="$root/Schema" ACCORD_SCRYPT_LOG_N=10
  ACCORD_MIGRATION_DATABASE_URL="$owner_url" "$accord" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
  ACCORD_MIGRATION_DATABASE_URL="$owner_url" "$accord" seed demo --if-empty >/dev/null
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env ACCORD_DATABASE_URL="$app_url" "$@" "$accord" serve --host 127.0.0.1 --port "$port" 2>"$work/server.log" &
  demo_server=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "error: the server did not get ready" >&2
  tail -20 "$work/server.log" >&2
  exit 1
}

demo_server_5xx() {
  if grep -E 'status=5[0-9][0-9]' "$1/server.log" >/dev/null; then
    echo "error: the server answered 5xx:" >&2
    grep -E 'status=5[0-9][0-9]' "$1/server.log" | head -20 >&2
    return 1
  fi
}

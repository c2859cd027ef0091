# shellcheck shell=bash disable=SC2034  # vars are used by the sourcing scripts
# Shared helpers for the Deploy/local scripts. Source it, do not run it.
# Every script resolves the cluster location through here, so they agree.

# Repo root from this file's location, not the cwd.
ACCORD_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
ACCORD_STATE_DIR="$ACCORD_REPO_ROOT/.accord"
ACCORD_PG_LINK="$ACCORD_STATE_DIR/postgres"
ACCORD_SECRETS_FILE="$ACCORD_STATE_DIR/secrets.env"
ACCORD_PG_PORT="${ACCORD_PG_PORT:-54329}"
ACCORD_PG_SUPERUSER=postgres

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# Folder holding data/, run/ and postgres.log (follows the /var/tmp symlink).
pg_base_dir() {
  if [[ -L $ACCORD_PG_LINK ]]; then readlink "$ACCORD_PG_LINK"; else printf '%s\n' "$ACCORD_PG_LINK"; fi
}
pg_data_dir() { printf '%s/data\n' "$(pg_base_dir)"; }
pg_run_dir() { printf '%s/run\n' "$(pg_base_dir)"; }
pg_log_file() { printf '%s/postgres.log\n' "$(pg_base_dir)"; }

# Fallback location for repos the postgres user cannot traverse.
pg_fallback_dir() {
  local hash
  hash=$(printf '%s' "$ACCORD_REPO_ROOT" | sha256sum | cut -c1-12)
  printf '/var/tmp/accord-postgres-%s\n' "$hash"
}

# OS user that owns and runs the server.
pg_server_user() {
  local data
  data=$(pg_data_dir)
  if [[ -d $data ]]; then stat -c %U "$data"
  elif is_root; then printf 'postgres\n'
  else id -un
  fi
}

# Run a command as the server user, from / (its cwd may be unreadable).
run_pg() {
  local user
  user=$(pg_server_user)
  if is_root; then
    (cd / && runuser -u "$user" -- "$@")
  elif [[ $user == "$(id -un)" ]]; then
    "$@"
  else
    die "cluster $(pg_data_dir) belongs to '$user'; run as '$user' or root"
  fi
}

# Run a daemon-spawning command with only stdin/stdout/stderr open, so the
# server does not inherit (and hold) our lock file or a caller's pipes.
run_pg_closefds() {
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    run_pg "$@"
  )
}

# Server binaries (Debian keeps initdb/pg_ctl off PATH).
pg_bindir() {
  local dir
  for dir in "${ACCORD_PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" \
             /usr/lib/postgresql/15/bin "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /x/x)")"; do
    if [[ -n $dir && -x $dir/pg_ctl && -x $dir/initdb ]]; then printf '%s\n' "$dir"; return 0; fi
  done
  die "PostgreSQL server binaries not found; run Deploy/local/install"
}

# Saved password NAME from secrets.env (parsed, not sourced).
read_secret() {
  [[ -r $ACCORD_SECRETS_FILE ]] || return 1
  sed -n "s/^$1=//p" "$ACCORD_SECRETS_FILE" | tail -n 1
}

private_url() { # ROLE PASSWORD
  printf 'postgresql://%s:%s@127.0.0.1:%s/accord?sslmode=disable\n' "$1" "$2" "$ACCORD_PG_PORT"
}

# True when ACCORD_DATABASE_URL points at a database we do not manage.
# (A URL exported earlier by Deploy/local/env still counts as private.)
external_db() {
  [[ -n ${ACCORD_DATABASE_URL:-} ]] || return 1
  local pw
  pw=$(read_secret ACCORD_APP_PASSWORD) || return 0
  [[ -z $pw || $ACCORD_DATABASE_URL != "postgresql://accord_app:$pw@127.0.0.1:"* ]]
}

# Keep stray libpq settings from redirecting the private-cluster tools.
clear_pg_env() {
  unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE \
        PGSERVICE PGOPTIONS PGSSLMODE PGDATA
}

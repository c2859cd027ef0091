#!/usr/bin/env bash
# Runs once, when the PostgreSQL container creates its cluster (/docker-entrypoint-initdb.d): the
# roles and the database Accord expects, as Deploy/local/start makes them. The owner role runs
# migrations; the application role, which row-level security binds, serves.
set -euo pipefail
owner_pw="$(<"$ACCORD_OWNER_PASSWORD_FILE")"
app_pw="$(<"$ACCORD_APP_PASSWORD_FILE")"
psql -v ON_ERROR_STOP=1 -v owner_pw="$owner_pw" -v app_pw="$app_pw" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE accord_owner LOGIN CREATEDB CREATEROLE NOSUPERUSER PASSWORD :'owner_pw';
CREATE ROLE accord_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'app_pw';
\connect template1
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
\connect postgres
CREATE DATABASE accord OWNER accord_owner ENCODING 'UTF8';
\connect accord
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
SQL

# Local dev/test entry points. The database is a private PostgreSQL cluster
# (Deploy/local/start) unless ACCORD_DATABASE_URL points at an external one.
SHELL := /bin/bash
SWIFT ?= swift
ACCORD_PORT ?= 8080
TEST_FLAGS ?=

.PHONY: bench-rooms bench-admin-stats db db-stop psql build migrate run test lint format bench bench-api bench-directory clean-db

db:
	Deploy/local/install && Deploy/local/start

db-stop:
	Deploy/local/stop

psql: db
	eval "$$(Deploy/local/env)" && psql "$$ACCORD_MIGRATION_DATABASE_URL"

build:
	$(SWIFT) build

migrate: db
	eval "$$(Deploy/local/env)" && $(SWIFT) run accord migrate

run: db build
	eval "$$(Deploy/local/env)" && $(SWIFT) run accord migrate && $(SWIFT) run accord seed demo --if-empty && $(SWIFT) run accord serve --host 127.0.0.1 --port $(ACCORD_PORT)

test: db
	Deploy/local/install --test
	eval "$$(Deploy/local/env)" && $(SWIFT) test $(TEST_FLAGS)

# The toolchain's swift-format, with the repository's .swift-format.
FORMAT_PATHS := Sources Tests Benchmarks/Sources Package.swift Benchmarks/Package.swift

lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

format:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMAT_PATHS)

bench: db
	eval "$$(Deploy/local/env)" && cd Benchmarks && ./run

bench-api: db
	eval "$$(Deploy/local/env)" && Benchmarks/api

bench-directory: db
	eval "$$(Deploy/local/env)" && Benchmarks/directory/run

bench-rooms: db
	eval "$$(Deploy/local/env)" && Benchmarks/rooms

bench-admin-stats: db
	eval "$$(Deploy/local/env)" && Benchmarks/admin-stats

clean-db:
	Deploy/local/clean

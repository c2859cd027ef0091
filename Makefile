# Local dev/test entry points. The database is a private PostgreSQL cluster
# (Deploy/local/start) unless ACCORD_DATABASE_URL points at an external one.
SHELL := /bin/bash
SWIFT ?= swift
ACCORD_PORT ?= 8080
TEST_FLAGS ?=

.PHONY: check-deploy bench-rooms bench-admin-stats db db-stop psql build migrate run test lint format bench bench-api bench-directory clean-db

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
	$(MAKE) --no-print-directory check-deploy
	eval "$$(Deploy/local/env)" && $(SWIFT) test $(TEST_FLAGS)
	eval "$$(Deploy/local/env)" && Tests/Support/contract-fuzz --seed 7 --examples 8
	eval "$$(Deploy/local/env)" && Tests/Support/browser-test

# The contract and the deployment files, checked as a partner's tools would check them: the OpenAPI
# document, the Kubernetes manifests (strictly, for a current Kubernetes), the shell scripts' syntax.
VENV := .accord/venv/bin
check-deploy:
	Deploy/local/install --test
	$(VENV)/openapi-spec-validator Sources/AccordServer/Resources/openapi.yaml
	$(VENV)/python Tests/Support/contract-lint Sources/AccordServer/Resources/openapi.yaml
	$(VENV)/kubernetes-validate --strict --quiet -k 1.33.0 Deploy/k8s/*.yaml
	$(VENV)/kubernetes-validate --strict --quiet -k 1.37.0 Deploy/k8s/*.yaml
	for script in Deploy/docker/entrypoint.sh Deploy/docker/postgres-init.sh Deploy/backup/dump Deploy/backup/restore; do bash -n "$$script"; done
	@echo "check-deploy: the contract, the manifests and the scripts are valid"

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

#!/usr/bin/env bash
# Runs every fuzz target of knib for the given time each (default 2s):
# `make test` runs them briefly, `make fuzz` longer (FUZZTIME=5m).
set -euo pipefail
cd "$(dirname "$0")/.."
time="${1:-2s}"
targets=(
  "FuzzRequests ./internal/httpapi"
  "FuzzSettingValues ./internal/settings"
  "FuzzDecodeRequest ./internal/agentrpc"
  "FuzzDecodeInfo ./internal/qemuimg"
  "FuzzDomainXML ./internal/hypervisor/libvirt"
  "FuzzInStorage ./internal/agent"
  "FuzzManifest ./internal/agent"
  "FuzzImport ./internal/store/sqlstore"
)
for t in "${targets[@]}"; do
  set -- $t
  echo "fuzz: $1 ($2) for $time"
  go test -run '^$' -fuzz "^$1\$" -fuzztime "$time" "$2"
done

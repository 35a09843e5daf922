#!/usr/bin/env bash
# Runs every fuzz target of knib for the given budget each (default 5000x):
# `make test` runs each for a count of inputs (5000x), `make fuzz` longer
# (FUZZTIME=5m). make test uses a count, not a duration: Go 1.26's fuzz
# coordinator can report its own -fuzztime deadline as a failure ("context
# deadline exceeded", no crasher; go.dev/issue/75804, fixed in Go 1.27), and
# a count has no deadline to race.
set -euo pipefail
cd "$(dirname "$0")/.."
time="${1:-5000x}"
targets=(
  "FuzzRequests ./internal/httpapi"
  "FuzzSettingValues ./internal/settings"
  "FuzzDecodeRequest ./internal/agentrpc"
  "FuzzDecodeInfo ./internal/qemuimg"
  "FuzzDecodeMap ./internal/qemuimg"
  "FuzzDomainXML ./internal/hypervisor/libvirt"
  "FuzzInStorage ./internal/agent"
  "FuzzManifest ./internal/agent"
  "FuzzImport ./internal/store/sqlstore"
  "FuzzOpen ./internal/offsite/seal"
)
for t in "${targets[@]}"; do
  set -- $t
  echo "fuzz: $1 ($2) for $time"
  go test -run '^$' -fuzz "^$1\$" -fuzztime "$time" "$2"
done

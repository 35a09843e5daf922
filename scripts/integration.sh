#!/usr/bin/env bash
# Runs the integration tests (test/integration: real libvirtd, QEMU guests,
# PostgreSQL, an S3 server) in two `go test` processes at once, so that one
# test's waits (guest boots, libguestfs appliances, job ticks) overlap with
# another's work. The tests are written to share the host: every test has
# its own domains (knib-t-<name>), server, data directory, port and
# database, and a server only touches what its own storage holds.
#
# Shard A is the list below (the longest tests, about half of the suite's
# time when run alone); shard B is every other test. Both shards' output is
# printed when both are done, and the script fails if either failed.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
TIMEOUT=${TIMEOUT:-40m}
shard_a='^(TestFileLevelRestore|TestTwoServersBurst|TestValidation|TestCompressionJobsSeed|TestCrossHost|TestTwoRemoteAgents|TestConsoleInABrowser|TestRemoteCatalogueFollowsLibvirt)$'

out=$(mktemp -d /tmp/knib-integration-XXXXXX)
trap 'rm -rf "$out"' EXIT

# Build the test binary once, so the two shards do not compile it twice.
$GO test -c -o "$out/integration.test" ./test/integration

start=$(date +%s)
run_shard() { # name, then the -test.run / -test.skip flag
	local name=$1 flag=$2
	(cd test/integration && "$out/integration.test" -test.count=1 -test.timeout="$TIMEOUT" -test.v "$flag" "$shard_a") \
		>"$out/$name.log" 2>&1
}
run_shard a -test.run & pa=$!
run_shard b -test.skip & pb=$!
rca=0 rcb=0
wait "$pa" || rca=$?
wait "$pb" || rcb=$?

for name in a b; do
	echo "=== integration shard $name"
	# Verbose output is kept for failures; for passes, one line per test.
	if grep -q -- '^--- FAIL' "$out/$name.log" || ! grep -q '^PASS$' "$out/$name.log"; then
		cat "$out/$name.log"
	else
		grep -E -- '^(--- |ok|PASS)' "$out/$name.log"
	fi
done
echo "integration: shard a exit $rca, shard b exit $rcb, $(($(date +%s) - start)) s"
[ "$rca" -eq 0 ] && [ "$rcb" -eq 0 ]

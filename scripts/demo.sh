#!/usr/bin/env bash
# demo.sh - the main job on embedded defaults: an all-in-one knib server
# (SQLite and backup storage in /var/lib/knib, in-process agent for the local
# libvirt), a demo VM, an offering, a full and an incremental backup.
# Idempotent: reuses a running server, the demo VM and the offering.
set -euo pipefail
cd "$(dirname "$0")/.."

knib=./bin/knib
export KNIB_DATA_DIR=${KNIB_DATA_DIR:-/var/lib/knib}
server=${KNIB_SERVER:-http://127.0.0.1:8181}
metrics=${KNIB_METRICS_LISTEN:-127.0.0.1:9181}
vm=knib-demo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "server"
pidfile=$KNIB_DATA_DIR/demo-server.pid
if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	# A server this demo started earlier: restart it on the freshly built binary.
	kill "$(cat "$pidfile")"
	for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
	echo "stopped the earlier demo server"
fi
if curl -fsS "$server/api/v1/health" >/dev/null 2>&1; then
	echo "reusing the knib server at $server"
else
	mkdir -p "$KNIB_DATA_DIR"
	nohup "$knib" server --metrics-listen "$metrics" >>"$KNIB_DATA_DIR/server.log" 2>&1 &
	echo $! >"$pidfile"
	echo "started knib server (pid $!, log $KNIB_DATA_DIR/server.log)"
	for _ in $(seq 1 100); do
		curl -fsS "$server/api/v1/health" >/dev/null 2>&1 && break
		sleep 0.2
	done
	curl -fsS "$server/api/v1/health" >/dev/null || { echo "server did not start; see $KNIB_DATA_DIR/server.log" >&2; exit 1; }
fi

say "demo VM"
if virsh -c qemu:///system dominfo "$vm" >/dev/null 2>&1; then
	echo "reusing VM $vm"
	[[ $(virsh -c qemu:///system domstate "$vm") == running ]] || virsh -c qemu:///system start "$vm" >/dev/null
else
	"$knib" dev vm-create "$vm" --disk 256M --disk 64M --start
fi
# The guest boots in a few seconds; its agent answers when it is up.
for _ in $(seq 1 90); do "$knib" vm exec "$vm" -- true >/dev/null 2>&1 && break; sleep 1; done
"$knib" host refresh >/dev/null 2>&1
"$knib" host list
"$knib" vm show "$vm"

say "offering"
# (demo-files: the offering allows file-level restore; a "demo" offering
# of an older demo run did not.)
offering=$("$knib" offering list -o json | jq -r '.[] | select(.name == "demo-files") | .id')
if [[ -z $offering ]]; then
	offering=$("$knib" offering create --name demo-files --description "demo offering" --backup-chain-size 4 \
		--allow-quick-restore --allow-extract-file -o json | jq -r .id)
fi
"$knib" offering list
current=$("$knib" vm show "$vm" -o json | jq -r .offering_id)
if [[ $current != "$offering" ]]; then
	# A demo VM of an older run is on the old "demo" offering.
	if [[ -n $current && $current != null ]]; then "$knib" vm unassign "$vm"; fi
	"$knib" vm assign "$vm" --offering "$offering"
fi

say "backups (a new chain starts with a full, then incrementals)"
"$knib" vm exec "$vm" -- sh -c 'echo "first $(date)" > /data/first.txt && sync && ls /data'
first=$("$knib" backup create "$vm" -o json | jq -r .id)
"$knib" vm exec "$vm" -- sh -c 'echo "second $(date)" > /data/second.txt && sync && ls /data'
"$knib" backup create "$vm"
"$knib" backup list --vm "$vm"
"$knib" vm show "$vm"

say "restore the first backup (the VM must be stopped)"
virsh -c qemu:///system destroy "$vm" >/dev/null
"$knib" backup restore "$first"
virsh -c qemu:///system start "$vm" >/dev/null
for _ in $(seq 1 60); do "$knib" vm exec "$vm" -- true >/dev/null 2>&1 && break; sleep 1; done
echo "files in the guest after the restore (second.txt is gone):"
"$knib" vm exec "$vm" -- ls /data
# The web console: admin logs in with a password set here (kept in the
# data directory, readable by root only) or with the admin token.
pwfile="$KNIB_DATA_DIR/console-admin.password"
if [[ ! -s $pwfile ]]; then
	(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile")
fi
"$knib" account passwd admin --password-file "$pwfile" >/dev/null
say "file-level restore: browse the first backup and extract a file (read in an isolated helper VM)"
"$knib" backup files "$first"
"$knib" backup files "$first" / --disk vda
out=$(mktemp -d)
"$knib" backup extract "$first" /first.txt --disk vda -o "$out/files"
echo "extracted from the first backup: $(cat "$out/files/first.txt")"
rm -rf "$out"
say "metrics (Prometheus): http://$metrics/metrics (no token: localhost only), or $server/metrics with an admin token"
# The token goes in a header read from a file descriptor, never in argv.
if ! scraped=$(curl -fsS "http://$metrics/metrics" 2>/dev/null); then
	scraped=$(curl -fsS -H @<(printf 'Authorization: Bearer %s\n' "$(cat "$KNIB_DATA_DIR/admin.token")") "$server/metrics")
fi
grep -E "^knib_vm_(last_backup_timestamp_seconds|chain_length|stored_bytes)\{.*vm=\"$vm\"" <<<"$scraped" || true
grep -E '^knib_backup_phase_duration_seconds_count' <<<"$scraped" || true
echo "alerting rules (with promtool tests), a scrape configuration and a Grafana dashboard: docs/monitoring/"
say "web console: $server/ui/  (account admin, password in $pwfile, or log in with the token in $KNIB_DATA_DIR/admin.token)"
say "done: try ./bin/knib --help"

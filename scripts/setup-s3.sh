#!/usr/bin/env bash
# Installs the S3 server the offsite-copy tests run on loopback: versitygw
# (github.com/versity/versitygw, Apache-2.0), built with the Go module
# proxy into /var/cache/knib/bin. Its Object Lock is enforced (a locked
# version resists deletion, also in governance mode without the bypass).
# MinIO's server is AGPL and not used. Idempotent: a marker file records
# the version built. Nothing is started: each test starts its own server.
set -euo pipefail
log() { printf 'setup-s3: %s\n' "$*"; }
version=v1.8.0
bin=/var/cache/knib/bin
marker="$bin/versitygw.version"
if [[ -x $bin/versitygw && -f $marker && $(cat "$marker") == "$version" ]]; then
	log "versitygw $version already installed in $bin"
	exit 0
fi
mkdir -p "$bin"
log "building versitygw $version into $bin (about 1.5 minutes)"
GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$version"
printf '%s\n' "$version" >"$marker"
log "versitygw $version installed"

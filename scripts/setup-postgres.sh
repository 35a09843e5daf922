#!/usr/bin/env bash
# setup-postgres.sh - a PostgreSQL for knib's store tests and demo (run as root).
#
# Idempotent, no systemd:
#   1. installs Debian's postgresql package when missing,
#   2. creates the cluster when missing and makes it listen on 127.0.0.1 only,
#      password (scram) authentication over loopback,
#   3. starts it with pg_ctlcluster and waits until it answers,
#   4. creates the role knib (LOGIN CREATEDB, password kept in
#      /etc/knib/postgres.password) and the database knib,
#   5. writes the URL to /etc/knib/postgres.url (mode 0600) and prints it
#      with the password elided.
# Every step logs one line prefixed with "setup-postgres:".
set -euo pipefail

log() { printf 'setup-postgres: %s\n' "$*"; }
die() { printf 'setup-postgres: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"

port=${KNIB_PG_PORT:-5432}
conf_dir=/etc/knib
url_file=$conf_dir/postgres.url
pw_file=$conf_dir/postgres.password

# --- 1. package --------------------------------------------------------------
status=$(dpkg-query -W -f='${db:Status-Status}' postgresql 2>/dev/null || true)
if [[ $status == installed ]]; then
	log "postgresql already installed"
else
	log "installing postgresql (apt-get update first)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq postgresql >/dev/null
	log "postgresql installed"
fi

# --- 2. cluster --------------------------------------------------------------
# The newest installed major version.
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
[[ -n $version ]] || die "no PostgreSQL server under /usr/lib/postgresql"
cluster=main
if pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {f=1} END {exit !f}'; then
	log "cluster $version/$cluster exists"
else
	log "creating cluster $version/$cluster"
	pg_createcluster --port "$port" "$version" "$cluster" >/dev/null
fi
conf=/etc/postgresql/$version/$cluster
# Loopback only, whatever the defaults say; conf.d is read after postgresql.conf.
mkdir -p "$conf/conf.d"
cat >"$conf/conf.d/knib.conf" <<EOF
# written by knib scripts/setup-postgres.sh
listen_addresses = '127.0.0.1'
port = $port
password_encryption = 'scram-sha-256'
EOF
hba=$conf/pg_hba.conf
if ! grep -q '^# knib$' "$hba"; then
	# Prepended so that it wins over the package's lines for the same address.
	log "allowing password logins for role knib over loopback"
	{
		printf '# knib\n'
		printf 'host all knib 127.0.0.1/32 scram-sha-256\n'
		cat "$hba"
	} >"$hba.new"
	chown postgres:postgres "$hba.new"
	chmod 0640 "$hba.new"
	mv "$hba.new" "$hba"
fi

# --- 3. start ----------------------------------------------------------------
mkdir -p /var/run/postgresql
chown postgres:postgres /var/run/postgresql
state=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $4}')
if [[ $state == online* ]]; then
	log "cluster already running; reloading its configuration"
	pg_ctlcluster "$version" "$cluster" reload
else
	log "starting cluster $version/$cluster"
	pg_ctlcluster "$version" "$cluster" start ||
		die "cluster failed to start, see /var/log/postgresql/postgresql-$version-$cluster.log"
fi
for i in $(seq 1 60); do
	if runuser -u postgres -- psql -p "$port" -Atqc 'SELECT 1' >/dev/null 2>&1; then
		break
	fi
	((i < 60)) || die "PostgreSQL does not answer on port $port"
	sleep 1
done
log "PostgreSQL $version answers on 127.0.0.1:$port"

# --- 4. role and database ----------------------------------------------------
mkdir -p "$conf_dir"
chmod 0755 "$conf_dir"
if [[ ! -s $pw_file ]]; then
	# Hex only, so it needs no escaping in the URL or in SQL.
	(umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$pw_file")
fi
chmod 0600 "$pw_file"
password=$(cat "$pw_file")
[[ $password =~ ^[0-9a-f]+$ ]] || die "$pw_file must hold a hex password"

psql_admin() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -Atq "$@"; }
if [[ $(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'knib'") == 1 ]]; then
	log "role knib exists; setting its password"
	psql_admin -c "ALTER ROLE knib WITH LOGIN CREATEDB PASSWORD '$password'" >/dev/null
else
	log "creating role knib"
	psql_admin -c "CREATE ROLE knib WITH LOGIN CREATEDB PASSWORD '$password'" >/dev/null
fi
if [[ $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'knib'") == 1 ]]; then
	log "database knib exists"
else
	log "creating database knib"
	# C collation: byte order, like SQLite, for names and the TEXT times.
	psql_admin -c "CREATE DATABASE knib OWNER knib TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'" >/dev/null
fi

# --- 5. URL ------------------------------------------------------------------
url="postgres://knib:$password@127.0.0.1:$port/knib?sslmode=disable"
(umask 077 && printf '%s\n' "$url" >"$url_file.new")
chmod 0600 "$url_file.new"
mv "$url_file.new" "$url_file"
PGPASSWORD=$password psql -h 127.0.0.1 -p "$port" -U knib -d knib -Atqc 'SELECT 1' >/dev/null ||
	die "role knib cannot log in over loopback"
# The password stays in the files (mode 0600), not in logs.
log "URL written to $url_file: postgres://knib:...@127.0.0.1:$port/knib?sslmode=disable"

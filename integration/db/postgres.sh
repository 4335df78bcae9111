#!/usr/bin/env bash
# postgres.sh: a private PostgreSQL server on 127.0.0.1 for the database
# tests (internal/dbtest, EXACTLY_TEST_POSTGRES_DSN). Trust authentication,
# no password: for local test use only, never for data that matters.
#
# Usage:
#   postgres.sh up     initialize the data dir when it has none, start the
#                      server and wait until it takes connections; a server
#                      already running on the data dir is fine (idempotent)
#   postgres.sh down   stop the server (fast shutdown); keeps the data dir,
#                      remove it for a fresh start next `up`
#   postgres.sh dsn    print the DSN of the server's superuser:
#                      postgres://postgres@127.0.0.1:15432/postgres?sslmode=disable
#   postgres.sh status say whether the server runs
#
# The binaries (initdb, pg_ctl, pg_isready) come from EXACTLY_PG_BIN, or the
# directory of pg_ctl on the
# PATH (symlinks resolved), or the newest /usr/lib/postgresql/<version>/bin
# (Debian's postgresql package, which puts no pg_ctl on the PATH).
# PostgreSQL refuses to run as root: as root, the server runs as the user
# postgres (EXACTLY_PG_USER), owning the data dir; otherwise as the current
# user.
#
# The server is tuned for tests: fsync, synchronous_commit and
# full_page_writes off. A killed server (or a killed test) loses nothing
# that way, only an operating system crash could; a test can kill and
# restart it all the same.
#
# Environment:
#   EXACTLY_PG_PORT   TCP port on 127.0.0.1 (default 15432)
#   EXACTLY_PG_DIR    data dir; the log is server.log in it (default /tmp/exactly-pg)
#   EXACTLY_PG_BIN    directory holding initdb and pg_ctl (default: see above)
#   EXACTLY_PG_USER   the user the server runs as when this runs as root
#                     (default postgres)
#   EXACTLY_PG_WAIT   seconds to wait for the server to start or stop (default 60)
set -euo pipefail

port=${EXACTLY_PG_PORT:-15432}
dir=${EXACTLY_PG_DIR:-/tmp/exactly-pg}
wait_s=${EXACTLY_PG_WAIT:-60}
run_user=${EXACTLY_PG_USER:-postgres}
sock_dir=/tmp
log="$dir/server.log"

die() { echo "postgres.sh: $*" >&2; exit 1; }

# has_bins says whether directory $1 holds the programs this script runs.
has_bins() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/pg_isready" ]; }

# bindir prints the directory holding initdb, pg_ctl and pg_isready.
bindir() {
	local d
	if [ -n "${EXACTLY_PG_BIN:-}" ]; then
		has_bins "$EXACTLY_PG_BIN" || die "EXACTLY_PG_BIN=$EXACTLY_PG_BIN lacks initdb, pg_ctl or pg_isready"
		echo "$EXACTLY_PG_BIN"
		return
	fi
	if command -v pg_ctl >/dev/null 2>&1; then
		d=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
		if has_bins "$d"; then
			echo "$d"
			return
		fi
	fi
	# Debian: /usr/lib/postgresql/<major>/bin, the newest major first.
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$d" ] && has_bins "$d"; then
		echo "$d"
		return
	fi
	die "no PostgreSQL found (initdb, pg_ctl, pg_isready): install it (Debian: apt-get install postgresql) or set EXACTLY_PG_BIN"
}

# as_owner runs a command as the user the server runs as, from a directory
# that user can read (a root-only working directory makes initdb complain).
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u "$run_user" -- "$@")
	else
		(cd / && "$@")
	fi
}

# alive: a postmaster holds the data dir's lock file (it may still be
# starting, or a killed one not yet reaped).
alive() {
	[ -f "$dir/PG_VERSION" ] && as_owner "$bin/pg_ctl" status -D "$dir" >/dev/null 2>&1
}

# running: alive and taking connections on the port.
running() {
	alive && "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2
}

# settle waits while the data dir's postmaster is alive but takes no
# connections (recovering, or killed and waiting to be reaped); it returns
# 0 once it takes them, 1 once it is gone.
settle() {
	local i
	for ((i = 0; i < wait_s * 10; i++)); do
		running && return 0
		alive || return 1
		sleep 0.1
	done
	die "the server on $dir is alive but takes no connections on port $port; log: $log"
}

up() {
	if [ "$(id -u)" -eq 0 ]; then
		id -u "$run_user" >/dev/null 2>&1 ||
			die "running as root, and there is no user $run_user to run the server as (set EXACTLY_PG_USER)"
	fi
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown -R "$run_user" "$dir"
	if settle; then
		return
	fi
	if [ ! -f "$dir/PG_VERSION" ]; then
		[ -z "$(ls -A "$dir")" ] ||
			die "$dir is neither empty nor a PostgreSQL data dir: remove it or set EXACTLY_PG_DIR"
		as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >/dev/null ||
			die "initdb failed"
	fi
	chmod 700 "$dir"
	local opts="-p $port -k $sock_dir -c listen_addresses=127.0.0.1 -c max_connections=300"
	opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	if ! as_owner "$bin/pg_ctl" start -D "$dir" -l "$log" -w -t "$wait_s" -o "$opts" >/dev/null; then
		tail -n 20 "$log" >&2 || true
		die "the server did not start (port $port taken by another server?); log: $log"
	fi
}

down() {
	if alive; then
		as_owner "$bin/pg_ctl" stop -D "$dir" -m fast -w -t "$wait_s" >/dev/null || die "the server did not stop; log: $log"
	fi
}

case "${1:-}" in
up)
	bin=$(bindir)
	up
	;;
down)
	[ -d "$dir" ] || exit 0
	bin=$(bindir)
	down
	;;
dsn) echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" ;;
status)
	bin=$(bindir)
	if running; then echo "running on 127.0.0.1:$port, data dir $dir"; else echo "not running (data dir $dir)"; exit 1; fi
	;;
*)
	echo "usage: $0 up|down|dsn|status" >&2
	exit 2
	;;
esac

#!/usr/bin/env bash
# mariadb.sh: a private MariaDB server on 127.0.0.1 for the database tests
# (internal/dbtest, EXACTLY_TEST_MYSQL_DSN). Its root user has no password:
# for local test use only, never for data that matters.
#
# Usage:
#   mariadb.sh up      initialize the data dir when it has none, start the
#                      server and wait until it takes connections; a server
#                      already running on the run dir is fine (idempotent)
#   mariadb.sh down    stop the server (SIGTERM, a clean shutdown); keeps the
#                      run dir, remove it for a fresh start next `up`
#   mariadb.sh dsn     print the go-sql-driver/mysql DSN of its root user:
#                      root@tcp(127.0.0.1:13306)/
#   mariadb.sh status  say whether the server runs
#
# The run dir holds data/ (the datadir), mariadb.sock, mariadb.pid,
# mariadb.log and install.log. The server reads no option file
# (--no-defaults): the system's /etc/mysql, its datadir and socket, stay
# out of it. As root, the server runs as root (--user=root); otherwise as
# the current user. The binaries are MariaDB's (Debian's mariadb-server):
# mariadbd, mariadb-install-db, mariadb-admin, found on the PATH or in
# /usr/sbin, or in EXACTLY_MARIADB_BIN.
#
# The server is tuned for tests: innodb_flush_log_at_trx_commit=2 and no
# doublewrite buffer. A killed server loses nothing that way, only an
# operating system crash could.
#
# Environment:
#   EXACTLY_MARIADB_PORT  TCP port on 127.0.0.1 (default 13306)
#   EXACTLY_MARIADB_DIR   run dir (default /tmp/exactly-mariadb)
#   EXACTLY_MARIADB_BIN   directory holding the binaries (default: see above)
#   EXACTLY_MARIADB_WAIT  seconds to wait for the server to start or stop
#                         (default 60)
set -euo pipefail

port=${EXACTLY_MARIADB_PORT:-13306}
dir=${EXACTLY_MARIADB_DIR:-/tmp/exactly-mariadb}
wait_s=${EXACTLY_MARIADB_WAIT:-60}
data="$dir/data"
sock="$dir/mariadb.sock"
pidfile="$dir/mariadb.pid"
log="$dir/mariadb.log"

die() { echo "mariadb.sh: $*" >&2; exit 1; }

# find_bin prints the path of MariaDB program $1.
find_bin() {
	local d
	if [ -n "${EXACTLY_MARIADB_BIN:-}" ]; then
		[ -x "$EXACTLY_MARIADB_BIN/$1" ] || die "EXACTLY_MARIADB_BIN=$EXACTLY_MARIADB_BIN holds no $1"
		echo "$EXACTLY_MARIADB_BIN/$1"
		return
	fi
	if command -v "$1" >/dev/null 2>&1; then
		command -v "$1"
		return
	fi
	for d in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
		if [ -x "$d/$1" ]; then
			echo "$d/$1"
			return
		fi
	done
	die "no $1 found: install MariaDB (Debian: apt-get install mariadb-server) or set EXACTLY_MARIADB_BIN"
}

# admin runs mariadb-admin as root through the server's socket.
admin() { "$(find_bin mariadb-admin)" --no-defaults --socket="$sock" --user=root "$@"; }

# server_pid prints the pid of the server on this run dir, failing when
# none runs: a stale pid file may name another process by now.
server_pid() {
	local pid
	pid=$(cat "$pidfile" 2>/dev/null) && [ -n "$pid" ] &&
		tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--pid-file=$pidfile" &&
		echo "$pid"
}

running() { server_pid >/dev/null && admin --connect-timeout=2 ping >/dev/null 2>&1; }

# init creates the datadir: system tables, and root users (localhost,
# 127.0.0.1, ::1) that log in without a password.
init() {
	local as_root=()
	[ "$(id -u)" -eq 0 ] && as_root=(--user=root)
	if ! (cd / && "$(find_bin mariadb-install-db)" --no-defaults --datadir="$data" "${as_root[@]}" \
		--auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1); then
		tail -n 20 "$dir/install.log" >&2 || true
		die "mariadb-install-db failed; log: $dir/install.log"
	fi
}

up() {
	local mariadbd as_root=() pid i
	mariadbd=$(find_bin mariadbd)
	find_bin mariadb-admin >/dev/null
	mkdir -p "$dir"
	if running; then
		return
	fi
	if [ ! -d "$data/mysql" ]; then
		[ ! -e "$data" ] || [ -z "$(ls -A "$data")" ] ||
			die "$data is neither empty nor a MariaDB datadir: remove $dir or set EXACTLY_MARIADB_DIR"
		init
	fi
	[ "$(id -u)" -eq 0 ] && as_root=(--user=root)
	rm -f "$pidfile"
	# setsid, every descriptor redirected: the server outlives this script
	# and holds no pipe of a caller that captures its output. Not a process
	# group leader (no job control here), setsid execs: $! is the server.
	(cd "$dir" && exec setsid "$mariadbd" --no-defaults "${as_root[@]}" --datadir="$data" \
		--port="$port" --bind-address=127.0.0.1 --socket="$sock" --pid-file="$pidfile" \
		--log-error="$log" --skip-name-resolve --max-connections=300 \
		--character-set-server=utf8mb4 \
		--innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
		</dev/null >>"$log" 2>&1) &
	pid=$!
	for ((i = 0; i < wait_s * 10; i++)); do
		if running; then
			return
		fi
		kill -0 "$pid" 2>/dev/null || break # a bad option, the port taken
		sleep 0.1
	done
	tail -n 20 "$log" >&2 || true
	die "the server did not start (port $port taken by another server?); log: $log"
}

down() {
	local pid i
	pid=$(server_pid) || return 0
	kill -TERM "$pid"
	for ((i = 0; i < wait_s * 10; i++)); do
		server_pid >/dev/null || return 0 # exited (a zombie has no command line)
		sleep 0.1
	done
	die "the server (pid $pid) did not stop in ${wait_s}s; log: $log"
}

case "${1:-}" in
up) up ;;
down) down ;;
dsn) echo "root@tcp(127.0.0.1:$port)/" ;;
status)
	if running; then echo "running on 127.0.0.1:$port, run dir $dir"; else echo "not running (run dir $dir)"; exit 1; fi
	;;
*)
	echo "usage: $0 up|down|dsn|status" >&2
	exit 2
	;;
esac

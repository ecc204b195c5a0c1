#!/bin/sh
# A throw-away PostgreSQL server for the benchmark (`make bench-cluster`), Debian's postgresql, default durability
# (fsync on, synchronous commit): `postgres.sh start DIR PORT` prints the URL; `postgres.sh stop DIR` stops it and
# removes DIR. As root (CI, containers) the server runs as the `postgres` user, as initdb requires.
set -eu
command=$1
dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_server() {
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}
case "$command" in
start)
    port=$3
    rm -rf "$dir"; mkdir -p "$dir"; chmod 700 "$dir"
    echo bench > "$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    as_server "$bin/initdb" -D "$dir/data" -U sigillo --auth=scram-sha-256 --pwfile="$dir/pwfile" -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1
    as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    PGPASSWORD=bench as_server "$bin/psql" -h "$dir" -p "$port" -U sigillo -d postgres -q -c "CREATE DATABASE sigillo_bench" >/dev/null 2>&1 || true
    echo "postgres://sigillo@127.0.0.1:$port/sigillo_bench"
    ;;
reset)
    port=$3
    PGPASSWORD=bench as_server "$bin/psql" -h "$dir" -p "$port" -U sigillo -d postgres -q -c "DROP DATABASE IF EXISTS sigillo_bench" -c "CREATE DATABASE sigillo_bench" >/dev/null
    ;;
stop)
    [ -d "$dir/data" ] && as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
esac

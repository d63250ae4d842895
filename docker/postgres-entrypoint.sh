#!/bin/sh
# docker/Dockerfile.postgres's entrypoint: on the first start (an empty volume) make the cluster with
# the official image's settings, then run the server as this process (it receives the stop signal).
#
#   POSTGRES_PASSWORD  the superuser's password (required on the first start; read only then)
#   POSTGRES_USER      the superuser's name (default postgres)
#   POSTGRES_DB        a database made on the first start (default: the user's name)
#   PGDATA             where the cluster lives (default /var/lib/postgresql/data, the volume)
#
# Connections from other hosts and containers need the password (scram-sha-256); only programs
# inside this container reach the unix socket, and they are trusted (as in the official image).
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"

refuse() {
    echo "postgres: $*" >&2
    exit 78
}

# `docker run IMAGE -c max_connections=200` passes options to the server, as the official image does.
case "${1:-}" in -*) set -- postgres "$@" ;; esac

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ "$(id -u)" != 0 ] || refuse "refusing to make the cluster as root: run the container as the postgres user"
    [ -n "${POSTGRES_PASSWORD:-}" ] \
        || refuse "refusing to make the cluster without a password: set POSTGRES_PASSWORD (in .env for compose)"
    # The names go into SQL unquoted by anything but "…": plain identifiers only.
    for name in "$user" "$db"; do
        case "$name" in
        "" | [0-9]* | *[!A-Za-z0-9_]*) refuse "'$name' is not a plain name (letters, digits, _)" ;;
        esac
    done
    echo "postgres: first start, making the cluster in $PGDATA (user $user, database $db)"
    pwfile="$(mktemp)"
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    trap - EXIT
    # initdb lets in 127.0.0.1 and ::1 only; the clients are other containers and hosts.
    printf '\n# freerouter-postgres: every address, with the password.\nhost all all all scram-sha-256\n' \
        >>"$PGDATA/pg_hba.conf"
    printf "\n# freerouter-postgres\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "postgres: cluster made"
fi

exec "$@"

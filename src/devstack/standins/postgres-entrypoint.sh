#!/bin/sh
# The official image's contract, reduced to what a development stack uses.
set -eu
case "$1" in -*) set -- postgres "$@" ;; esac

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set: give the database a password (as the official image requires)}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 -D "$PGDATA" > /dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    # Create the database over the socket only, before the port opens: readiness means ready.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start > /dev/null
    if [ "$db" != postgres ]; then
        # psql quotes the name itself (:"db"); variables are only expanded on stdin.
        echo 'CREATE DATABASE :"db";' | psql -q -v ON_ERROR_STOP=1 --username="$user" \
            --dbname=postgres --set=db="$db"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    echo "stand-in postgres: initialised $PGDATA for user $user, database $db"
fi

exec "$@"

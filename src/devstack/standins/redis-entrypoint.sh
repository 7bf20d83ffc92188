#!/bin/sh
# The official image's contract: flags alone mean redis-server, run as the redis user, and
# without a config file protected mode is off (the port is only published on 127.0.0.1).
set -eu
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no --dir /data "$@"
fi

exec "$@"

#!/bin/sh
# Before the package's files go, on removal only (the .deb's prerm gets
# "remove", the .rpm's %preun 0; an upgrade gets "upgrade" or 1 and
# leaves gatehouse running): stop gatehouse, which drains and stops
# every app, and its sockets, and disable them all. Left running, it
# would serve on from a deleted binary under a unit that no longer
# exists, and an enabled socket would start a service that is gone; the
# links `systemctl enable` made would dangle. A reinstall leaves them
# disabled, as a first install does.
set -e

case "$1" in
  remove | 0)
    if [ -d /run/systemd/system ]; then
      # Two commands, so that a unit that cannot be disabled (masked by
      # hand) keeps none from being stopped. The sockets too: each would
      # start the service again at its next connection.
      systemctl stop gatehouse.socket gatehouse-https.socket \
        gatehouse-admin.socket gatehouse.service >/dev/null 2>&1 || true
      systemctl disable gatehouse.socket gatehouse-https.socket \
        gatehouse-admin.socket gatehouse.service >/dev/null 2>&1 || true
    fi
    ;;
esac

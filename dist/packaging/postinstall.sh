#!/bin/sh
# After the .deb's or .rpm's files land: systemd reads the new or changed
# unit. The service is neither enabled nor started, nor restarted on an
# upgrade: the shipped config is an example to edit first, and a restart
# stops every app (`gatehouse upgrade` replaces the binary without that).
set -e

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi

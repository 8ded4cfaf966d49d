#!/bin/sh
# After the package's files are gone: systemd forgets the removed unit.
# The user and group stay, as do /var/lib/gatehouse and what the apps
# wrote: files they own would otherwise be left to a recycled uid.
set -e

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi

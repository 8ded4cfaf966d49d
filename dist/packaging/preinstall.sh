#!/bin/sh
# Before the .deb's or .rpm's files land: the system user and group the
# unit runs as (User=gatehouse, Group=gatehouse), which must exist first
# because /etc/gatehouse and its config are the group's. Run on every
# install and upgrade, so it changes nothing that is already there: a
# user made by hand or by configuration management is kept as it is.
set -e

if ! getent group gatehouse >/dev/null 2>&1; then
  groupadd --system gatehouse
fi
if ! getent passwd gatehouse >/dev/null 2>&1; then
  # No home made here: systemd makes /var/lib/gatehouse (StateDirectory=)
  # at the first start and gives it to the user.
  useradd --system --gid gatehouse --home-dir /var/lib/gatehouse \
    --no-create-home --shell /usr/sbin/nologin \
    --comment "gatehouse app supervisor and gateway" gatehouse
fi

#!/bin/sh
# units.sh OUTDIR: the systemd units the .deb and .rpm install, written
# to OUTDIR (GoReleaser's before hook): every unit in dist/systemd, which
# a manual install puts beside /usr/local/bin/gatehouse, with the
# packaged binary's path, /usr/bin/gatehouse, in its place and a note
# that the package has done the install steps its header lists.
set -eu
out=$1
here=$(dirname "$0")
rm -rf "$out"
mkdir -p "$out"
for unit in "$here"/../systemd/*.service "$here"/../systemd/*.socket; do
  [ -e "$unit" ] || continue
  name=$(basename "$unit")
  {
    echo "# ${name} as the gatehouse package installs it, with gatehouse at"
    echo "# /usr/bin/gatehouse. Of the install steps below, the package has made the"
    echo "# user, copied the files and reloaded systemd; the rest is yours. An upgrade"
    echo "# replaces this file: change it with a drop-in (systemctl edit ${name})."
    echo "#"
    sed 's|/usr/local/bin/gatehouse|/usr/bin/gatehouse|g' "$unit"
  } >"$out/$name"
done
if ! grep -q '^ExecStart=/usr/bin/gatehouse ' "$out/gatehouse.service"; then
  echo "units.sh: $out/gatehouse.service does not run /usr/bin/gatehouse" >&2
  exit 1
fi

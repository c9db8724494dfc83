#!/bin/sh
# make install into a DESTDIR puts every piece in place, keeps an existing
# /etc/slotd/slotd.yaml, and make uninstall takes it all back; the man pages
# render without warnings; a C program builds against the installed libslotd.
set -eu
BUILD=build   # the plain build: sanitized objects need the sanitizer runtime to link
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
cd "$ROOT"
make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr/local >/dev/null
for f in usr/local/bin/slotd usr/local/bin/slotd-worker usr/local/bin/slotctl \
         usr/local/lib/libslotd.a usr/local/include/slotd_worker.h \
         usr/local/include/slotd_producer.h \
         usr/local/share/man/man8/slotd.8 usr/local/share/man/man1/slotctl.1 \
         usr/local/share/man/man1/slotd-worker.1 usr/local/share/man/man5/slotd.yaml.5 \
         usr/local/share/man/man3/libslotd.3 \
         etc/systemd/system/slotd.service etc/systemd/system/slotd@.service \
         etc/systemd/system/slotd-worker@.service \
         etc/systemd/system/slotd-stunnel.service usr/local/share/doc/slotd/slotd-stunnel.conf \
         usr/local/share/doc/slotd/tls-certs.sh \
         etc/slotd/slotd.yaml usr/local/share/doc/slotd/protocol.md; do
    [ -e "$D/$f" ] || { echo "missing $f"; exit 1; }
done
# The TLS sidecar is installed, not enabled, and has no configuration in /etc.
links=$(find "$D/etc" -type l)
[ -z "$links" ] || { echo "install enabled something: $links"; exit 1; }
[ ! -e "$D/etc/slotd/slotd-stunnel.conf" ] || { echo "install wrote etc/slotd/slotd-stunnel.conf"; exit 1; }
grep -q '^ExecStart=/usr/bin/stunnel4 /etc/slotd/slotd-stunnel.conf$' "$D/etc/systemd/system/slotd-stunnel.service" ||
    { echo "slotd-stunnel.service: unexpected ExecStart"; exit 1; }
"$D/usr/local/bin/slotd" -t -c "$D/etc/slotd/slotd.yaml" >/dev/null
# A second install keeps the operator's file.
echo "# mine" >> "$D/etc/slotd/slotd.yaml"
make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr/local >/dev/null
grep -q "# mine" "$D/etc/slotd/slotd.yaml" || { echo "slotd.yaml overwritten"; exit 1; }
# The man pages render cleanly.
for m in "$D"/usr/local/share/man/man*/*; do
    w=$(man --warnings -l "$m" 2>&1 >/dev/null)
    [ -z "$w" ] || { echo "$m: $w"; exit 1; }
done
# libslotd and its header are enough to build a worker.
cat > "$D/w.c" <<'C'
#include <slotd_worker.h>
int main(void) { struct slotd_worker_options o = { 0 }; char e[64]; o.id = "x"; o.port = 1;
                 return slotd_worker_open(&o, e, sizeof e) == NULL ? 0 : 1; }
C
cc -I"$D/usr/local/include" "$D/w.c" -L"$D/usr/local/lib" -lslotd -lhiredis -ljansson -pthread -o "$D/w"
"$D/w"
# ... and a producer.
cat > "$D/p.c" <<'C'
#include <slotd_producer.h>
int main(void) { struct slotd_producer_options o = { 0 }; char e[64]; o.port = 1; o.shards = 3;
                 return slotd_producer_open(&o, e, sizeof e) == NULL ? 0 : 1; }
C
cc -I"$D/usr/local/include" "$D/p.c" -L"$D/usr/local/lib" -lslotd -lhiredis -pthread -o "$D/p"
"$D/p"
make -s uninstall BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr/local >/dev/null
left=$(cd "$D" && find . -type f ! -name w ! -name w.c ! -name p ! -name p.c | sort)
[ "$left" = "./etc/slotd/slotd.yaml" ] || { echo "left after uninstall: $left"; exit 1; }
echo "install, reinstall, man pages, libslotd, uninstall: ok"

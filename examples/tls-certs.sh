#!/bin/sh
# A private CA and the certificates of the TLS recipe of docs/operations.md
# (TLS), made with openssl. For a trial, or for Redis hosts that have no CA
# of their own; the TLS test and the bench make theirs with it.
#
#   tls-certs.sh DIR [NAME...]
#
# In DIR (which must exist):
#   ca.crt, ca.key          the CA: stunnel's CAfile, Redis's tls-ca-cert-file
#   redis.crt, redis.key    Redis's certificate for each NAME (a host name or
#                           an IP address; default: 127.0.0.1 localhost):
#                           tls-cert-file, tls-key-file
#   client.crt, client.key  stunnel's certificate (cert, key), for Redis's
#                           tls-auth-clients
# Keys are mode 0600; files already there are overwritten.
set -eu
[ $# -ge 1 ] || { echo "usage: tls-certs.sh DIR [NAME...]" >&2; exit 64; }
dir=$1
shift
[ $# -gt 0 ] || set -- 127.0.0.1 localhost
san=""
for n in "$@"; do
    case $n in
    *:*) t=IP ;;                # IPv6
    *[!0-9.]*) t=DNS ;;
    *) t=IP ;;
    esac
    san="${san:+$san, }$t:$n"
done
umask 077
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc"

# The CA: self-signed, CA:true (openssl's default x509 extensions); a name
# of its own, so that two CAs made here are two CAs to a verifier too.
# shellcheck disable=SC2086
openssl req -x509 -new $ec -days 3650 -subj "/CN=slotd Redis CA $(date -u +%Y%m%dT%H%M%SZ) $$" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null

# A leaf: its key and request, then signed by the CA with these extensions.
leaf() {    # name, subject, extended key usage, subjectAltName or ""
    printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = %s\n' \
        "$3" > "$dir/$1.ext"
    [ -z "$4" ] || printf 'subjectAltName = %s\n' "$4" >> "$dir/$1.ext"
    # shellcheck disable=SC2086
    openssl req -new $ec -subj "/CN=$2" -keyout "$dir/$1.key" -out "$dir/$1.csr" 2>/dev/null
    openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -days 825 \
        -extfile "$dir/$1.ext" -out "$dir/$1.crt" 2>/dev/null
    rm -f "$dir/$1.csr" "$dir/$1.ext"
}
# Redis's: serverAuth, and clientAuth too, as Redis presents it to its
# master when it replicates over TLS (unless tls-client-cert-file is set).
leaf redis "$1" "serverAuth, clientAuth" "$san"
leaf client "slotd" "clientAuth" ""
chmod 644 "$dir/ca.crt" "$dir/redis.crt" "$dir/client.crt"

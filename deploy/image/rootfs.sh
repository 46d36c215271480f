#!/bin/sh
# Stages the filesystem of meshtrust's container image in OUT, and nothing else:
#   /usr/local/bin/meshtrust                the binary;
#   every shared library `ldd` lists, and the ELF interpreter, at the paths `ldd` prints
#   (copied through symlinks, so the image holds files, not dangling links);
#   /etc/ssl/certs/ca-certificates.crt      CA certificates (AWS Private CA, OIDC discovery);
#   /etc/passwd, /etc/group                 the unprivileged user meshtrust, 65532:65532;
#   /etc/nsswitch.conf                      `hosts: files dns`, so that /etc/hosts (a pod's
#                                           hostAliases) is read before DNS, as everywhere
#                                           else (glibc's default without the file is DNS
#                                           first); glibc 2.34+ has files and dns built in;
#   /tmp                                    mode 1777, the mount point of a writable volume.
# The builder stage of deploy/Containerfile runs it on the release binary; tests/e2e/image.rs
# runs it on the binary the tests built and builds only the final stage from OUT.
#
# Usage: deploy/image/rootfs.sh BINARY OUT [CA_BUNDLE]
set -eu
umask 022

bin=${1:?usage: rootfs.sh BINARY OUT [CA_BUNDLE]}
out=${2:?usage: rootfs.sh BINARY OUT [CA_BUNDLE]}
ca=${3:-/etc/ssl/certs/ca-certificates.crt}

[ -x "$bin" ] || { echo "rootfs.sh: $bin is not an executable; build it with cargo build --release" >&2; exit 1; }
[ -s "$ca" ] || { echo "rootfs.sh: $ca is missing; install the ca-certificates package" >&2; exit 1; }
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "rootfs.sh: $out is not empty; give an empty or new directory" >&2
  exit 1
fi

install -D -m 0755 "$bin" "$out/usr/local/bin/meshtrust"

# ldd prints "name => /path (addr)" per library and "/path (addr)" for the interpreter;
# linux-vdso has no file. A library it cannot find ("not found") is an error here, not in
# the cluster.
libs=$(ldd "$bin" 2>&1) || case $libs in
  *"not a dynamic executable"*|*"statically linked"*) libs="" ;;
  *) echo "rootfs.sh: ldd $bin failed: $libs" >&2; exit 1 ;;
esac
case $libs in
  *"not found"*) echo "rootfs.sh: $bin needs a library that is not installed:" >&2
                 echo "$libs" >&2; exit 1 ;;
esac
for lib in $(printf '%s\n' "$libs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  install -D -m 0755 "$(readlink -f "$lib")" "$out$lib"
done

install -D -m 0644 "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
printf 'meshtrust:x:65532:65532:meshtrust:/nonexistent:/sbin/nologin\n' > "$out/etc/passwd"
printf 'meshtrust:x:65532:\n' > "$out/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"
mkdir -p "$out/tmp"
chmod 1777 "$out/tmp"

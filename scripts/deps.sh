#!/bin/sh
# Installs the Debian packages torpor needs to build, run and test.
# As root it runs apt-get itself; otherwise it prints the exact command.
set -e

packages="gnu-efi nasm binutils gcc make mtools qemu-system-x86 ovmf
libcmocka-dev python3-pytest python3-pytest-xdist gnuplot-nox
clang libclang-rt-dev cppcheck
libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"

missing=""
for package in $packages; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $package"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >&2
else
    echo "deps: missing packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi

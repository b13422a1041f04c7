#!/usr/bin/env bash
# Runs torpor as the libvirt domain `torpor` on this machine (make
# run-libvirt): starts the daemons, defines the domain from
# scripts/torpor-domain.xml with its files in build/libvirt/, starts it and
# says how to reach its console; `clean` takes all of it away again.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
name=torpor
memory=512
dir="$here/build/libvirt"
uri=qemu:///system
holder=run-libvirt

usage() {
    cat <<'TXT'
usage: scripts/run-libvirt.sh [start|console|clean] [--name NAME] [--memory MIB]
  start    (default) start libvirtd (scripts/libvirt.sh), define the domain
           (default name torpor) and start it; a hibernated domain resumes.
           Its files are in build/libvirt/: vars.fd (nvram), swap.img and
           data.img (kept between runs), console.sock, console.log
  console  attach this terminal to the serial console (Ctrl-] detaches)
  clean    destroy and undefine the domain (with its nvram), stop the
           daemons if nothing else holds them, remove build/libvirt/
  --memory MIB  guest RAM for a new definition (default 512)
Must run as root. See docs/libvirt.md.
TXT
}

die() { echo "run-libvirt: $*" >&2; exit 1; }
virsh_() { virsh -q -c "$uri" "$@"; }

action=start
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then action=$1; shift; fi
while [ $# -gt 0 ]; do
    case "$1" in
    --name) name=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
case "$memory" in ''|*[!0-9]*|0) die "memory must be a number of MiB" ;; esac
case "$name" in ''|*[!A-Za-z0-9_.-]*) die "a domain name of letters, digits, _ . -" ;; esac
case "$dir" in *[\&\<\>\'\"\|]*) die "the path $dir has a character the XML template cannot take" ;; esac
[ "$(id -u)" -eq 0 ] || die "must run as root (libvirtd serves qemu:///system)"

defined() { virsh_ domuuid "$name" >/dev/null 2>&1; }
active() { [ "$(virsh_ domstate "$name" 2>/dev/null)" != "shut off" ]; }

# the template filled in, with the domain's uuid when it exists already
# (libvirt redefines a domain only under the same uuid)
domain_xml() {
    local uuid=""
    defined && uuid=$(virsh_ domuuid "$name")
    sed -e "s|@NAME@|$name|g" -e "s|@MEMORY_MIB@|$memory|g" \
        -e "s|@ESP@|$here/build/esp.img|g" -e "s|@NVRAM@|$dir/vars.fd|g" \
        -e "s|@DATA@|$dir/data.img|g" -e "s|@SWAP@|$dir/swap.img|g" \
        -e "s|@CONSOLE_SOCKET@|$dir/console.sock|g" -e "s|@CONSOLE_LOG@|$dir/console.log|g" \
        -e "s|<name>$name</name>|<name>$name</name>${uuid:+<uuid>$uuid</uuid>}|" \
        "$here/scripts/torpor-domain.xml"
}

attach_hint() {
    cat <<TXT
run-libvirt: $name runs. Its serial console:
  scripts/run-libvirt.sh console      (or: socat -,raw,echo=0,escape=0x1d unix-connect:$dir/console.sock)
  tail -f $dir/console.log            (everything it printed, across restarts)
Then: virsh -c $uri setmem $name 393216 --live; virsh -c $uri dommemstat $name
      virsh -c $uri shutdown $name --mode acpi   (hibernates; start again resumes)
      scripts/run-libvirt.sh clean               (destroy, undefine, stop libvirtd)
TXT
}

command_start() {
    [ -f "$here/build/esp.img" ] || die "build/esp.img not found; run make first"
    "$here/scripts/libvirt.sh" start --holder "$holder"
    if defined && active; then
        attach_hint
        return
    fi
    mkdir -p "$dir"
    [ -e "$dir/swap.img" ] || truncate -s "$((memory + 64))M" "$dir/swap.img"
    [ -e "$dir/data.img" ] || truncate -s 64M "$dir/data.img"
    domain_xml > "$dir/domain.xml"
    virsh_ define "$dir/domain.xml" >/dev/null
    virsh_ start "$name" >/dev/null
    attach_hint
}

command_console() {
    [ -S "$dir/console.sock" ] || die "no console socket $dir/console.sock: is $name running?"
    if command -v socat >/dev/null; then
        exec socat -,raw,echo=0,escape=0x1d "unix-connect:$dir/console.sock"
    fi
    # without socat: the same with Python (raw terminal, Ctrl-] detaches);
    # the code goes in -c so that stdin stays the terminal
    local forward
    forward=$(cat <<'PY'
import os, select, socket, sys, termios, tty
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
saved = termios.tcgetattr(0) if os.isatty(0) else None
if saved:
    tty.setraw(0)
try:
    while True:
        ready, _, _ = select.select([0, sock], [], [])
        if sock in ready:
            data = sock.recv(4096)
            if not data:
                break
            os.write(1, data)
        if 0 in ready:
            data = os.read(0, 1024)
            if not data or b"\x1d" in data:
                break
            sock.sendall(data)
finally:
    if saved:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)
PY
)
    exec /usr/bin/python3 -c "$forward" "$dir/console.sock"
}

command_clean() {
    if [ -x /usr/bin/virsh ] && virsh_ version >/dev/null 2>&1 && defined; then
        active && virsh_ destroy "$name" >/dev/null
        virsh_ undefine "$name" --nvram >/dev/null
        rm -f "/var/log/libvirt/qemu/$name.log"
        echo "run-libvirt: $name destroyed and undefined"
    fi
    if [ -e "/run/torpor-libvirt/holders/$holder" ]; then
        "$here/scripts/libvirt.sh" stop --holder "$holder"
    fi
    rm -rf "$dir"
}

case "$action" in
start|console|clean) "command_$action" ;;
*) usage >&2; exit 2 ;;
esac

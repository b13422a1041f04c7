#!/usr/bin/env bash
# Starts and stops Debian's libvirt daemons (virtlogd, libvirtd) without
# systemd, for torpor's libvirt tests and `make run-libvirt`; see
# docs/libvirt.md. Stops only daemons it started itself, by pid.
set -euo pipefail

usage() {
    cat <<'TXT'
usage: scripts/libvirt.sh start|stop|status [--holder NAME]
  start    prepare libvirt (the libvirt-qemu user and group, qemu.conf with
           user and group root, /var/log/libvirt/qemu), start virtlogd and
           libvirtd unless they run already, wait until qemu:///system answers
  stop     stop the daemons this script started, once no holder is left;
           refuses while a domain is running
  status   the daemons, who started them, and the holders
  --holder NAME
           who uses the daemons (default `manual`): a daemon this script
           started keeps running until every holder has called stop.
           `pid-N` holders end by themselves when process N has exited.
Must run as root. State: /run/torpor-libvirt (lock, pids, holders).
TXT
}

state=/run/torpor-libvirt
uri=qemu:///system
qemu_conf=/etc/libvirt/qemu.conf
ready_seconds=${TORPOR_LIBVIRT_READY_SECONDS:-180}

log() { echo "libvirt: $*" >&2; }
die() { log "$*"; exit 1; }

# pid_of_program PIDFILE PROGRAM: the pid in PIDFILE when that process is
# alive (not a zombie) and is PROGRAM; nothing otherwise
pid_of_program() {
    local pid
    [ -r "$1" ] || return 0
    pid=$(tr -dc '0-9' < "$1")
    [ -n "$pid" ] || return 0
    is_program "$pid" "$2" && echo "$pid"
    return 0
}

# alive PID: one of the process's threads is not a zombie (while a daemon
# exits, its main thread can be a zombie while other threads still run)
alive() {
    local task status
    for task in /proc/"$1"/task/*/stat; do
        status=$(sed 's/.*) //' "$task" 2>/dev/null | cut -d' ' -f1) || continue
        [ -n "$status" ] && [ "$status" != Z ] && return 0
    done
    return 1
}

# is_program PID PROGRAM: PID is alive and its executable is /usr/sbin/PROGRAM
# (a process that is exiting may have no executable any more: use alive)
is_program() {
    alive "$1" && [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "/usr/sbin/$2" ]
}

# running PROGRAM: the pid of a running PROGRAM, from its pid file or else
# from the process table (a daemon started some other way)
running() {
    local pid
    local other
    pid=$(pid_of_program "/run/$1.pid" "$1")
    if [ -z "$pid" ]; then
        for other in $(pgrep -x "$1" || true); do
            if alive "$other"; then pid=$other; break; fi
        done
    fi
    echo "$pid"
}

# ours PROGRAM: the pid recorded when this script started PROGRAM, if that
# process still runs; a stale record is removed
ours() {
    local pid
    pid=$(pid_of_program "$state/started-$1" "$1")
    [ -n "$pid" ] || rm -f "$state/started-$1"
    echo "$pid"
}

prune_holders() {
    local file name
    for file in "$state"/holders/*; do
        [ -e "$file" ] || continue
        name=${file##*/}
        case "$name" in
        pid-*) [ -d "/proc/${name#pid-}" ] || rm -f "$file" ;;
        esac
    done
}

holders() {
    local file list=""
    for file in "$state"/holders/*; do
        [ -e "$file" ] && list="$list ${file##*/}"
    done
    echo "${list# }"
}

virsh_answers() {
    timeout 30 virsh -c "$uri" version >/dev/null 2>&1
}

# set_conf KEY VALUE: `KEY = "VALUE"` in qemu.conf, replacing an earlier
# (possibly commented out) setting of KEY and keeping every other line
set_conf() {
    local line="$1 = \"$2\""
    if grep -qxF "$line" "$qemu_conf" 2>/dev/null; then
        return
    fi
    if grep -qE "^[[:space:]]*$1[[:space:]]*=" "$qemu_conf" 2>/dev/null; then
        sed -i -E "s|^[[:space:]]*$1[[:space:]]*=.*|$line|" "$qemu_conf"
    else
        printf '%s\n' "$line" >> "$qemu_conf"
    fi
}

prepare() {
    # libvirt 9.0 looks this user up before it reads qemu.conf: without it
    # the QEMU driver fails to initialise
    getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
    getent passwd libvirt-qemu >/dev/null ||
        useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt \
            --no-create-home --shell /usr/sbin/nologin libvirt-qemu
    # QEMU as root: no relabelling of the images, and the capabilities
    # cache stays valid from one daemon start to the next
    mkdir -p "$(dirname "$qemu_conf")"
    touch "$qemu_conf"
    set_conf user root
    set_conf group root
    mkdir -p /var/log/libvirt/qemu
}

# start_daemon PROGRAM: starts /usr/sbin/PROGRAM -d and records its pid
start_daemon() {
    local pid="" deadline=$((SECONDS + 30))
    # 9>&-: the daemon must not inherit the lock
    LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/$1.log" "/usr/sbin/$1" -d 9>&- ||
        die "/usr/sbin/$1 -d failed (see /var/log/libvirt/$1.log)"
    while [ -z "$pid" ]; do
        pid=$(pid_of_program "/run/$1.pid" "$1")
        [ -n "$pid" ] && break
        [ "$SECONDS" -lt "$deadline" ] || die "$1 wrote no pid file /run/$1.pid"
        sleep 0.1  # bounded poll for the daemon's pid file
    done
    echo "$pid" > "$state/started-$1"
    log "started $1 (pid $pid)"
}

# stop_daemon PROGRAM: stops PROGRAM if this script started it
stop_daemon() {
    local pid in_file deadline
    pid=$(ours "$1")
    [ -n "$pid" ] || return 0
    in_file=$(pid_of_program "/run/$1.pid" "$1")
    if [ -n "$in_file" ] && [ "$in_file" != "$pid" ]; then
        die "/run/$1.pid names pid $in_file, not $pid that this script started; left alone"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1  # bounded poll for the daemon's exit
    done
    if alive "$pid"; then
        log "$1 (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
        if alive "$pid"; then die "$1 (pid $pid) does not exit"; fi
    fi
    rm -f "$state/started-$1"
    log "stopped $1 (pid $pid)"
}

command_start() {
    local pid
    pid=$(running libvirtd)
    if [ -n "$pid" ] && [ "$pid" != "$(ours libvirtd)" ]; then
        log "libvirtd (pid $pid) runs already, not started by this script: using it as it is"
    elif [ -z "$pid" ]; then
        prepare
        pid=$(running virtlogd)
        if [ -z "$pid" ]; then
            start_daemon virtlogd
        elif [ "$pid" != "$(ours virtlogd)" ]; then
            log "virtlogd (pid $pid) runs already, not started by this script: using it"
        fi
        start_daemon libvirtd
    fi
    # the first start of libvirtd probes QEMU's capabilities (about 8 s)
    local deadline=$((SECONDS + ready_seconds))
    until virsh_answers; do
        [ -n "$(running libvirtd)" ] || die "libvirtd exited (see /var/log/libvirt/libvirtd.log)"
        [ "$SECONDS" -lt "$deadline" ] || die "$uri did not answer within $ready_seconds s"
        sleep 0.2  # bounded poll until the daemon serves connections
    done
    touch "$state/holders/$holder"
}

command_stop() {
    rm -f "$state/holders/$holder"
    prune_holders
    local left active
    left=$(holders)
    if [ -n "$left" ]; then
        log "still held by: $left; the daemons keep running"
        return 0
    fi
    if [ -n "$(ours libvirtd)" ]; then
        active=$(timeout 30 virsh -c "$uri" list --name 2>/dev/null | sed '/^$/d' | tr '\n' ' ' || true)
        [ -z "$active" ] || die "domains still running: ${active% }; destroy them first"
    fi
    stop_daemon libvirtd
    stop_daemon virtlogd
}

command_status() {
    local program pid mine
    for program in virtlogd libvirtd; do
        pid=$(running "$program")
        mine=$(ours "$program")
        if [ -z "$pid" ]; then
            echo "$program: not running"
        elif [ "$pid" = "$mine" ]; then
            echo "$program: running, pid $pid, started by this script"
        else
            echo "$program: running, pid $pid, not started by this script"
        fi
    done
    echo "holders: $(holders)"
    if virsh_answers; then echo "$uri: answers"; else echo "$uri: does not answer"; fi
}

action=${1:-}
[ $# -gt 0 ] && shift
holder=manual
while [ $# -gt 0 ]; do
    case "$1" in
    --holder) holder=${2:?--holder needs a name}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
case "$holder" in ''|*/*|.*) die "bad holder name '$holder'" ;; esac
case "$action" in
start|stop|status) ;;
-h|--help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || die "must run as root (libvirtd serves qemu:///system)"
for program in /usr/sbin/libvirtd /usr/sbin/virtlogd /usr/bin/virsh; do
    [ -x "$program" ] || die "$program not found; run scripts/deps.sh"
done

mkdir -p "$state/holders"
# one caller at a time: two test sessions may start or stop together
exec 9>"$state/lock"
flock -w 600 9 || die "$state/lock is held by another caller for 10 minutes"
prune_holders
"command_$action"

#!/usr/bin/env bash
# Boots build/esp.img in QEMU with OVMF. The serial console is on this
# terminal (Ctrl-A x quits when it is a tty); QMP listens on a unix socket.
# Exits with QEMU's status and leaves no process, socket or file behind.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
memory=512
machine=q35
qmp_socket=""
serial_socket=""
gdb=0
print_only=0
esp="$here/build/esp.img"
data=""
data_size=64
data_disk=1
balloon=1
balloon_properties=""
free_page_hint=0
swap="$here/build/swap.img"
swap_size=""
swap_disk=1
swap_log=""
vars=""
rng=1
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd

usage() {
    cat <<'TXT'
usage: run-qemu.sh [options] [-- extra QEMU arguments]
  -m, --memory MIB        guest RAM in MiB (default 512)
  -M, --machine TYPE      q35 or pc (default q35)
      --qmp PATH          QMP unix socket path (default: none)
      --serial-socket PATH
                          serial console on a unix socket (QEMU listens and
                          waits for one client) instead of the terminal
      --esp PATH          the FAT image to boot (default build/esp.img)
      --data PATH         raw image for the data disk (serial torpor-data);
                          created sparse if missing (default: a fresh one
                          in a private temporary folder, removed on exit)
      --data-size MIB     size of a data disk this script creates (default 64)
      --no-data           attach no data disk
      --balloon PROPS     extra virtio-balloon-pci properties, comma separated
                          (e.g. deflate-on-oom=on,free-page-reporting=on)
      --free-page-hint    offer free page hinting on the balloon (with the
                          iothread QEMU needs for it)
      --no-balloon        attach no balloon
      --swap PATH         raw image for the hibernation disk (serial
                          torpor-swap); created sparse if missing
                          (default build/swap.img, kept between runs)
      --swap-size MIB     size of a swap disk this script creates
                          (default: the RAM size plus 64 MiB)
      --swap-log LOG      attach the hibernation disk through QEMU's
                          blklogwrites driver: every write, write-zeroes,
                          discard and flush the guest sends to it is
                          appended to LOG in the dm-log-writes format
                          (tests/crash/); LOG is created, or emptied, first
      --no-swap           attach no hibernation disk
      --vars PATH         the OVMF variable store (it holds the image key,
                          docs/security.md); copied from OVMF's template if
                          missing, kept after the run (default: beside the
                          hibernation disk, SWAP.vars.fd, since the key
                          belongs to the images on it; a private copy,
                          removed on exit, with --no-swap)
      --no-rng            attach no virtio-rng device (OVMF then offers no
                          EFI_RNG_PROTOCOL; with the default CPU, which has
                          no RDRAND, torpor boots without entropy)
      --gdb               start QEMU's gdbstub on tcp::1234, CPU halted
      --print             print the QEMU command line and exit
  -h, --help              this text
TXT
}

while [ $# -gt 0 ]; do
    case "$1" in
    -m|--memory) memory=$2; shift 2 ;;
    -M|--machine) machine=$2; shift 2 ;;
    --qmp) qmp_socket=$2; shift 2 ;;
    --serial-socket) serial_socket=$2; shift 2 ;;
    --esp) esp=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --data-size) data_size=$2; shift 2 ;;
    --no-data) data_disk=0; shift ;;
    --balloon) balloon_properties=",$2"; shift 2 ;;
    --free-page-hint) free_page_hint=1; shift ;;
    --no-balloon) balloon=0; shift ;;
    --swap) swap=$2; shift 2 ;;
    --swap-size) swap_size=$2; shift 2 ;;
    --swap-log) swap_log=$2; shift 2 ;;
    --no-swap) swap_disk=0; shift ;;
    --vars) vars=$2; shift 2 ;;
    --no-rng) rng=0; shift ;;
    --gdb) gdb=1; shift ;;
    --print) print_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "run-qemu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

case "$machine" in q35|pc) ;; *) echo "run-qemu.sh: machine must be q35 or pc" >&2; exit 2 ;; esac
case "$memory" in ''|*[!0-9]*) echo "run-qemu.sh: memory must be a number of MiB" >&2; exit 2 ;; esac
case "$data_size" in ''|*[!0-9]*|0) echo "run-qemu.sh: data size must be a number of MiB" >&2; exit 2 ;; esac
[ -z "$swap_log" ] || [ "$swap_disk" = 1 ] || { echo "run-qemu.sh: --swap-log needs the swap disk (not --no-swap)" >&2; exit 2; }
[ -f "$esp" ] || { echo "run-qemu.sh: $esp not found; run make first" >&2; exit 2; }
[ -f "$ovmf_code" ] || { echo "run-qemu.sh: $ovmf_code not found; run scripts/deps.sh" >&2; exit 2; }

workdir=$(mktemp -d "${TMPDIR:-/tmp}/torpor-qemu.XXXXXX")
qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill -TERM "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
    [ -z "$qmp_socket" ] || rm -f "$qmp_socket"
    [ -z "$serial_socket" ] || rm -f "$serial_socket"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ -z "$vars" ] && [ "$swap_disk" = 1 ]; then
    vars="$swap.vars.fd"
elif [ -z "$vars" ]; then
    vars="$workdir/vars.fd"
fi
if [ ! -e "$vars" ]; then
    mkdir -p "$(dirname "$vars")"
    cp "$ovmf_vars" "$vars"
fi
if [ "$swap_disk" = 1 ] && [ ! -e "$swap" ]; then
    mkdir -p "$(dirname "$swap")"
    truncate -s "${swap_size:-$((memory + 64))}M" "$swap"
fi
if [ -n "$swap_log" ]; then
    # QEMU opens the log, it does not create it; a new log starts at its
    # first sector, so an old tail must not survive to look like entries
    mkdir -p "$(dirname "$swap_log")"
    : > "$swap_log"
fi
if [ "$data_disk" = 1 ]; then
    [ -n "$data" ] || data="$workdir/data.img"
    [ -e "$data" ] || truncate -s "${data_size}M" "$data"
fi

args=(
    -nodefaults -no-user-config -display none
    -machine "$machine" -m "$memory"
    -drive "if=pflash,format=raw,unit=0,readonly=on,file=$ovmf_code"
    -drive "if=pflash,format=raw,unit=1,file=$vars"
    -drive "if=none,id=esp,format=raw,readonly=on,file=$esp"
    -device "virtio-blk-pci,drive=esp,serial=torpor-esp"
)
[ "$data_disk" = 0 ] || args+=(
    -drive "if=none,id=data,format=raw,file=$data"
    -device "virtio-blk-pci,drive=data,serial=torpor-data"
)
if [ "$swap_disk" = 1 ] && [ -n "$swap_log" ]; then
    args+=(-drive "if=none,id=swap,driver=blklogwrites,file.driver=file,file.filename=$swap,log.driver=file,log.filename=$swap_log")
elif [ "$swap_disk" = 1 ]; then
    args+=(-drive "if=none,id=swap,format=raw,file=$swap")
fi
[ "$swap_disk" = 0 ] || args+=(-device "virtio-blk-pci,drive=swap,serial=torpor-swap")
# OVMF's VirtioRngDxe turns this into EFI_RNG_PROTOCOL for efi_main
[ "$rng" = 0 ] || args+=(-device virtio-rng-pci)
if [ "$balloon" = 1 ] && [ "$free_page_hint" = 1 ]; then
    # QEMU hands the hints to an iothread of their own (QEMU-NOTES.md)
    args+=(-object iothread,id=balloon-io)
    balloon_properties=",free-page-hint=on,iothread=balloon-io$balloon_properties"
fi
[ "$balloon" = 0 ] || args+=(-device "virtio-balloon-pci,id=balloon0$balloon_properties")
if [ -n "$serial_socket" ]; then
    args+=(-chardev "socket,id=console,path=$serial_socket,server=on,wait=on" -serial chardev:console)
elif [ -t 0 ] && [ -t 1 ]; then
    # Ctrl-C goes to the guest (it abandons a line); Ctrl-A x quits QEMU
    args+=(-chardev "stdio,id=console,mux=on,signal=off" -serial chardev:console -mon chardev=console)
else
    args+=(-chardev "stdio,id=console,signal=off" -serial chardev:console)
fi
[ -z "$qmp_socket" ] || args+=(-qmp "unix:$qmp_socket,server=on,wait=off")
[ "$gdb" = 0 ] || args+=(-s -S)
args+=("$@")

if [ "$print_only" = 1 ]; then
    printf '%q ' qemu-system-x86_64 "${args[@]}"
    echo
    exit 0
fi
if [ "$gdb" = 1 ]; then
    echo "run-qemu.sh: gdbstub on :1234; see README (Debugging) for gdb commands" >&2
fi

# Run QEMU as a child (not exec) so the trap can clean up after it; the
# explicit stdin redirection keeps the terminal as its input.
qemu-system-x86_64 "${args[@]}" <&0 &
qemu_pid=$!
status=0
wait "$qemu_pid" || status=$?
qemu_pid=""
exit "$status"

"""run-qemu.sh itself: its usage text, option errors, and cleanup when the
harness kills a running guest (cleanup after a guest poweroff is checked in
test_power.py)."""

import os
import subprocess

import harness

OPTIONS = ["--memory", "--machine", "--qmp", "--serial-socket", "--gdb", "--swap-log"]


def run_script(*args):
    return subprocess.run([harness.RUN_QEMU, *args], cwd=harness.REPO,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=20)


def test_help_lists_options():
    result = run_script("--help")
    assert result.returncode == 0, result.stderr
    missing = [option for option in OPTIONS if option not in result.stdout]
    assert not missing, "--help does not mention %s" % missing


def test_unknown_option_exits_2():
    result = run_script("--no-such-option")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "--no-such-option" in result.stderr


def test_swap_log_puts_blklogwrites_under_the_swap_disk(tmp_path):
    swap, log = tmp_path / "swap.img", tmp_path / "new" / "swap.log"
    result = run_script("--swap", str(swap), "--swap-log", str(log), "--print")
    assert result.returncode == 0, result.stderr
    drive = [word for word in result.stdout.split() if "id=swap" in word]
    assert len(drive) == 1 and "driver=blklogwrites" in drive[0], result.stdout
    assert "file.filename=%s" % swap in drive[0] and "log.filename=%s" % log in drive[0], drive
    assert "serial=torpor-swap" in result.stdout
    assert log.read_bytes() == b""  # QEMU opens the log, it does not create it
    log.write_bytes(b"an old log")
    assert run_script("--swap", str(swap), "--swap-log", str(log), "--print").returncode == 0
    assert log.read_bytes() == b""  # emptied: an old tail would read as entries
    result = run_script("--no-swap", "--swap-log", str(log), "--print")
    assert result.returncode == 2 and "--swap-log" in result.stderr


def test_killed_guest_leaves_nothing(guest):
    g = guest()
    g.connect_qmp()  # QEMU is up and its socket exists
    qemu_pid = g.qemu_pid()
    assert os.path.exists(g.qmp_path)

    g.kill()
    assert g.proc.poll() is not None
    assert not os.path.exists(g.qmp_path), "QMP socket left behind"
    assert not harness.process_running(qemu_pid), "QEMU still running"
    assert harness.processes_mentioning(g.qmp_path) == [], "a process still uses the socket"
    g.close()
    assert not os.path.exists(g.tmpdir)

"""Boot on both machine types, the boot banner, memory accounting, and the
read-only shell commands (help, log, uptime), plus idling without spinning."""

import re
import time

import pytest

import harness

MIB = 1024  # KiB per MiB
LOG_RE = re.compile(r"^\[\s*(\d+)\.(\d{6})\] (.*)$")
HELP_COMMANDS = {"help", "mem", "log", "uptime", "fill", "verify", "free",
                 "poweroff", "reboot"}


def check_mem(values, memory_mib, low_mib):
    total = int(values["total_kib"])
    free = int(values["free_kib"])
    used = int(values["used_kib"])
    assert low_mib * MIB <= total <= memory_mib * MIB, values
    assert free + used == total, values
    return total, free


def uptime_ms(guest):
    """One `uptime` reading and the host times just before and just after
    the exchange (the guest read its clock somewhere in between)."""
    before = time.monotonic()
    values = guest.command_values("uptime")
    after = time.monotonic()
    return int(values["ms"]), before, after


def calibration(boot):
    """The boot's clock and timer calibration lines, for failure messages:
    a rate measured wrong on a loaded host shows there."""
    return "; ".join(re.findall(r"(?:clock|apic): [^\r\n]*", boot)) or "no calibration lines"


def wait_until(deadline):
    """Lets host time pass until time.monotonic() reaches deadline."""
    while time.monotonic() < deadline:
        time.sleep(min(0.1, deadline - time.monotonic()))


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_boot_and_basic_commands(guest, machine):
    g = guest(memory=512, machine=machine)
    boot = g.wait_ready(timeout=90)

    banner = harness.parse_banner(boot)
    assert banner["version"]
    assert 480 * MIB <= int(banner["total_kib"]) <= 512 * MIB, banner
    assert 0 < int(banner["boot_us"]) < 120_000_000, banner
    image_base = int(banner["image_base"], 16)
    assert image_base != 0 and image_base % 4096 == 0, banner

    total, free = check_mem(g.command_values("mem"), 512, 480)
    assert free > 400 * MIB, (total, free)

    listed = {line.split()[0] for line in g.command("help") if line.split()}
    assert HELP_COMMANDS <= listed, "help lacks %s" % (HELP_COMMANDS - listed)

    log = g.command("log")
    assert len(log) >= 3, log
    stamps = []
    for line in log:
        match = LOG_RE.match(line)
        assert match, "not a log line: %r" % line
        stamps.append(int(match.group(1)) * 1_000_000 + int(match.group(2)))
    assert stamps == sorted(stamps), "log timestamps decrease: %r" % log

    # the host time between the two readings lies between the gap of the
    # two exchanges and their whole span, however long an exchange takes
    # on a loaded host; the guest's clock must run at the host's rate
    # within a factor of 2 of that
    first_ms, first_before, first_after = uptime_ms(g)
    wait_until(first_after + 1.5)
    second_ms, second_before, second_after = uptime_ms(g)
    guest_delta = (second_ms - first_ms) / 1000
    host_least, host_most = second_before - first_after, second_after - first_before
    assert 0.5 * host_least <= guest_delta <= 2 * host_most, (
        "uptime advanced %.3fs while the host measured %.3fs to %.3fs (%s)"
        % (guest_delta, host_least, host_most, calibration(boot)))

    # Idle at the prompt: QEMU should mostly sleep (the kernel halts).
    pid = g.qemu_pid()
    cpu_before, wall_before = harness.cpu_seconds(pid), time.monotonic()
    wait_until(wall_before + 3)
    cpu_after, wall_after = harness.cpu_seconds(pid), time.monotonic()
    share = (cpu_after - cpu_before) / (wall_after - wall_before)
    assert share < 0.30, "QEMU used %.0f%% of a core at an idle prompt (%s)" % (
        share * 100, calibration(boot))


def test_memory_scales_with_ram(guest):
    g = guest(memory=1024)
    boot = g.wait_ready(timeout=90)
    assert 990 * MIB <= int(harness.parse_banner(boot)["total_kib"]) <= 1024 * MIB
    total, free = check_mem(g.command_values("mem"), 1024, 990)
    assert free > 800 * MIB, (total, free)

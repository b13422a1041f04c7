"""poweroff and reboot on both machine types, and that run-qemu.sh leaves
no QEMU process or QMP socket behind once the guest is gone."""

import os
import re

import pytest

import harness


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_poweroff(guest, machine):
    g = guest(machine=machine)
    g.wait_ready()
    g.connect_qmp()
    qemu_pid = g.qemu_pid()

    g.send("poweroff\r")
    event = g.wait_event("SHUTDOWN", timeout=30)
    assert event["data"].get("guest") is True, event
    assert event["data"].get("reason") == "guest-shutdown", event
    assert g.wait_exit(timeout=30) == 0

    # run-qemu.sh has cleaned up after QEMU.
    assert not os.path.exists(g.qmp_path), "QMP socket left behind"
    assert not harness.process_running(qemu_pid), "QEMU still running"
    assert harness.processes_mentioning(g.qmp_path) == [], "a process still uses the socket"


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_reboot(guest, machine):
    g = guest(machine=machine)
    g.wait_ready()
    g.connect_qmp()

    g.send("reboot\r")
    g.wait_event("RESET", timeout=30)
    g.wait_ready(timeout=90)
    assert g.proc.poll() is None, "QEMU exited instead of rebooting"
    assert len(re.findall(harness.READY_RE, g.output)) == 2
    lines = g.command("uptime")
    assert lines and lines[0].startswith("uptime ms="), lines


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_power_button_powers_off(guest, machine):
    g = guest(machine=machine,
              qemu_args=["-fw_cfg", "name=opt/torpor/cmdline,string=power_button=poweroff"])
    boot = g.wait_ready()
    assert re.search(r"power button: SCI \d+, action poweroff", boot), boot
    g.connect_qmp()
    g.qmp("system_powerdown")
    assert g.wait_exit(timeout=30) == 0
    assert "power button: pressed" in g.output


def test_power_button_can_be_ignored(guest):
    g = guest(qemu_args=["-fw_cfg", "name=opt/torpor/cmdline,string=power_button=ignore"])
    g.wait_ready()
    g.connect_qmp()
    g.qmp("system_powerdown")
    g.wait_for(r"power button: pressed \(1\), action ignore", timeout=30)
    assert g.proc.poll() is None, "QEMU exited although the button is ignored"
    assert g.command_values("uptime")["ms"].isdigit()

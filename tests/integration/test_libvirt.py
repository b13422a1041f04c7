"""torpor under real libvirt (Debian's 9.0, qemu:///system, TCG), what works
without a guest agent: define and start, the balloon through `virsh setmem`
and `virsh dommemstat`, `virsh shutdown` hibernating through the ACPI power
button and `virsh start` resuming, a failed hibernation leaving the domain
running, and commands that need the agent failing cleanly. Every domain is
undefined at the end with nothing left (docs/libvirt.md). All libvirt tests
run in one xdist group: one worker, one domain at a time."""

import os
import re
import time

import pytest

import harness
import libvirt_harness as lv
from test_hibernate import OK_RE
from test_reliability import write_fault
from test_resume import RESUME_OK_RE

pytestmark = pytest.mark.xdist_group("libvirt")

MIB = 1 << 20
HIBERNATE_FAILED_RE = re.compile(r"hibernate failed reason=(\S+)[ \r\n]")
# without the channel libvirt says "not configured" (with it, before the
# guest opens the port, "not connected")
NOT_CONFIGURED = "QEMU guest agent is not configured"


def started(libvirt_domain, **kwargs):
    """A new domain, started; returns it and its boot output."""
    domain = libvirt_domain(**kwargs)
    domain.start()
    return domain, domain.console.wait_ready()


def guest_balloon(domain):
    return {k: int(v) for k, v in domain.console.command_values("balloon").items() if v.isdigit()}


def poll(condition, what, domain, timeout=120, interval=0.5):
    """Calls condition() until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise harness.GuestTimeout("%s: not within %.0fs\n%s" % (what, timeout, domain.tail()))
        time.sleep(interval)  # bounded poll of a value the guest or libvirt updates


def test_define_and_start_reach_torpor_ready(libvirt_domain):
    domain = libvirt_domain()
    assert domain.state()[0] == "shut off"
    mark = domain.events.mark()
    domain.start()
    boot = domain.console.wait_ready()
    banner = harness.parse_banner(boot)
    assert int(banner["total_kib"]) > 500 * 1024, banner
    assert "resume: no image on torpor-swap" in boot
    assert domain.state() == ("running", "booted")
    domain.wait_event(r"event 'lifecycle' .*: Started Booted", since=mark)
    assert domain.qemu_pid() is not None

    disks = {}
    for line in domain.console.command("blk"):
        if line.startswith("blk "):
            values = harness.parse_values(line)
            disks[values["serial"]] = values
    assert set(disks) == {"torpor-esp", "torpor-data", "torpor-swap"}, disks
    assert disks["torpor-esp"]["ro"] == "1" and disks["torpor-swap"]["ro"] == "0", disks
    assert int(disks["torpor-swap"]["mib"]) == 512 + 64, disks
    # libvirt put every virtio device behind a pcie-root-port: the disks are
    # on buses other than 0
    assert all(not values["pci"].startswith("00:") for values in disks.values()), disks
    virtio = [line for line in domain.console.command("virtio") if line.startswith("virtio ")]
    assert any("type=balloon" in line for line in virtio), virtio
    # the virtio-serial controller of the agent channel (legacy id 1003,
    # modern 1043) is there for the agent
    pci = domain.console.command("pci")
    assert any(re.search(r"vendor=1af4 device=10(03|43)\b", line) for line in pci), pci


def test_setmem_inflates_the_balloon_and_dommemstat_shows_the_guest_stats(libvirt_domain):
    domain, boot = started(libvirt_domain)
    total_kib = int(harness.parse_banner(boot)["total_kib"])
    ram_kib = 512 * 1024
    target_kib = 400 * 1024
    pages = (ram_kib - target_kib) // 4
    mark = domain.events.mark()

    domain.virsh("setmem", str(target_kib), "--live")
    balloon = poll(lambda: (lambda b: b if b["actual_pages"] == pages else None)(guest_balloon(domain)),
                   "balloon actual_pages=%d" % pages, domain)
    assert balloon["target_pages"] == pages and balloon["list_pages"] == pages, balloon
    domain.wait_event(r"event 'balloon-change' .*: %dKiB" % target_kib, since=mark)

    before = domain.memstat()
    assert before["actual"] == target_kib, before
    # a sample QEMU received after `before` was taken after the inflation
    # (the guest refills the stats buffer every 2 s: <stats period='2'/>)
    stats = poll(lambda: (lambda s: s if s.get("last_update", 0) > before.get("last_update", 0) else None)(
        domain.memstat()), "a dommemstat sample newer than %s" % before.get("last_update"), domain, timeout=60)
    for key in ("actual", "unused", "available", "usable", "last_update"):
        assert key in stats, stats
    # the guest's own figures: its RAM, and free memory without the balloon
    assert stats["available"] == total_kib, (stats, total_kib)
    assert stats["unused"] <= total_kib - pages * 4, (stats, pages)
    assert 0 < stats["usable"] <= stats["available"], stats

    mark = domain.events.mark()
    domain.virsh("setmem", str(ram_kib), "--live")
    poll(lambda: guest_balloon(domain)["actual_pages"] == 0, "balloon deflated", domain)
    domain.wait_event(r"event 'balloon-change' .*: %dKiB" % ram_kib, since=mark)
    poll(lambda: domain.memstat().get("actual") == ram_kib, "dommemstat actual back to the RAM size", domain)


def test_shutdown_hibernates_and_start_resumes(libvirt_domain):
    domain, _ = started(libvirt_domain)
    assert domain.console.command("fill 32 5")[0].startswith("fill id=0 kib=32768 ")
    mark = domain.events.mark()

    # the ACPI power button, which torpor's default makes a hibernation
    # (plain `virsh shutdown` does this too while no agent is connected;
    # with one, libvirt prefers guest-shutdown)
    domain.virsh("shutdown", "--mode", "acpi")
    domain.console.wait_for(OK_RE, timeout=180)
    domain.wait_event(r"event 'lifecycle' .*: PMSuspended Disk", since=mark, timeout=120)
    domain.wait_event(r"event 'lifecycle' .*: Stopped Shutdown", since=mark, timeout=120)
    events = domain.events.since(mark)
    suspended = next(i for i, line in enumerate(events) if line.endswith("PMSuspended Disk"))
    stopped = next(i for i, line in enumerate(events) if line.endswith("Stopped Shutdown"))
    assert suspended < stopped, events
    domain.console.wait_disconnected()
    # QEMU reported SUSPEND_DISK and exited; libvirt keeps no S4 state for
    # an inactive domain, so it says what it saw last: a guest shutdown
    assert domain.state() == ("shut off", "shutdown")
    assert domain.qemu_pid() is None

    restarted_at = len(domain.console.output)
    domain.start()
    domain.console.wait_for(RESUME_OK_RE, timeout=180)
    domain.console.wait_prompt()
    assert not re.search(harness.READY_RE, domain.console.output[restarted_at:]), "booted fresh"
    assert domain.console.command("verify") == ["verify ok regions=1 kib=32768"]
    assert domain.state()[0] == "running"


def test_failed_hibernate_keeps_the_domain_running(libvirt_domain, tmp_path):
    """The power button's hibernation fails (blkdebug fails the first write
    to the swap disk): the guest thaws, libvirt still sees it running, no
    PMSuspended event came, and libvirt reported the I/O error."""
    config = tmp_path / "blkdebug.conf"
    config.write_text(write_fault(0))
    swap = tmp_path / "swap.img"
    with open(swap, "wb") as f:
        f.truncate(576 * MIB)
    domain, _ = started(libvirt_domain, swap=False, qemu_args=lv.blkdebug_swap_args(str(config), str(swap)))
    assert domain.console.command("fill 16 3")[0].startswith("fill id=0 kib=16384 ")
    mark = domain.events.mark()

    domain.virsh("shutdown", "--mode", "acpi")
    failed = domain.console.wait_for(HIBERNATE_FAILED_RE, timeout=180)
    assert failed.group(1) == "write-error", failed.group(0)
    domain.console.wait_prompt()
    assert domain.state()[0] == "running"
    assert not any("PMSuspended" in line or "Stopped" in line for line in domain.events.since(mark)), \
        domain.events.since(mark)
    assert domain.console.command("verify") == ["verify ok regions=1 kib=16384"]
    # libvirt saw the error too (QMP BLOCK_IO_ERROR, action report)
    domain.wait_event(r"event 'io-error' .* report", since=mark)


def test_agent_commands_fail_cleanly_without_an_agent_channel(libvirt_domain):
    """A domain defined without the agent's channel: every agent command
    fails at once, and nothing changes for the guest."""
    domain, _ = started(libvirt_domain, agent_channel=False)
    assert domain.console.command_values("agent")["port"] == "absent"
    for attempt in (lambda: lv.domtime_get(domain.name, check=False),
                    lambda: lv.dompmsuspend_disk(domain.name, timeout=60)):
        began = time.monotonic()
        result = attempt()
        assert result.returncode != 0, result.stdout
        assert NOT_CONFIGURED in result.stderr, result.stderr
        assert time.monotonic() - began < 30, "libvirt waited for an agent that is not there"
    with pytest.raises(lv.VirshError, match=NOT_CONFIGURED):
        lv.agent_command(domain.name, {"execute": "guest-ping"})
    # nothing changed for the guest
    assert domain.state() == ("running", "booted")
    assert domain.console.command_values("uptime")["ms"].isdigit()


def test_undefine_with_nvram_leaves_nothing(libvirt_domain):
    domain, _ = started(libvirt_domain)
    pid = domain.qemu_pid()
    assert pid is not None and lv.process_alive(pid)
    assert os.path.exists(domain.nvram)  # libvirt copied OVMF's template there
    domain.close()  # destroy, undefine --nvram; raises if anything is left
    assert not lv.process_alive(pid)
    assert domain.name not in lv.defined_domains()
    assert not os.path.exists(domain.nvram) and not os.path.exists(domain.tmpdir)
    assert not os.path.exists(os.path.join(lv.QEMU_LOG_DIR, domain.name + ".log"))
    assert lv.domain_processes(domain.name) == []

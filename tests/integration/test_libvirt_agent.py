"""torpor's guest agent under real libvirt (issue 14): guest-ping and
guest-info through `virsh qemu-agent-command`, `virsh domtime` read and
set, `virsh dompmsuspend DOM disk` hibernating and `virsh start` resuming
with the agent back, `virsh shutdown --mode agent` powering off, and
failed hibernations leaving the domain running and the agent answering."""

import re
import time

import pytest

import harness
import libvirt_harness as lv
from test_hibernate import OK_RE
from test_libvirt import HIBERNATE_FAILED_RE
from test_reliability import write_fault
from test_resume import RESUME_OK_RE

pytestmark = pytest.mark.xdist_group("libvirt")

MIB = 1 << 20
# the guest's clock and the host's may differ by this much (TCG, one RTC
# read at boot, seconds of virsh latency under load)
CLOCK_SLACK = 60


@pytest.fixture
def agent_domain(libvirt_domain):
    """Returns start(**libvirt_domain arguments) -> a started Domain whose
    agent libvirt has connected to."""
    def start(**kwargs):
        domain = libvirt_domain(**kwargs)
        mark = domain.events.mark()
        domain.start()
        domain.console.wait_ready()
        assert lv.agent_present(domain.console), "torpor's help lists no `agent` command"
        domain.wait_agent_connected(since=mark)
        return domain
    return start


def blkdebug_kwargs(tmp_path):
    """A torpor-swap disk whose first write fails (see test_libvirt)."""
    config = tmp_path / "blkdebug.conf"
    config.write_text(write_fault(0))
    swap = tmp_path / "swap.img"
    with open(swap, "wb") as f:
        f.truncate(576 * MIB)
    return {"swap": False, "qemu_args": lv.blkdebug_swap_args(str(config), str(swap))}


def test_guest_ping_and_guest_info(agent_domain):
    domain = agent_domain()
    assert lv.agent_command(domain.name, {"execute": "guest-ping"}) == {}
    info = lv.agent_command(domain.name, '{"execute":"guest-info"}')
    assert isinstance(info["version"], str) and info["version"], info
    commands = {entry["name"]: entry for entry in info["supported_commands"]}
    for entry in commands.values():
        assert isinstance(entry["enabled"], bool) and isinstance(entry["success-response"], bool), entry
    for name in ("guest-sync", "guest-sync-delimited", "guest-ping", "guest-info", "guest-get-time",
                 "guest-set-time", "guest-suspend-disk", "guest-shutdown"):
        assert name in commands and commands[name]["enabled"], (name, sorted(commands))
    # like qemu-ga: these two answer nothing when they succeed
    assert commands["guest-suspend-disk"]["success-response"] is False
    assert commands["guest-shutdown"]["success-response"] is False
    assert commands["guest-ping"]["success-response"] is True

    # an unknown command is an error reply (CommandNotFound) and nothing more
    with pytest.raises(lv.VirshError, match="guest-no-such-command"):
        lv.agent_command(domain.name, {"execute": "guest-no-such-command"})
    assert lv.agent_command(domain.name, {"execute": "guest-ping"}) == {}
    agent = domain.console.command_values("agent")
    assert agent["port"] == "open" and int(agent["commands"]) >= 3, agent


def test_domtime_reads_and_sets_the_guest_clock(agent_domain):
    domain = agent_domain()
    assert abs(lv.domtime_get(domain.name) - time.time()) < CLOCK_SLACK

    target = int(time.time()) + 400 * 86400  # far from the host's time
    set_at = time.monotonic()
    lv.domtime_set(domain.name, target)
    expected = target + (time.monotonic() - set_at)
    assert abs(lv.domtime_get(domain.name) - expected) < CLOCK_SLACK

    # --now sets the host's time again
    domain.virsh("domtime", "--now")
    assert abs(lv.domtime_get(domain.name) - time.time()) < CLOCK_SLACK


def test_dompmsuspend_disk_hibernates_and_start_resumes_with_the_agent(agent_domain):
    domain = agent_domain()
    assert domain.console.command("fill 24 7")[0].startswith("fill id=0 kib=24576 ")
    mark = domain.events.mark()

    result = lv.dompmsuspend_disk(domain.name)
    assert result.returncode == 0, result.stderr
    domain.console.wait_for(OK_RE, timeout=180)
    domain.wait_event(r"event 'lifecycle' .*: PMSuspended Disk", since=mark, timeout=120)
    domain.wait_event(r"event 'lifecycle' .*: Stopped Shutdown", since=mark, timeout=120)
    domain.console.wait_disconnected()
    assert domain.state() == ("shut off", "shutdown")

    mark = domain.events.mark()
    restarted_at = len(domain.console.output)
    domain.start()
    domain.console.wait_for(RESUME_OK_RE, timeout=180)
    domain.console.wait_prompt()
    assert not re.search(harness.READY_RE, domain.console.output[restarted_at:]), "booted fresh"
    assert domain.console.command("verify") == ["verify ok regions=1 kib=24576"]
    # the resumed agent opened its port again, so libvirt reconnected
    domain.wait_agent_connected(since=mark)
    assert lv.agent_command(domain.name, {"execute": "guest-ping"}) == {}


def test_shutdown_mode_agent_powers_off(agent_domain):
    domain = agent_domain()
    mark = domain.events.mark()
    lv.shutdown_with_agent(domain.name)
    domain.wait_event(r"event 'lifecycle' .*: Stopped Shutdown", since=mark, timeout=120)
    domain.console.wait_disconnected()
    assert not any("PMSuspended" in line for line in domain.events.since(mark)), domain.events.since(mark)
    assert not OK_RE.search(domain.console.output), "hibernated instead of powering off"
    assert domain.state() == ("shut off", "shutdown")

    # no image was written: the next start boots fresh
    restarted_at = len(domain.console.output)
    domain.start()
    domain.console.wait_ready()
    assert "resume: no image on torpor-swap" in domain.console.output[restarted_at:], domain.tail()


def test_dompmsuspend_without_a_swap_disk_fails_with_the_agents_error(agent_domain):
    domain = agent_domain(swap=False)
    result = lv.dompmsuspend_disk(domain.name, timeout=120)
    assert result.returncode != 0, result.stdout
    assert "guest-suspend-disk" in result.stderr, result.stderr
    assert domain.state()[0] == "running"
    assert lv.agent_command(domain.name, {"execute": "guest-ping"}) == {}


def test_failed_agent_hibernate_keeps_the_domain_running_and_the_agent_answering(agent_domain, tmp_path):
    """blkdebug fails the first write of the image. The agent must then
    answer guest-suspend-disk with an error, as qemu-ga does when its write
    to /sys/power/state fails ("child process has failed to suspend"):
    libvirt waits for a reply or SUSPEND_DISK, for ever with the default
    agent timeout (qemu_domain.c: "agent commands block by default")."""
    domain = agent_domain(**blkdebug_kwargs(tmp_path))
    assert domain.console.command("fill 16 3")[0].startswith("fill id=0 kib=16384 ")
    mark = domain.events.mark()
    try:
        result = lv.dompmsuspend_disk(domain.name, timeout=180)
    except harness.GuestTimeout:
        pytest.fail("virsh dompmsuspend did not return after the failed hibernation: the agent "
                    "sent no error reply\n" + domain.tail())
    failed = domain.console.wait_for(HIBERNATE_FAILED_RE, timeout=60, since=0)
    assert failed.group(1) == "write-error", failed.group(0)
    assert result.returncode != 0, result.stdout
    assert domain.state()[0] == "running"
    assert not any("PMSuspended" in line for line in domain.events.since(mark)), domain.events.since(mark)
    assert lv.agent_command(domain.name, {"execute": "guest-ping"}) == {}
    assert domain.console.command("verify") == ["verify ok regions=1 kib=16384"]

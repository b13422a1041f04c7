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
MEMORY_BLOCK = 128 * MIB
# every command torpor's agent knows (docs/agent.md)
AGENT_COMMANDS = ("guest-sync", "guest-sync-delimited", "guest-ping", "guest-info", "guest-get-time",
                  "guest-set-time", "guest-suspend-disk", "guest-shutdown", "guest-get-osinfo",
                  "guest-get-host-name", "guest-get-timezone", "guest-get-vcpus",
                  "guest-get-memory-blocks", "guest-get-memory-block-info")


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
    assert set(commands) == set(AGENT_COMMANDS), sorted(commands)
    assert all(entry["enabled"] for entry in commands.values()), commands
    # like qemu-ga: these two answer nothing when they succeed
    assert commands["guest-suspend-disk"]["success-response"] is False
    assert commands["guest-shutdown"]["success-response"] is False
    assert commands["guest-ping"]["success-response"] is True

    # an unknown command is an error reply (CommandNotFound) and nothing
    # more: the console's `errors` counts it, and only it
    before = agent_counters(domain)
    assert before["port"] == "open", before
    with pytest.raises(lv.VirshError, match="guest-no-such-command") as raised:
        lv.agent_command(domain.name, {"execute": "guest-no-such-command"})
    assert "has not been found" in raised.value.result.stderr, raised.value.result.stderr
    after = agent_counters(domain)
    assert after["errors"] == before["errors"] + 1, (before, after)
    # (libvirt 9.0 sends guest-sync once after it connects, and again only
    # after a timeout: one request here, two after such a timeout)
    assert after["commands"] >= before["commands"] + 1, (before, after)
    assert lv.agent_command(domain.name, {"execute": "guest-ping"}) == {}
    last = agent_counters(domain)
    assert last["errors"] == after["errors"] and last["commands"] >= after["commands"] + 1, (after, last)
    assert last["port"] == "open", last

    check_information_commands(domain, info["version"])


def agent_counters(domain):
    """The console's `agent` line: port as text, the counters as ints."""
    values = domain.console.command_values("agent")
    return {key: (value if key == "port" else int(value)) for key, value in values.items()}


def check_information_commands(domain, version):
    """The informational commands through `virsh qemu-agent-command`, their
    replies shaped as qga/qapi-schema.json defines them, with what torpor
    says (docs/agent.md), then as libvirt's own commands read them."""
    banner = harness.parse_banner(domain.console.output)
    assert version == banner["version"], (version, banner)

    osinfo = lv.agent_command(domain.name, {"execute": "guest-get-osinfo"})
    # GuestOSInfo: every member an optional str; torpor leaves out variant
    assert osinfo == {"name": "torpor", "id": "torpor", "machine": "x86_64",
                      "kernel-release": version, "version": version, "version-id": version,
                      "pretty-name": "torpor " + version,
                      "kernel-version": osinfo.get("kernel-version")}, osinfo
    assert isinstance(osinfo["kernel-version"], str) and osinfo["kernel-version"], osinfo

    # GuestHostName {host-name: str}
    assert lv.agent_command(domain.name, {"execute": "guest-get-host-name"}) == {"host-name": "torpor"}
    # GuestTimezone {zone: str (optional), offset: int}
    zone = lv.agent_command(domain.name, {"execute": "guest-get-timezone"})
    assert zone == {"zone": "UTC", "offset": 0} and type(zone["offset"]) is int, zone
    # [GuestLogicalProcessor {logical-id: int, online: bool, can-offline: bool}]:
    # the domain's one vCPU, the boot CPU
    vcpus = lv.agent_command(domain.name, {"execute": "guest-get-vcpus"})
    assert vcpus == [{"logical-id": 0, "online": True, "can-offline": False}], vcpus
    assert type(vcpus[0]["logical-id"]) is int and vcpus[0]["online"] is True, vcpus
    # GuestMemoryBlockInfo {size: uint64}: 128 MiB, Linux's block on x86_64
    block = lv.agent_command(domain.name, {"execute": "guest-get-memory-block-info"})
    assert block == {"size": MEMORY_BLOCK} and type(block["size"]) is int, block
    # [GuestMemoryBlock {phys-index: uint64, online: bool, can-offline: bool}]:
    # exactly the blocks the allocator's zones (`mem`) touch
    blocks = lv.agent_command(domain.name, {"execute": "guest-get-memory-blocks"})
    expected = sorted(zone_blocks(domain))
    assert [entry["phys-index"] for entry in blocks] == expected, (blocks, expected)
    for entry in blocks:
        assert set(entry) == {"phys-index", "online", "can-offline"}, entry
        assert type(entry["phys-index"]) is int and entry["online"] is True \
            and entry["can-offline"] is False, entry
    # 512 MiB of RAM, all below 4 GiB on q35: blocks 0 to 3
    assert set(expected) <= set(range(4)) and len(expected) >= 3, expected

    # libvirt's own readers of these replies
    guestinfo = virsh_fields(domain.virsh("guestinfo", "--os", "--timezone", "--hostname"))
    assert guestinfo.get("os.id") == "torpor" and guestinfo.get("os.machine") == "x86_64", guestinfo
    assert guestinfo.get("os.version-id") == version and guestinfo.get("hostname") == "torpor", guestinfo
    assert guestinfo.get("timezone.name") == "UTC" and guestinfo.get("timezone.offset") == "0", guestinfo
    guestvcpus = virsh_fields(domain.virsh("guestvcpus"))
    assert (guestvcpus.get("vcpus"), guestvcpus.get("online")) == ("0", "0"), guestvcpus
    assert guestvcpus.get("offlinable", "") == "", guestvcpus


def virsh_fields(result):
    """`name : value` lines of virsh's output as a dict."""
    return dict(re.findall(r"(?m)^(\S+)[ \t]*:[ \t]*(.*?)[ \t]*$", result.stdout))


def zone_blocks(domain):
    """The 128 MiB block indexes the `mem` zones touch."""
    blocks = set()
    for line in domain.console.command("mem"):
        if line.startswith("zone "):
            values = harness.parse_values(line)
            base, kib = int(values["base"], 16), int(values["kib"])
            blocks.update(range(base // MEMORY_BLOCK, (base + kib * 1024 - 1) // MEMORY_BLOCK + 1))
    assert blocks, "`mem` listed no zone"
    return blocks


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


def powered_off_by_the_agent(domain, mark, since):
    """The domain stopped after the agent's guest-shutdown: torpor printed
    `poweroff`, the power button was never pressed, nothing hibernated."""
    domain.wait_event(r"event 'lifecycle' .*: Stopped Shutdown", since=mark, timeout=120)
    domain.console.wait_disconnected()
    assert not any("PMSuspended" in line for line in domain.events.since(mark)), domain.events.since(mark)
    output = domain.console.output[since:]
    assert "poweroff" in output, domain.tail()  # the agent's shutdown op says so
    assert "power button: pressed" not in output, "libvirt pressed the power button\n" + domain.tail()
    assert not OK_RE.search(domain.console.output), "hibernated instead of powering off"
    assert domain.state() == ("shut off", "shutdown")


def test_shutdown_mode_agent_powers_off(agent_domain):
    domain = agent_domain()
    mark = domain.events.mark()
    lv.shutdown_with_agent(domain.name)
    powered_off_by_the_agent(domain, mark, since=0)

    # no image was written: the next start boots fresh
    mark = domain.events.mark()
    restarted_at = len(domain.console.output)
    domain.start()
    domain.console.wait_ready()
    assert "resume: no image on torpor-swap" in domain.console.output[restarted_at:], domain.tail()

    # plain `virsh shutdown` (no --mode) with the agent connected: libvirt
    # prefers the agent (guest-shutdown, powerdown) to the power button,
    # so torpor powers off instead of hibernating (docs/libvirt.md)
    domain.wait_agent_connected(since=mark)
    mark = domain.events.mark()
    since = len(domain.console.output)
    domain.virsh("shutdown", timeout=120)
    powered_off_by_the_agent(domain, mark, since)


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

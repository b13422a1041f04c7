"""Disks and devices a user may really give, which once made torpor fail a
hibernation or lose pages: a 16-entry queue without indirect descriptors
(a full ring is back-pressure, never an error), a write-through disk
without VIRTIO_BLK_F_FLUSH (the write is the flush), and a balloon whose
freeze times out with requests in flight (they are settled, no page is
lost, and the balloon follows targets exactly again)."""

import re

import pytest

import harness
from test_hibernate import hibernate_ok, values, wait_balloon
from test_resume import resume_ok, swap_args

MIB = 1 << 20
FAILED_RE = re.compile(r"(?m)^hibernate failed reason=(\S+)(.*?)\r?\n")


def cycle(guest, tmp_path, properties="", drive_options="", memory=384, fill_mib=96):
    """Hibernate and resume on a swap disk attached with extra device
    properties and drive options; returns the resumed guest."""
    swap = str(tmp_path / "swap.img")
    with open(swap, "wb") as f:
        f.truncate((memory + 64) * MIB)
    args = ["-drive", "if=none,id=swapd,format=raw,file=%s%s" % (swap, drive_options),
            "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap%s" % properties]
    first = guest(memory=memory, options=["--no-swap"], qemu_args=args)
    first.wait_ready()
    assert first.command("fill %d 5" % fill_mib)[0].startswith("fill id=0")
    hibernate_ok(first)
    second = guest(memory=memory, options=["--no-swap"], qemu_args=args)
    resume_ok(second)
    assert second.command("verify") == ["verify ok regions=1 kib=%d" % (fill_mib * 1024)]
    return second


def test_a_small_ring_without_indirect_descriptors_hibernates_and_resumes(guest, tmp_path):
    g = cycle(guest, tmp_path, properties=",indirect_desc=off,queue-size=16")
    disk = harness.parse_values([l for l in g.command("blk") if "torpor-swap" in l][0])
    assert int(disk["depth"]) == 8 and int(disk["max_segments"]) == 14, disk
    assert int(disk["errors"]) == 0, disk


def test_a_write_through_disk_without_flush_hibernates_and_resumes(guest, tmp_path):
    # QEMU offers FLUSH unless the drive is write-through and the device
    # cannot switch its cache (config-wce=off)
    g = cycle(guest, tmp_path, properties=",config-wce=off", drive_options=",cache=writethrough")
    disk = harness.parse_values([l for l in g.command("blk") if "torpor-swap" in l][0])
    assert disk["flush"] == "0", disk
    assert "cannot-record-attempt" not in g.output


def test_a_balloon_freeze_that_times_out_settles_what_was_in_flight(guest):
    """With the test-only boot option balloon_freeze_timeout_ms=0 the
    freeze gives up at once, while the balloon inflates one page per
    request: the hibernation fails and thaws, and afterwards the balloon
    reaches each target exactly and gives every page back."""
    g = guest(memory=512, qemu_args=["-fw_cfg", "name=opt/torpor/cmdline,string=balloon_freeze_timeout_ms=0"])
    g.wait_ready()
    g.connect_qmp()
    free_start = values(g, "mem")["free_kib"]
    assert g.command("balloon batch 1 1") == ["balloon batch=1 in_flight=1"]
    g.qmp("balloon", value=256 * MIB)  # 256 MiB of the 512 to the host, one page at a time
    deadline = harness.time.monotonic() + 60
    while values(g, "balloon")["actual_pages"] < 1000:  # well under way
        assert harness.time.monotonic() < deadline, "the balloon never got going"
        harness.time.sleep(0.1)  # bounded poll of the guest's own counter
    g.send("hibernate\r")
    failed = g.wait_for(FAILED_RE, timeout=120)
    g.wait_prompt()
    assert failed.group(1) == "freeze-failed", failed.group(0)
    assert "freeze timed out" in g.output

    # thawed (and inflating again at once): exact targets both ways, which
    # a request left counted in flight would stop (a balloon that still
    # thinks it inflates never deflates), and every page back at the end
    assert g.command("balloon batch 1024 8") == ["balloon batch=1024 in_flight=8"]
    wait_balloon(g, 384 * MIB)
    b = values(g, "balloon")
    assert b["actual_pages"] == b["list_pages"] == (512 - 384) * 256, b
    wait_balloon(g, 512 * MIB)
    b = values(g, "balloon")
    assert b["actual_pages"] == b["list_pages"] == 0 and b["inflating"] == 0, b
    assert values(g, "mem")["free_kib"] == free_start

"""Disks and devices a user may really give, which once made torpor fail a
hibernation or lose pages: a 16-entry queue without indirect descriptors
(a full ring is back-pressure, never an error), a disk without
VIRTIO_BLK_F_FLUSH (the spec makes none of its writes durable: refused
before it is touched), and a balloon whose
freeze times out with requests in flight (they are settled, no page is
lost, and the balloon follows targets exactly again)."""

import re

import harness
from test_hibernate import hibernate_ok, values, wait_balloon
from test_resume import resume_ok

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


def balloon_at_rest(g, timeout=60):
    """`balloon` once no request is in flight (a bounded poll). A target
    lowered while inflating is passed on the way and then come back to, so
    the host's actual can equal it for a moment before the guest is done."""
    deadline = harness.time.monotonic() + timeout
    while True:
        b = values(g, "balloon")
        if b["inflating"] == 0 and b["deflating"] == 0:
            return b
        assert harness.time.monotonic() < deadline, "the balloon never came to rest: %r" % b
        harness.time.sleep(0.1)  # bounded poll of the guest's own counters


def test_a_small_ring_without_indirect_descriptors_hibernates_and_resumes(guest, tmp_path):
    g = cycle(guest, tmp_path, properties=",indirect_desc=off,queue-size=16")
    disk = harness.parse_values([l for l in g.command("blk") if "torpor-swap" in l][0])
    assert int(disk["depth"]) == 8 and int(disk["max_segments"]) == 14, disk
    assert int(disk["errors"]) == 0, disk


def test_a_disk_without_flush_is_refused_before_anything_is_written(guest, tmp_path):
    """QEMU offers FLUSH unless the drive is write-through and the device
    cannot switch its cache (config-wce=off). Without FLUSH offered the
    virtio spec makes no completed write stable (virtio 1.2, 5.2.6.2), so
    hibernate refuses before it touches the disk: not one request reaches
    it, its bytes are unchanged, and the system runs on."""
    swap = str(tmp_path / "swap.img")
    with open(swap, "wb") as f:
        f.truncate(448 * MIB)
        f.seek(0)
        f.write(b"not an image, and must stay so" * 100)
    with open(swap, "rb") as f:
        before = f.read()
    args = ["-drive", "if=none,id=swapd,format=raw,file=%s,cache=writethrough" % swap,
            "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap,config-wce=off"]
    g = guest(memory=384, options=["--no-swap"], qemu_args=args)
    g.wait_ready()
    assert g.command("fill 32 5")[0].startswith("fill id=0")

    def counters():
        disk = harness.parse_values([l for l in g.command("blk") if "torpor-swap" in l][0])
        assert disk["flush"] == "0", disk
        return {key: disk[key] for key in ("reads", "writes", "flushes", "errors")}

    before_counters = counters()
    g.send("hibernate\r")
    failed = g.wait_for(FAILED_RE, timeout=120)
    g.wait_prompt()
    assert failed.group(0).strip() == "hibernate failed reason=disk-not-durable flush=0", failed.group(0)
    assert counters() == before_counters  # not one request
    assert before_counters["writes"] == "0", before_counters
    assert g.command("verify") == ["verify ok regions=1 kib=32768"]
    with open(swap, "rb") as f:
        assert f.read() == before, "the refused hibernation changed the disk"


def test_a_write_through_disk_that_offers_flush_hibernates_and_resumes(guest, tmp_path):
    """The same write-through drive with config-wce on (QEMU's default)
    offers FLUSH: the writer flushes after its writes (the spec's third
    case, 5.2.6.2) and the cycle works, the resume's marks included."""
    g = cycle(guest, tmp_path, drive_options=",cache=writethrough")
    disk = harness.parse_values([l for l in g.command("blk") if "torpor-swap" in l][0])
    assert disk["flush"] == "1", disk
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
    b = balloon_at_rest(g)
    assert b["actual_pages"] == b["list_pages"] == (512 - 384) * 256, b
    wait_balloon(g, 512 * MIB)
    b = values(g, "balloon")
    assert b["actual_pages"] == b["list_pages"] == 0 and b["inflating"] == 0, b
    assert values(g, "mem")["free_kib"] == free_start


def test_free_page_reports_in_flight_at_a_freeze_timeout_are_given_back(guest):
    """Free page reporting on, and the test-only boot option
    balloon_report_hold=1: the balloon reads no report's answer until its
    next freeze, so every report slot is in flight when the freeze gives up
    at once (balloon_freeze_timeout_ms=0). The hibernation fails and thaws;
    the blocks come back to the allocator, free memory returns to exactly
    what it was with them, and reporting goes on (the blocks the host may
    not have seen are reported again)."""
    options = "balloon_freeze_timeout_ms=0 balloon_report_hold=1"
    g = guest(memory=512, options=["--balloon", "free-page-reporting=on"],
              qemu_args=["-fw_cfg", "name=opt/torpor/cmdline,string=%s" % options])
    g.wait_ready()
    # every slot fills (512 MiB has far more than 16 free 2 MiB blocks)
    # and stays full: no answer is read
    deadline = harness.time.monotonic() + 60
    while True:
        m = values(g, "mem")
        if m["reporting_kib"] >= 16 * 2048:
            break
        assert harness.time.monotonic() < deadline, "the reports never filled their slots: %r" % m
        harness.time.sleep(0.5)  # bounded poll: reporting runs every 2 s
    assert values(g, "balloon")["reported_pages"] == 0  # held: no answer read
    held_kib = m["reporting_kib"]
    whole = m["free_kib"] + held_kib  # free memory with the blocks back

    g.send("hibernate\r")
    failed = g.wait_for(FAILED_RE, timeout=120)
    g.wait_prompt()
    assert failed.group(1) == "freeze-failed", failed.group(0)
    timed_out = re.search(r"balloon: freeze timed out with 0 requests and (\d+) reports in flight",
                          g.output)
    assert timed_out and int(timed_out.group(1)) == 16, g.tail()

    # thawed: reporting goes on (answers are read now), and once every free
    # block is reported no report stays in flight and nothing is missing
    deadline = harness.time.monotonic() + 90
    while True:
        m, b = values(g, "mem"), values(g, "balloon")
        if b["reported_pages"] * 4 >= held_kib and m["reporting_kib"] == 0 and m["free_kib"] == whole:
            break
        assert harness.time.monotonic() < deadline, (whole, held_kib, m, b)
        harness.time.sleep(0.5)  # bounded poll of the guest's own counters


def test_a_read_that_outlasts_its_timeout_resets_the_disk_first(guest, tmp_path):
    """A throttled swap disk (8 KiB/s) makes a data read of a resume
    outlast the 30 s request timeout. QEMU's throttle lets a request go
    when its bucket is empty and charges it afterwards, and virtio-blk
    merges up to 32 queued contiguous requests into one: a single burst of
    up to 32 MiB gets through at once, and every read after it waits at
    least 1 MiB / 8 KiB/s = 128 s. So the image is larger than any burst
    (a 4 MiB one was sometimes read whole in it and resumed), and the wait
    is four times the timeout (at 32 KiB/s it was 32 s, and a guest clock
    calibrated 7% slow on a loaded host saw no timeout). The resume is
    refused, and the disk is reset before the claimed memory goes back:
    the log says so in that order, and QEMU then holds no request of the
    swap queue (without the reset the timed-out reads would stay in the
    throttle's queue for 100 s more, free to land in memory the fresh
    system owns). Memory filled afterwards stays intact, and the swap disk
    works again."""
    swap = str(tmp_path / "swap.img")
    first = guest(memory=384, options=["--swap", swap])
    first.wait_ready()
    assert first.command("fill 48 21")[0].startswith("fill id=0")
    hibernate_ok(first)

    args = ["-drive", "if=none,id=swapd,format=raw,file=%s,throttling.bps-read=8192" % swap,
            "-device", "virtio-blk-pci,id=swapdev,drive=swapd,serial=torpor-swap"]
    second = guest(memory=384, options=["--no-swap"], qemu_args=args)
    second.wait_ready(timeout=400)
    output = second.output
    refused = re.search(r"(?m)^resume refused reason=(\S+) sector=\d+( image=\S+)?\r?\n", output)
    assert refused and refused.group(1) == "read-error", second.tail()
    assert refused.group(2) == " image=skipped", refused.group(0)
    # the order: reset, then the refusal, then the claimed memory goes back
    reset = re.search(r"(?m)^\[[ \d.]+\] resume: disk reset after read-error, "
                      r"\d+ other reads in flight dropped\r?$", output)
    given_back = re.search(r"(?m)^\[[ \d.]+\] resume: \d+ claimed pages back to the allocator", output)
    assert reset and given_back, second.tail()
    assert reset.start() < refused.start() < given_back.start(), (reset, refused, given_back)
    # no late read can land: the device holds none of the swap queue's
    # requests (a reset makes QEMU drain them, throttle or not)
    second.connect_qmp()
    queue = second.qmp("x-query-virtio-queue-status",
                       path="/machine/peripheral/swapdev/virtio-backend", queue=0)
    assert queue["inuse"] == 0 and queue["used-idx"] == queue["last-avail-idx"], queue
    # the freed memory is the fresh system's now: fill all of it and check
    free = values(second, "mem")["free_kib"] // 1024 - 32
    assert second.command("fill %d 9" % free, timeout=120)[0].startswith("fill id=0")
    assert second.command("verify", timeout=120)[0].startswith("verify ok regions=1")
    # the disk works again (reads stay throttled: writes show it)
    out = second.command("blk write torpor-swap 8 0x5a 8", timeout=60)
    assert out[-1].startswith("blkwrite disk=torpor-swap"), out


def test_free_blocks_reported_before_hibernate_are_reported_again_after_resume(guest, tmp_path):
    """The new host after a resume was told of no free block: every block
    the image had reported is reported again."""
    swap = str(tmp_path / "swap.img")
    first = guest(memory=512, options=["--swap", swap, "--balloon", "free-page-reporting=on"])
    first.wait_ready()

    def reported(g):
        return values(g, "balloon")["reported_pages"]

    # wait until all free memory is reported: the counter stops moving
    deadline = harness.time.monotonic() + 90
    last = -1
    while True:
        now = reported(first)
        if now == last and now >= 32768:
            break
        assert harness.time.monotonic() < deadline, values(first, "balloon")
        last = now
        harness.time.sleep(3)  # bounded poll: reporting runs every 2 s
    hibernate_ok(first)

    second = guest(memory=512, options=["--swap", swap, "--balloon", "free-page-reporting=on"])
    resume_ok(second)
    # the image's counter came back with it; the new host gets the same
    # free memory reported once more (128 MiB at least)
    deadline = harness.time.monotonic() + 60
    while reported(second) < last + 32768:
        assert harness.time.monotonic() < deadline, (last, values(second, "balloon"))
        harness.time.sleep(0.5)  # bounded poll of the guest's own counter

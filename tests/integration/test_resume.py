"""Hibernation, the way back up: each cycle is two QEMU runs on the same
torpor-swap disk. The first fills memory, balloons and hibernates (QMP
SUSPEND_DISK, exit 0); the second finds the image, prints `resume ok` and
continues where the first left off: `verify` passes, the balloon list was
discarded into the allocator (the new host never had those pages), and the
balloon follows the new host's target. Images that must not be resumed
(corrupt, truncated, another build, another format version, another disk
size, other RAM, used, half-resumed) are refused with their reason, the
guest boots fresh, and the image is kept for tools/hibimg."""

import os
import re

import pytest

import harness
from test_hibernate import OK_RE, hibimg, hibernate_ok, values, wait_balloon
from test_hibimg import as_version1, checksum_version1

MIB = 1 << 20
RESUME_OK_RE = re.compile(r"(?m)^resume ok pages=(\d+) ms=(\d+) read_bytes=(\d+) read_us=(\d+)(.*?)\r?\n")
REFUSED_RE = re.compile(r"(?m)^resume refused reason=(\S+)")


def resume_ok(g, timeout=180):
    """Waits for `resume ok` and the prompt after it; returns its pages."""
    match = g.wait_for(RESUME_OK_RE, timeout=timeout)
    g.wait_prompt()
    assert match.group(5).strip() == "", match.group(0)  # no restore or mark failure
    assert not re.search(harness.READY_RE, g.output), "booted fresh as well as resuming"
    return int(match.group(1))


def boots_fresh_refusing(g, reason):
    g.wait_ready()
    refused = REFUSED_RE.findall(g.output)
    assert refused == [reason], (refused, reason)
    assert "resume ok" not in g.output
    assert g.command("verify") == ["verify ok regions=0 kib=0"]  # nothing came back


def image_info(path):
    result = hibimg("info", path)
    return result, harness.parse_values(result.stdout.splitlines()[0]) if result.stdout else {}


def swap_args(swap, properties=""):
    """A hibernation disk attached by hand, with extra device properties."""
    return ["-drive", "if=none,id=swapd,format=raw,file=%s" % swap,
            "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap%s" % properties]


def balloon_is_empty_and_free(g, ballooned_pages, free_before_kib):
    balloon = values(g, "balloon")
    assert balloon["list_pages"] == 0 and balloon["actual_pages"] == 0, balloon
    assert balloon["discarded_pages"] == ballooned_pages, balloon
    mem = values(g, "mem")
    assert mem["balloon_kib"] == 0, mem
    # the ballooned memory is free again, not leaked
    assert mem["free_kib"] >= free_before_kib + ballooned_pages * 4 - 4096, (mem, free_before_kib)
    return mem


# ---- the scripted cycle ---------------------------------------------------

@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_cycle_resumes_discards_the_balloon_and_never_twice(guest, machine, tmp_path):
    swap = str(tmp_path / "swap.img")
    first = guest(machine=machine, memory=512, options=["--swap", swap])
    first.wait_ready()
    first.connect_qmp()
    assert first.command("fill 40 31")[0].startswith("fill id=0")
    assert first.command("fill 24 32")[0].startswith("fill id=1")
    wait_balloon(first, 384 * MIB)
    free_before = values(first, "mem")["free_kib"]
    pages, zero_pages, _ = hibernate_ok(first)

    result, info = image_info(swap)
    assert result.returncode == 0 and info["state"] == "valid", result.stdout + result.stderr
    assert int(info["pages"]) == pages and int(info["zero_pages"]) == zero_pages, info

    second = guest(machine=machine, memory=512, options=["--swap", swap])
    second.connect_qmp()
    assert resume_ok(second) == pages
    assert second.command("verify") == ["verify ok regions=2 kib=65536"]
    balloon_is_empty_and_free(second, 32768, free_before)
    assert second.qmp("query-balloon")["actual"] == 512 * MIB
    wait_balloon(second, 448 * MIB)  # the new host's target is followed
    assert values(second, "balloon")["list_pages"] == 16384
    # the disks work on their new queues
    assert second.command("blk write torpor-data 8 0x77 4")[0].startswith("blkwrite")

    result, info = image_info(swap)
    assert result.returncode == 1 and info["state"] == "used", result.stdout + result.stderr
    assert int(info["pages"]) == pages

    # never twice: a reboot boots fresh
    second.send("reboot\r")
    second.wait_for(harness.READY_RE, timeout=90)
    assert REFUSED_RE.findall(second.output) == ["already-used"]
    second.wait_prompt()
    assert second.command("verify") == ["verify ok regions=0 kib=0"]


@pytest.mark.parametrize("transport", ["disable-legacy=on", "disable-modern=on"])
def test_cycle_on_one_transport(guest, transport, tmp_path):
    swap = str(tmp_path / "swap.img")
    with open(swap, "wb") as f:
        f.truncate(600 * MIB)
    options = ["--no-swap", "--balloon", transport]
    args = swap_args(swap, "," + transport)
    first = guest(memory=512, options=options, qemu_args=args)
    first.wait_ready()
    first.connect_qmp()
    first.command("fill 32 41")
    wait_balloon(first, 448 * MIB)
    pages = hibernate_ok(first)[0]

    second = guest(memory=512, options=options, qemu_args=args)
    second.connect_qmp()
    assert resume_ok(second) == pages
    assert second.command("verify") == ["verify ok regions=1 kib=32768"]
    assert values(second, "balloon")["discarded_pages"] == 16384
    wait_balloon(second, 480 * MIB)


def test_power_button_hibernates_and_the_next_boot_resumes(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    first = guest(options=["--swap", swap])
    boot = first.wait_ready()
    assert re.search(r"power button: SCI \d+, action hibernate", boot), boot
    first.command("fill 16 51")
    first.connect_qmp()
    first.qmp("system_powerdown")
    pages = int(first.wait_for(OK_RE, timeout=180).group(1))
    first.wait_event("SUSPEND_DISK", timeout=60)
    assert first.wait_exit(timeout=60) == 0

    second = guest(options=["--swap", swap])
    assert resume_ok(second) == pages
    assert second.command("verify") == ["verify ok regions=1 kib=16384"]
    # the button is armed again on the new firmware: it hibernates once more
    second.connect_qmp()
    second.qmp("system_powerdown")
    second.wait_for(OK_RE, timeout=180)
    assert second.wait_exit(timeout=60) == 0


def test_resume_after_the_host_added_devices(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    extra = tmp_path / "extra.img"
    with open(extra, "wb") as f:
        f.truncate(8 * MIB)
    first = guest(options=["--swap", swap])
    first.wait_ready()
    first.command("fill 24 61")
    pages = hibernate_ok(first)[0]

    second = guest(options=["--swap", swap], qemu_args=[
        "-device", "virtio-rng-pci",
        "-drive", "if=none,id=extra,format=raw,file=%s" % extra,
        "-device", "virtio-blk-pci,drive=extra,serial=torpor-extra"])
    assert resume_ok(second) == pages
    assert "virtio: new rng" in second.output
    assert second.command("verify") == ["verify ok regions=1 kib=24576"]
    # the new disk was probed and works, the old ones too
    assert second.command("blk write torpor-extra 0 0x5a 8")[0].startswith("blkwrite")
    assert second.command("blk read torpor-extra 0 8")[0].startswith("00000000  5a 00 00 00")
    assert second.command("blk write torpor-data 0 0x5b 8")[0].startswith("blkwrite")


def test_resume_with_ninety_percent_of_memory_filled(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    first = guest(memory=512, options=["--swap", swap])
    first.wait_ready()
    total = values(first, "mem")["total_kib"]
    fill_mib = total * 9 // 10 // 1024
    assert first.command("fill %d 71" % fill_mib, timeout=120)[0].startswith("fill id=0")
    mem = values(first, "mem")
    assert mem["used_kib"] >= total * 9 // 10, mem
    pages = hibernate_ok(first)[0]
    assert pages * 4 >= fill_mib * 1024

    second = guest(memory=512, options=["--swap", swap])
    assert resume_ok(second, timeout=300) == pages
    assert second.command("verify", timeout=120) == \
        ["verify ok regions=1 kib=%d" % (fill_mib * 1024)]


# ---- refusals -------------------------------------------------------------

@pytest.fixture(scope="module")
def small_image(tmp_path_factory):
    """One plain image (16 MiB filled), written once; tests copy it and
    spoil the copy, and boot it with PLAIN (which accepts plain images).
    These tests are of the checksums and states every image has; the
    authenticated image's own are in test_image_auth.py. Returns (path,
    pages)."""
    directory = tmp_path_factory.mktemp("image")
    swap = str(directory / "swap.img")
    with harness.Guest(name="small_image", options=["--swap", swap], qemu_args=PLAIN) as g:
        g.wait_ready()
        g.command("fill 16 81")
        pages = hibernate_ok(g)[0]
    return swap, pages


PLAIN = harness.PLAIN_IMAGES


def copy_image(small_image, tmp_path):
    path = str(tmp_path / "swap.img")
    harness.copy_disk(small_image[0], path)
    return path


def data_offset(pages):
    index_bytes = (pages * 24 + 4095) // 4096 * 4096
    return 4096 + index_bytes


def flip_byte(path, offset, bits=0x10):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ bits]))


def flip_bit63_pair(path, pages, page=11):
    """Bit 63 of word 0 and of word 511 of one saved data page: version
    1's checksum (xor, multiply) missed this pair (docs/image-format.md)."""
    start = data_offset(pages) + 4096 * page

    def page_data():
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(4096)

    before = page_data()
    flip_byte(path, start + 7, 0x80)
    flip_byte(path, start + 511 * 8 + 7, 0x80)
    after = page_data()
    assert after != before and checksum_version1(after) == checksum_version1(before)


def rewrite_as_version1(path):
    """The header page as a version 1 kernel would have written it."""
    with open(path, "r+b") as f:
        header = f.read(4096)
        f.seek(0)
        f.write(as_version1(header))


SPOILERS = {
    # what the test does to the image, and the reason the guest must give
    "header": (lambda path, pages: flip_byte(path, 40), "bad-header-checksum"),
    "index": (lambda path, pages: flip_byte(path, 4096 + 24 * (pages // 2) + 9), "bad-index-checksum"),
    "data": (lambda path, pages: flip_byte(path, data_offset(pages) + 4096 * 7 + 123), "bad-page-checksum"),
    "bit63-pair": (flip_bit63_pair, "bad-page-checksum"),
    "truncated": (lambda path, pages: os.truncate(path, data_offset(pages) + 4096 * 16), "image-beyond-disk"),
    "disk-changed": (lambda path, pages: os.truncate(path, os.path.getsize(path) + MIB), "disk-changed"),
    "bad-version": (lambda path, pages: rewrite_as_version1(path), "bad-version"),
    "other-build": (lambda path, pages: hibimg("set", path, "build_id", "123456789abcdef"), "different-build"),
    "half-resumed": (lambda path, pages: hibimg("set", path, "state", "resuming"),
                     "earlier-resume-did-not-finish"),
}


# spoilers that leave a header a boot would resume: that boot goes on
# fresh, so it marks the image skipped (state and checksum only)
ARMED = {"index", "data", "bit63-pair", "truncated", "disk-changed", "other-build"}
STATE_BYTES = range(12, 24)  # state (12) and header_checksum (16): sector 0


@pytest.mark.parametrize("spoiler", sorted(SPOILERS))
def test_spoiled_image_is_refused_and_kept(guest, small_image, tmp_path, spoiler):
    path = copy_image(small_image, tmp_path)
    spoil, reason = SPOILERS[spoiler]
    spoil(path, small_image[1])
    before = open(path, "rb").read(4096)
    g = guest(options=["--swap", path], qemu_args=PLAIN)
    boots_fresh_refusing(g, reason)
    line = re.search(r"(?m)^resume refused reason=.*$", g.output).group(0)
    g.close()
    if reason == "bad-page-checksum":
        # the kernel names the damaged page, the one hibimg finds
        damaged = re.search(r"(?m)^verify FAIL reason=bad-page-checksum page_index=\d+ (pfn=0x[0-9a-f]+)$",
                            hibimg("verify", path).stdout)
        assert damaged and re.search(r" %s( |$)" % damaged.group(1), line), (line, damaged)
    after = open(path, "rb").read(4096)
    if spoiler in ARMED:
        # skipped, so no later boot resumes it over this boot's disks;
        # everything else kept for hibimg
        assert line.rstrip().endswith(" image=skipped"), line
        assert image_info(path)[1]["state"] == "skipped"
        assert [b for i, b in enumerate(after) if i not in STATE_BYTES] == \
            [b for i, b in enumerate(before) if i not in STATE_BYTES]
    else:
        # not resumable as it is: left exactly as it was
        assert "image=" not in line, line
        assert after == before
    result = hibimg("verify", path)
    assert result.returncode == 1, result.stdout + result.stderr


def test_other_ram_size_is_refused(guest, small_image, tmp_path):
    path = copy_image(small_image, tmp_path)
    boots_fresh_refusing(guest(memory=768, options=["--swap", path], qemu_args=PLAIN), "ram-size-changed")
    assert image_info(path)[1]["state"] == "skipped"


def test_noresume_skips_a_valid_image_and_it_never_comes_back_by_itself(guest, small_image, tmp_path):
    path = copy_image(small_image, tmp_path)
    g = guest(options=["--swap", path],
              qemu_args=["-fw_cfg", "name=opt/torpor/cmdline,string=noresume hibernate_auth=off"])
    g.wait_ready()
    assert "resume skipped reason=noresume image=skipped" in g.output
    assert "resume ok" not in g.output
    g.close()
    result, info = image_info(path)
    assert result.returncode == 1 and info["state"] == "skipped", result.stdout

    # the next boot does not resume it by itself
    g = guest(options=["--swap", path], qemu_args=PLAIN)
    boots_fresh_refusing(g, "skipped")
    g.close()

    # hibimg re-arms it on purpose (after checking it), and then it resumes
    assert hibimg("set", path, "state", "valid").returncode == 0
    g = guest(options=["--swap", path], qemu_args=PLAIN)
    assert resume_ok(g) == small_image[1]
    assert g.command("verify") == ["verify ok regions=1 kib=16384"]


def test_half_resumed_image_can_be_retried_after_hibimg_marks_it_valid(guest, small_image, tmp_path):
    path = copy_image(small_image, tmp_path)
    hibimg("set", path, "state", "resuming")
    assert image_info(path)[1]["state"] == "resuming"
    assert hibimg("set", path, "state", "valid").returncode == 0
    g = guest(options=["--swap", path], qemu_args=PLAIN)
    assert resume_ok(g) == small_image[1]


def test_resume_after_the_balloon_vanished_gives_its_pages_back(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    first = guest(options=["--swap", swap])
    first.wait_ready()
    first.connect_qmp()
    first.command("fill 16 91")
    wait_balloon(first, 448 * MIB)
    free_before = values(first, "mem")["free_kib"]
    pages = hibernate_ok(first)[0]

    second = guest(options=["--swap", swap, "--no-balloon"])
    assert resume_ok(second) == pages
    assert re.search(r"virtio: balloon at \S+ is gone after resume", second.output)
    assert "balloon: device gone, 16384 ballooned pages back to the allocator" in second.output
    mem = values(second, "mem")
    assert mem["balloon_kib"] == 0, mem
    assert mem["free_kib"] >= free_before + 16384 * 4 - 4096, (mem, free_before)
    assert second.command("verify") == ["verify ok regions=1 kib=16384"]


def test_the_clock_after_resume_is_recalibrated_and_runs_at_the_hosts_rate(guest, tmp_path):
    """The resumed kernel measures the TSC again (the new QEMU process may
    run it at another rate): its log shows the `clock: tsc N Hz` line
    after the jump into the image. `uptime` continues from the snapshot
    (never backwards, the time hibernated not counted) and then runs at
    the host's rate: two readings bracketed by host monotonic time, as
    test_boot.py checks after a boot, with the same generous bounds."""
    from test_boot import calibration, uptime_ms, wait_until

    swap = str(tmp_path / "swap.img")
    first = guest(options=["--swap", swap])
    first.wait_ready()
    before_ms, _, before_host = uptime_ms(first)
    hibernate_ok(first)

    second = guest(options=["--swap", swap])
    resume_ok(second)
    after_jump = second.output.split("resume: jumping into the image", 1)
    assert len(after_jump) == 2, second.tail()
    resumed_log = after_jump[1].split("resume ok", 1)[0]
    line = re.search(r"clock: tsc (\d+) Hz(.*)", resumed_log)
    assert line and line.group(2).strip() == "", "no recalibration after resume:\n%s" % resumed_log
    assert 100_000_000 <= int(line.group(1)) <= 100_000_000_000, line.group(0)

    first_ms, first_before, first_after = uptime_ms(second)
    # continuous: no earlier than at the snapshot, and at most the host
    # time that passed since (doubled for a slow clock reading)
    assert before_ms <= first_ms <= before_ms + 2000 * (first_after - before_host) + 1000, \
        (before_ms, first_ms, first_after - before_host)
    wait_until(first_after + 1.5)
    second_ms, second_before, second_after = uptime_ms(second)
    guest_delta = (second_ms - first_ms) / 1000
    host_least, host_most = second_before - first_after, second_after - first_before
    assert 0.5 * host_least <= guest_delta <= 2 * host_most, (
        "after resume uptime advanced %.3fs while the host measured %.3fs to %.3fs (%s)"
        % (guest_delta, host_least, host_most, calibration(resumed_log)))

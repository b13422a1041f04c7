"""Hibernation, the way down: `hibernate` writes every page in use to the
torpor-swap disk straight from RAM and enters S4 (QMP SUSPEND_DISK, QEMU
exits 0); tools/hibimg then checks the image the guest wrote, page by page.
Failures on the way (no disk, a disk too small, a write error) thaw: the
guest keeps running as it was, balloon included. Resume has its own
tests (test_resume.py); these check the image itself."""

import re

import pytest

import harness

OK_RE = re.compile(r"hibernate ok pages=(\d+) zero_pages=(\d+) image_bytes=(\d+) ms=(\d+)\r?\n")
MIB = 1 << 20


hibimg = harness.hibimg  # with the disk's variable store: the owner's view


def wait_balloon(g, value, timeout=60):
    g.qmp("balloon", value=value)
    deadline = harness.time.monotonic() + timeout
    while g.qmp("query-balloon")["actual"] != value:
        assert harness.time.monotonic() < deadline, "balloon did not reach %d" % value
        harness.time.sleep(0.05)  # bounded poll of a host-side value


def values(g, command):
    return {k: int(v) for k, v in g.command_values(command).items() if v.isdigit()}


def hibernate_ok(g):
    """Types `hibernate`; waits for SUSPEND_DISK and QEMU's exit 0."""
    g.connect_qmp()  # before QEMU exits, to see the event
    g.send("hibernate\r")
    match = g.wait_for(OK_RE, timeout=180)
    g.wait_event("SUSPEND_DISK", timeout=60)
    assert g.wait_exit(timeout=60) == 0
    return [int(x) for x in match.groups()[:3]]


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_hibernate_writes_an_image_hibimg_accepts(guest, machine, tmp_path):
    swap = str(tmp_path / "swap.img")
    g = guest(machine=machine, memory=512, options=["--swap", swap])
    g.wait_ready()
    g.connect_qmp()
    assert g.command("fill 48 11")[0].startswith("fill id=0")
    assert g.command("fill 16 12")[0].startswith("fill id=1")
    wait_balloon(g, 384 * MIB)
    mem = values(g, "mem")
    assert mem["balloon_kib"] == 128 * 1024, mem

    pages, zero_pages, image_bytes = hibernate_ok(g)
    # what is saved is what is in use, minus the balloon (the host has it)
    in_use_kib = mem["used_kib"] - mem["balloon_kib"]
    assert 0 <= in_use_kib - pages * 4 < 4096, (in_use_kib, pages)
    assert zero_pages < pages // 10, (zero_pages, pages)
    data_pages = pages - zero_pages
    assert image_bytes >= data_pages * 4096 and image_bytes - data_pages * 4096 < pages * 24 + 3 * 4096

    info = hibimg("info", swap)
    assert info.returncode == 0, info.stdout + info.stderr
    fields = harness.parse_values(info.stdout.splitlines()[0])
    assert fields["state"] == "valid", info.stdout
    assert int(fields["pages"]) == pages and int(fields["zero_pages"]) == zero_pages, info.stdout
    assert int(fields["bytes"]) == image_bytes, info.stdout
    verify = hibimg("verify", swap)
    assert verify.returncode == 0 and "verify ok pages=%d" % pages in verify.stdout, \
        verify.stdout + verify.stderr


def test_hibernate_refuses_without_a_disk(guest):
    g = guest(options=["--no-swap"])
    g.wait_ready()
    lines = g.command("hibernate")
    assert [l for l in lines if l.startswith("hibernate failed reason=no-disk")], lines
    assert g.command_values("uptime")["ms"].isdigit()


def test_hibernate_refuses_a_disk_too_small_before_freezing(guest, tmp_path):
    swap = str(tmp_path / "small.img")
    g = guest(options=["--swap", swap, "--swap-size", "8"])
    g.wait_ready()
    g.command("fill 32 5")
    lines = g.command("hibernate")
    assert [l for l in lines if l.startswith("hibernate failed reason=disk-too-small")], lines
    # nothing was frozen: the disks work, memory is intact
    assert not [l for l in lines if "freeze" in l], lines
    assert g.command("verify") == ["verify ok regions=1 kib=32768"]
    assert g.command("blk write torpor-data 0 0x1234 1")[0].startswith("blkwrite")


def test_write_error_thaws_and_a_second_try_succeeds(guest, tmp_path):
    swap = tmp_path / "swap.img"
    with open(swap, "wb") as f:
        f.truncate(640 * MIB)
    conf = tmp_path / "blkdebug.conf"
    # fail one write in the middle of the data (the image is ~70 MiB)
    conf.write_text('[inject-error]\nevent = "write_aio"\niotype = "write"\nerrno = "5"\n'
                    'sector = "60000"\nonce = "on"\n')
    g = guest(memory=512, options=["--no-swap"], qemu_args=[
        "-drive", "if=none,id=swapd,format=raw,werror=report,rerror=report,"
                  "file=blkdebug:%s:%s" % (conf, swap),
        "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap"])
    g.wait_ready()
    g.connect_qmp()
    g.command("fill 48 21")
    wait_balloon(g, 384 * MIB)
    before = values(g, "balloon")

    g.send("hibernate\r")
    failed = g.wait_for(r"hibernate failed reason=write-error error=\"([^\"]+)\" sector=(\d+)\r?\n",
                        timeout=180)
    assert "I/O error" in failed.group(1), failed.group(0)
    assert int(failed.group(2)) <= 60000, failed.group(0)
    g.wait_prompt()
    assert g.proc.poll() is None
    # thawed: the balloon is exactly as inflated, memory intact, disks work
    after = values(g, "balloon")
    assert after["list_pages"] == before["list_pages"] == 32768, (before, after)
    assert after["deflate_requests"] == before["deflate_requests"], (before, after)
    assert g.qmp("query-balloon")["actual"] == 384 * MIB
    assert g.command("verify") == ["verify ok regions=1 kib=49152"]
    # the writer's requests count in the disk's statistics, the failed one too
    swap_line = harness.parse_values([l for l in g.command("blk") if "disk=torpor-swap" in l][0])
    assert int(swap_line["errors"]) >= 1 and int(swap_line["writes"]) >= 1, swap_line
    wait_balloon(g, 320 * MIB)  # the next target is followed
    assert values(g, "balloon")["list_pages"] == 49152

    # the fault fired once: the second try writes a valid image
    pages = hibernate_ok(g)[0]
    verify = hibimg("verify", str(swap))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # and it resumes, with the balloon discarded (same device layout, the
    # disk without blkdebug)
    g = guest(memory=512, options=["--no-swap"], qemu_args=[
        "-drive", "if=none,id=swapd,format=raw,file=%s" % swap,
        "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap"])
    g.wait_for(r"resume ok pages=%d " % pages, timeout=180)
    g.wait_prompt()
    assert g.command("verify") == ["verify ok regions=1 kib=49152"]
    assert values(g, "balloon")["discarded_pages"] == 49152

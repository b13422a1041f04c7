"""What torpor promises when things break: a hibernated guest comes back
exactly as it was, or boots fresh with a clear reason; never wrong.

- Power loss: QEMU is killed (SIGKILL) at a random moment while the image
  is being written; the next boot resumes a complete image or boots fresh.
- Faults: QEMU's blkdebug fails a write or a flush of the hibernation
  disk (the guest thaws and keeps running), or a read during resume (the
  image is refused with read-error, the guest boots fresh, the image is
  kept and is still sound for hibimg).
"""

import os
import random
import re
import signal

import pytest

import harness
from test_hibernate import hibimg, hibernate_ok, wait_balloon
from test_resume import REFUSED_RE, RESUME_OK_RE, resume_ok

MIB = 1 << 20


def blkdebug_guest(guest, tmp_path, swap, rule, plain_images=False, **kwargs):
    """plain_images: write and accept plain images (harness.PLAIN_IMAGES),
    for tests that re-arm an image with hibimg: an authenticated image's
    key is gone once a boot went past it (docs/security.md)."""
    conf = tmp_path / "blkdebug.conf"
    conf.write_text(rule)
    return guest(options=["--no-swap"], qemu_args=[
        "-drive", "if=none,id=swapd,format=raw,werror=report,rerror=report,"
                  "file=blkdebug:%s:%s" % (conf, swap),
        "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap"]
        + (harness.PLAIN_IMAGES if plain_images else []), **kwargs)


def plain_guest(guest, swap, plain_images=False, **kwargs):
    """The same device layout as blkdebug_guest, without the faults."""
    return guest(options=["--no-swap"], qemu_args=[
        "-drive", "if=none,id=swapd,format=raw,file=%s" % swap,
        "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap"]
        + (harness.PLAIN_IMAGES if plain_images else []), **kwargs)


def image_sectors(pages):
    index_sector = 8
    data_sector = index_sector + (pages * 24 + 4095) // 4096 * 8
    return index_sector, data_sector


# ---- power loss -------------------------------------------------------------

def kill_while_writing(g, rng):
    """Starts `hibernate` and SIGKILLs QEMU a random moment after the
    writer starts; returns the delay."""
    g.send("hibernate\r")
    g.wait_for(r"hibernate: saving up to \d+ pages", timeout=60)
    delay = rng.uniform(0, 0.2)
    harness.time.sleep(delay)  # the random moment of the power loss, not a wait
    harness._killpg(g.proc.pid, signal.SIGKILL)
    g.proc.wait(10)
    return delay


@pytest.mark.parametrize("round_", range(3))
def test_power_loss_while_writing_never_resumes_a_torn_image(guest, tmp_path, round_):
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    swap = str(tmp_path / "swap.img")

    # an image written and resumed before (state used), then a second
    # hibernation that loses power half-way
    first = guest(options=["--swap", swap])
    first.wait_ready()
    first.command("fill 24 %d" % (seed % 1000))
    pages = hibernate_ok(first)[0]
    second = guest(options=["--swap", swap])
    assert resume_ok(second) == pages
    second.command("fill %d %d" % (rng.choice([16, 32, 48]), seed % 997))
    delay = kill_while_writing(second, rng)

    third = guest(options=["--swap", swap])
    third.wait_for(r"(?m)^(resume ok|torpor ready)", timeout=180)
    third.wait_prompt()
    context = "seed=%d delay=%.3f\n%s" % (seed, delay, third.output[-1500:])
    assert "exception" not in third.output, context
    if RESUME_OK_RE.search(third.output):
        # the kill came after the image was complete: it is whole
        assert third.command("verify")[0].startswith("verify ok regions=2"), context
    else:
        # the header was zeroed before any data, or the old used one is
        # still there: either way a fresh boot that says why
        refused = REFUSED_RE.findall(third.output)
        assert refused in ([], ["already-used"]), context
        if not refused:
            assert "resume: no image on torpor-swap" in third.output, context
        assert third.command("verify") == ["verify ok regions=0 kib=0"], context


# ---- faults on the way down -------------------------------------------------

# The fault matrix: how many evenly spread positions in the data area get a
# fault of their own (`make faults` runs 16; `make test` 2).
POSITIONS = int(os.environ.get("TORPOR_FAULT_POSITIONS", "2"))
FILL_MIB = 24
# data pages of the image a FILL_MIB fill makes, a little less than
# measured (6287), so every position lands inside the data area
DATA_PAGES_ESTIMATE = 6000
INDEX_SECTOR = 8
DATA_SECTOR_ESTIMATE = 224


def after_flushes(count):
    """blkdebug rules that move to state count + 1 after `count` flushes."""
    return "".join('[set-state]\nstate = "%d"\nevent = "flush_to_disk"\nnew_state = "%d"\n\n'
                   % (n, n + 1) for n in range(1, count + 1))


def write_fault(sector, state=1):
    return ('[inject-error]\nstate = "%d"\nevent = "write_aio"\niotype = "write"\nsector = "%d"\n'
            'errno = "5"\nonce = "on"\n' % (state, sector))


def flush_fault(state):
    return '[inject-error]\nstate = "%d"\nevent = "flush_to_disk"\nerrno = "5"\nonce = "on"\n' % state


WRITE_FAULTS = {
    # the writer's order: zero the header, flush 1, data, flush 2 (not
    # waited for: the host writes the data out while the tags are made),
    # index, flush 3, the sealed header, flush 4
    "header-zeroing": (write_fault(0), "write-error"),
    "index": (write_fault(INDEX_SECTOR), "write-error"),
    "final-header": (after_flushes(3) + write_fault(0, state=4), "write-error"),
    "flush-1": (flush_fault(1), "flush-error"),
    "flush-2": (after_flushes(1) + flush_fault(2), "flush-error"),
    "flush-3": (after_flushes(2) + flush_fault(3), "flush-error"),
    "flush-4": (after_flushes(3) + flush_fault(4), "flush-error"),
}
for k in range(POSITIONS):
    WRITE_FAULTS["data-%d/%d" % (k, POSITIONS)] = (
        write_fault(DATA_SECTOR_ESTIMATE + DATA_PAGES_ESTIMATE * 8 * k // POSITIONS), "write-error")


@pytest.mark.parametrize("where", sorted(WRITE_FAULTS))
def test_write_and_flush_faults_thaw(guest, tmp_path, where):
    swap = tmp_path / "swap.img"
    with open(swap, "wb") as f:
        f.truncate(600 * MIB)
    rules, reason = WRITE_FAULTS[where]
    g = blkdebug_guest(guest, tmp_path, swap, rules)
    g.wait_ready()
    g.connect_qmp()
    g.command("fill %d 7" % FILL_MIB)
    # inflated before the hibernation, so "as it was" below is one known state
    wait_balloon(g, 480 * MIB)
    g.send("hibernate\r")
    failed = g.wait_for(r"hibernate failed reason=(\S+)[ \r\n].*?\r?\n", timeout=180)
    assert failed.group(1) == reason, failed.group(0)
    # a sealed header that may have reached the disk is taken back
    assert ("image=invalidated" in failed.group(0)) == (where in ("final-header", "flush-4")), failed.group(0)
    g.wait_prompt()
    assert g.proc.poll() is None
    # thawed: memory intact, the balloon as it was, the swap disk works
    assert g.command("verify") == ["verify ok regions=1 kib=%d" % (FILL_MIB * 1024)]
    assert g.qmp("query-balloon")["actual"] == 480 * MIB
    assert re.match(r"00200000  [0-9a-f]{2} ", g.command("blk read torpor-swap 4096 1")[0])
    # no valid image was left behind
    result = hibimg("info", str(swap))
    assert result.returncode == 1, result.stdout


# ---- faults on the way up ---------------------------------------------------

@pytest.fixture(scope="module")
def written_image(tmp_path_factory):
    directory = tmp_path_factory.mktemp("image")
    swap = str(directory / "swap.img")
    with open(swap, "wb") as f:
        f.truncate(600 * MIB)
    # plain: the read-fault tests re-arm it with hibimg after a boot went past it
    with harness.Guest(name="reliability_image", options=["--no-swap"], qemu_args=[
            "-drive", "if=none,id=swapd,format=raw,file=%s" % swap,
            "-device", "virtio-blk-pci,drive=swapd,serial=torpor-swap"] + harness.PLAIN_IMAGES) as g:
        g.wait_ready()
        g.command("fill 20 9")
        pages = hibernate_ok(g)[0]
    return swap, pages


READ_FAULTS = ["header", "index"] + ["data-%d/%d" % (k, POSITIONS) for k in range(POSITIONS)] + ["data-last"]


@pytest.mark.parametrize("where", READ_FAULTS)
def test_read_fault_during_resume_refuses_and_keeps_the_image(guest, tmp_path, written_image, where):
    source, pages = written_image
    swap = str(tmp_path / "swap.img")
    harness.copy_disk(source, swap)
    data_pages = int(harness.parse_values(hibimg("info", swap).stdout.splitlines()[0])["data_pages"])
    index_sector, data_sector = image_sectors(pages)
    if where.startswith("data-") and "/" in where:
        k = int(where[5:].split("/")[0])
        sector = data_sector + data_pages * 8 * k // POSITIONS
    else:
        sector = {"header": 0, "index": index_sector, "data-last": data_sector + (data_pages - 1) * 8}[where]
    # the firmware reads sector 0 too (partition tables): that fault must
    # not be spent on it
    rule = ('[inject-error]\nevent = "read_aio"\niotype = "read"\nsector = "%d"\nerrno = "5"\n'
            'once = "%s"\n' % (sector, "off" if where == "header" else "on"))
    g = blkdebug_guest(guest, tmp_path, swap, rule, plain_images=True)
    g.wait_ready()
    refused = re.search(r"resume refused reason=read-error sector=(\d+)", g.output)
    assert refused, g.output[-1500:]
    assert "resume ok" not in g.output
    assert g.command("verify") == ["verify ok regions=0 kib=0"]
    g.close()
    state = harness.parse_values(hibimg("info", swap).stdout.splitlines()[0])["state"]
    if where == "header":
        # the header never arrived: this boot knew of no image and marked nothing
        assert state == "valid" and "image=" not in refused.group(0)
    else:
        # this boot went on fresh: the image is marked skipped, so no later
        # boot resumes it by itself over the disks the fresh system changed
        assert state == "skipped", state
        assert re.search(r"resume refused reason=read-error sector=\d+ image=skipped", g.output)
        # every page is sound: its owner can re-arm it on purpose
        result = hibimg("set", swap, "state", "valid")
        assert result.returncode == 0, result.stdout + result.stderr
    result = hibimg("verify", swap)
    assert result.returncode == 0, result.stdout + result.stderr
    h = plain_guest(guest, swap, plain_images=True)
    assert resume_ok(h) == pages
    assert h.command("verify") == ["verify ok regions=1 kib=20480"]

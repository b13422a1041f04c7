"""Devices that come, go or move between hibernate and resume. QEMU gives
PCI slots in command-line order, so a disk added, removed or reordered
moves the others: a disk must be known by its identity (serial, capacity,
limits), never by its slot. After each change every disk is named right,
the data disk's bytes (checked from the host) survive the resume and the
next hibernate, no console command can crash the kernel, and what a
removed device held goes back to the allocator."""

import hashlib
import os
import re

import pytest

import harness
from test_hibernate import hibernate_ok, values
from test_resume import resume_ok

MEMORY = 256
DATA_MIB = 16


def data_disk(tmp_path, name="data.img"):
    """A data disk full of bytes the guest never wrote; returns (path, digest)."""
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(os.urandom(DATA_MIB << 20))
    return path, digest(path)


def new_swap(path):
    with open(path, "wb") as f:
        f.truncate((MEMORY + 64) << 20)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def disk_args(kind, path):
    serial = {"swap": "torpor-swap", "data": "torpor-data"}[kind]
    return ["-drive", "if=none,id=%s,format=raw,file=%s" % (kind, path),
            "-device", "virtio-blk-pci,drive=%s,serial=%s" % (kind, serial)]


def start(guest, machine, disks, balloon=True):
    """A guest whose disks are exactly `disks` [(kind, path)], in that order."""
    options = ["--no-data", "--no-swap"] + ([] if balloon else ["--no-balloon"])
    args = [arg for kind, path in disks for arg in disk_args(kind, path)]
    return guest(machine=machine, memory=MEMORY, options=options, qemu_args=args)


def disks_by_name(g):
    """{name: values} of the `blk` lines."""
    found = {}
    for line in g.command("blk"):
        if line.startswith("blk "):
            v = harness.parse_values(line)
            found[v["disk"]] = v
    return found


def assert_named_right(g, expected):
    """Each disk answers to its own serial and capacity, and no other."""
    disks = disks_by_name(g)
    disks.pop("torpor-esp", None)  # the boot disk run-qemu.sh always attaches
    assert set(disks) == set(expected), disks
    for name, mib in expected.items():
        assert disks[name]["serial"] == name, disks[name]
        assert int(disks[name]["mib"]) == mib, disks[name]


PATTERN = 0x5a17c3e9


def results(g, command, timeout=60):
    """A command's output without the kernel log lines among it."""
    return [line for line in g.command(command, timeout=timeout)
            if not harness.LOG_STAMP_RE.match(line)]


WRITE_LBA = 4096  # past the 1 MiB `blk bench` overwrites


def every_command(g, gone=(), data=None):
    """Every console command and its common forms; none may crash the
    kernel, whatever devices came or went (`gone` names disks no longer
    there: asking for them is an error line, nothing worse). `data` is the
    host path of torpor-data when it is attached: the commands write it
    (bench and write), the host sees exactly what was written, and the
    disk's new digest is returned."""
    lines = []
    for command in ("help", "mem", "mem map", "log", "uptime", "pci", "virtio", "blk", "agent",
                    "balloon", "verify", "free 99", "blk read torpor-swap 0",
                    "blk read torpor-swap 0 2", "blk read 0 0", "blk read 7 0", "blk flush torpor-swap",
                    "blk bench torpor-swap 1", "balloon reserve 16", "balloon batch 256 4",
                    "balloon batch 1024 8", "blk bench nosuchdisk 1", "blk write nosuchdisk 0 1",
                    "virtio nosuchhook"):
        lines += g.command(command, timeout=120)
    # the power hooks, and the commands while frozen (refused, not fatal)
    assert results(g, "virtio freeze") == ["virtio freeze ok"]
    for command in ("virtio", "blk", "balloon", "agent", "blk read torpor-swap 0",
                    "blk flush torpor-swap", "mem"):
        lines += g.command(command, timeout=60)
    assert results(g, "virtio thaw") == ["virtio thaw ok"]
    assert results(g, "blk read torpor-swap 0")[-1].startswith("blkread disk=torpor-swap")
    assert results(g, "virtio freeze") == ["virtio freeze ok"]
    assert results(g, "virtio restore") == ["virtio restore ok"]
    assert results(g, "blk read torpor-swap 0")[-1].startswith("blkread disk=torpor-swap")
    for name in gone:
        for command in ("blk read %s 0" % name, "blk write %s 0 0x5a" % name, "blk flush %s" % name,
                        "blk bench %s 1" % name):
            out = g.command(command, timeout=60)
            assert out == ["error: blk: no disk '%s' (see blk)" % name], out
    new_digest = None
    if data:
        for command in ("blk read torpor-data 0", "blk read torpor-data 0 2", "blk flush torpor-data"):
            lines += g.command(command, timeout=60)
        bench = results(g, "blk bench torpor-data 1", timeout=120)
        assert bench[-1].startswith("blkbench disk=torpor-data "), bench
        wrote = harness.parse_values(results(g, "blk write torpor-data %d 0x%x 2" % (WRITE_LBA, PATTERN))[-1])
        assert results(g, "blk flush torpor-data") == ["blkflush disk=torpor-data"]
        read = results(g, "blk read torpor-data %d 2" % WRITE_LBA)[-1]
        assert wrote["disk"] == "torpor-data" and harness.parse_values(read)["crc32"] == wrote["crc32"], \
            (read, wrote)
        with open(data, "rb") as f:
            disk = f.read()
        assert disk[:1 << 20] == b"\xa5" * (1 << 20), "the bench's bytes are not on the disk"
        assert disk[WRITE_LBA * 512:(WRITE_LBA + 2) * 512] == PATTERN.to_bytes(4, "little") * 256
        new_digest = hashlib.sha256(disk).hexdigest()
    filled = g.command_values("fill 1")
    lines += g.command("free %s" % filled["id"])
    assert not re.search(r"(?m)^exception vector=", g.output), g.tail()
    assert g.command("uptime")[0].startswith("uptime ms=")  # still alive
    return new_digest


def hibernate_and_resume_again(guest, machine, disks, data_path, data_digest, expected):
    """The next hibernate after a change: it writes only the swap disk."""
    g = start(guest, machine, disks)
    resume_ok(g)
    assert g.command("verify")[0].startswith("verify ok regions=1")
    assert_named_right(g, expected)
    hibernate_ok(g)
    if data_path:
        assert digest(data_path) == data_digest, "the data disk changed"
    return g


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_disks_reordered_between_hibernate_and_resume(guest, machine, tmp_path):
    swap = str(tmp_path / "swap.img")
    new_swap(swap)
    data, data_digest = data_disk(tmp_path)

    first = start(guest, machine, [("swap", swap), ("data", data)])
    first.wait_ready()
    assert first.command("fill 32 7")[0].startswith("fill id=0")
    before = disks_by_name(first)
    hibernate_ok(first)
    assert digest(data) == data_digest

    # the two disks trade slots
    second = start(guest, machine, [("data", data), ("swap", swap)])
    resume_ok(second)
    assert second.command("verify")[0].startswith("verify ok regions=1")
    after = disks_by_name(second)
    expected = {"torpor-swap": (MEMORY + 64), "torpor-data": DATA_MIB}
    assert_named_right(second, expected)
    assert after["torpor-swap"]["pci"] == before["torpor-data"]["pci"], (before, after)
    data_digest = every_command(second, data=data)
    hibernate_ok(second)
    assert digest(data) == data_digest, "the next hibernate wrote the data disk"

    # and that image resumes, on either order
    hibernate_and_resume_again(guest, machine, [("swap", swap), ("data", data)], data, data_digest,
                               expected).close()


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_disk_added_between_hibernate_and_resume(guest, machine, tmp_path):
    """The issue's case: hibernate without the data disk, resume with it in
    front, where it takes the swap disk's old slot."""
    swap = str(tmp_path / "swap.img")
    new_swap(swap)
    data, data_digest = data_disk(tmp_path)

    first = start(guest, machine, [("swap", swap)])
    first.wait_ready()
    assert first.command("fill 32 8")[0].startswith("fill id=0")
    slot = disks_by_name(first)["torpor-swap"]["pci"]
    hibernate_ok(first)

    second = start(guest, machine, [("data", data), ("swap", swap)])
    resume_ok(second)
    assert second.command("verify")[0].startswith("verify ok regions=1")
    disks = disks_by_name(second)
    assert disks["torpor-data"]["pci"] == slot, disks  # the data disk sits where swap was
    assert_named_right(second, {"torpor-swap": MEMORY + 64, "torpor-data": DATA_MIB})
    assert re.search(r"virtio: blk at \S+ is another device after resume", second.output)
    data_digest = every_command(second, data=data)  # the new disk answers every command
    hibernate_ok(second)
    assert digest(data) == data_digest, "the next hibernate wrote the data disk"


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_disk_removed_between_hibernate_and_resume(guest, machine, tmp_path):
    swap = str(tmp_path / "swap.img")
    new_swap(swap)
    data, data_digest = data_disk(tmp_path)

    first = start(guest, machine, [("data", data), ("swap", swap)])
    first.wait_ready()
    assert first.command("fill 32 9")[0].startswith("fill id=0")
    hibernate_ok(first)

    second = start(guest, machine, [("swap", swap)])
    resume_ok(second)
    assert second.command("verify")[0].startswith("verify ok regions=1")
    assert_named_right(second, {"torpor-swap": MEMORY + 64})
    every_command(second, gone=("torpor-data",))
    hibernate_ok(second)
    assert digest(data) == data_digest


def test_removed_devices_give_back_what_they_held(guest, tmp_path):
    """A disk and the balloon leave across one resume and come back across
    the next: free memory returns to the page it was, so a removed device
    leaked nothing and a new probe took no more than the first."""
    swap = str(tmp_path / "swap.img")
    new_swap(swap)
    data, _ = data_disk(tmp_path)

    first = start(guest, "q35", [("data", data), ("swap", swap)])
    first.wait_ready()
    assert first.command("fill 16 3")[0].startswith("fill id=0")
    free_with = values(first, "mem")["free_kib"]
    hibernate_ok(first)

    second = start(guest, "q35", [("swap", swap)], balloon=False)
    resume_ok(second)
    free_without = values(second, "mem")["free_kib"]
    assert free_without > free_with, (free_with, free_without)
    every_command(second, gone=("torpor-data",))
    assert second.command("balloon") == ["error: balloon: no virtio-balloon device"]
    assert values(second, "mem")["free_kib"] == free_without  # the commands leaked nothing
    hibernate_ok(second)

    third = start(guest, "q35", [("data", data), ("swap", swap)])
    resume_ok(third)
    assert third.command("verify")[0].startswith("verify ok regions=1")
    assert values(third, "balloon")["target_pages"] == 0
    assert values(third, "mem")["free_kib"] == free_with

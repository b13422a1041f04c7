"""virtio-blk through the PCI and virtio layers, checked against the host.

Each boot carries several disks with different QEMU properties, so a few
boots cover the matrix: transitional, modern-only and legacy-only
transports; split and packed rings; MSI-X and INTx (two INTx-only
functions of one multifunction slot share an interrupt line); event_idx
and indirect descriptors off; 16-entry queues whose rings wrap; read-only
disks; blkdebug-injected device errors; freeze/thaw/restore; the
benchmark; 1 MiB transfers; the disk's last sectors. Data is checked in
both directions: the guest reads blocks the host wrote before boot, and
the host reads every image back after the guest wrote (and flushed) and
after QEMU exited, comparing whole files, so a stray write anywhere fails.
"""

import os
import random
import re
import struct
import zlib

import pytest

import harness

SECTOR = 512
HOST_BRIDGE = {"q35": ("8086", "29c0"), "pc": ("8086", "1237")}


# ---- host side ------------------------------------------------------------

def pattern_bytes(pattern, count):
    """What `blk write DISK LBA PATTERN COUNT` writes."""
    return struct.pack("<I", pattern) * (count * SECTOR // 4)


def random_block(name, count=8):
    return random.Random("host-block-" + name).randbytes(count * SECTOR)


class Image:
    """A raw disk image and the contents it must have (a model)."""

    def __init__(self, path, size):
        self.path = str(path)
        self.size = size
        self.model = bytearray(size)
        with open(self.path, "wb") as f:
            f.truncate(size)

    def put(self, lba, data):
        """Writes data from the host (before boot) and records it."""
        with open(self.path, "r+b") as f:
            f.seek(lba * SECTOR)
            f.write(data)
        self.expect(lba, data)

    def expect(self, lba, data):
        """Records data the guest is about to write."""
        self.model[lba * SECTOR:lba * SECTOR + len(data)] = data

    def read(self, lba, count):
        with open(self.path, "rb") as f:
            f.seek(lba * SECTOR)
            return f.read(count * SECTOR)

    def check(self, what):
        """The whole file equals the model; names the first bad sector."""
        with open(self.path, "rb") as f:
            actual = f.read()
        assert len(actual) == self.size, "%s: %s: size %d, expected %d" % (
            what, self.path, len(actual), self.size)
        if actual != self.model:
            bad = next(i for i in range(self.size) if actual[i] != self.model[i])
            sector = bad // SECTOR
            raise AssertionError(
                "%s: %s differs from what was written, first at byte %d (sector %d):\n"
                "  expected %s\n  found    %s" % (
                    what, self.path, bad, sector,
                    bytes(self.model[sector * SECTOR:sector * SECTOR + 32]).hex(),
                    actual[sector * SECTOR:sector * SECTOR + 32].hex()))


def drive_args(index, image_path, serial, props="", drive_options=""):
    return ["-drive", "if=none,id=d%d,format=raw,file=%s%s" % (index, image_path, drive_options),
            "-device", "virtio-blk-pci,drive=d%d,serial=%s%s" % (
                index, serial, "," + props if props else "")]


# ---- guest side -----------------------------------------------------------

LOG_LINE = re.compile(r"\[\s*\d+\.\d{6}\] ")


def run(g, command, timeout=30):
    """g.command without kernel log lines: klog echoes to the console, so a
    driver may log in the middle of a command's output."""
    return [line for line in g.command(command, timeout) if not LOG_LINE.match(line)]


def one_line(lines, prefix, command):
    assert len(lines) == 1 and lines[0].startswith(prefix), (
        "%r: expected one line starting %r, got %r" % (command, prefix, lines))
    return harness.parse_values(lines[0])


def expect_error(g, command, *fragments):
    """The command prints exactly one `error: ` line containing fragments."""
    lines = run(g, command)
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        "%r: expected one error line, got %r" % (command, lines))
    for fragment in fragments:
        assert fragment in lines[0], "%r: %r lacks %r" % (command, lines[0], fragment)
    return lines[0]


def blk_write(g, disk, lba, pattern, count):
    """Runs `blk write`, checks its line; returns the bytes written."""
    command = "blk write %s %d 0x%x %d" % (disk, lba, pattern, count)
    data = pattern_bytes(pattern, count)
    values = one_line(run(g, command), "blkwrite ", command)
    assert values == {"disk": disk, "lba": str(lba), "count": str(count),
                      "crc32": "%08x" % zlib.crc32(data)}, (command, values)
    return data


def blk_read(g, disk, lba, count):
    """Runs `blk read`; checks the dump's offsets and that the crc32 covers
    the dumped bytes; returns (crc32, dumped bytes)."""
    command = "blk read %s %d %d" % (disk, lba, count)
    lines = run(g, command)
    assert lines and lines[-1].startswith("blkread "), "%r: %r" % (command, lines[-3:])
    values = harness.parse_values(lines[-1])
    assert (values["disk"], values["lba"], values["count"]) == (disk, str(lba), str(count)), \
        (command, lines[-1])
    dump = bytearray()
    for index, line in enumerate(lines[:-1]):
        m = re.fullmatch(r"([0-9a-f]{8})  ((?:[0-9a-f]{2} ){15}[0-9a-f]{2})", line)
        assert m, "%r: bad dump line %d: %r" % (command, index, line)
        assert int(m.group(1), 16) == lba * SECTOR + 16 * index, (command, line)
        dump += bytes.fromhex(m.group(2))
    assert len(dump) == min(count, 8) * SECTOR, (
        "%r: dumped %d bytes, expected the first %d sectors" % (command, len(dump), min(count, 8)))
    crc = int(values["crc32"], 16)
    if count <= 8:
        assert crc == zlib.crc32(dump), "%r: crc32 does not match the dump" % command
    return crc, bytes(dump)


def read_matches(g, disk, lba, data):
    count = len(data) // SECTOR
    crc, dump = blk_read(g, disk, lba, count)
    assert dump == data[:len(dump)], (
        "blk read %s %d %d: the dump differs from what the host has (first bad byte %d)"
        % (disk, lba, count, next(i for i in range(len(dump)) if dump[i] != data[i])))
    assert crc == zlib.crc32(data), "blk read %s %d %d: crc32 %08x, host's %08x" % (
        disk, lba, count, crc, zlib.crc32(data))


def virtio_state(g):
    """{pci address: {'values': virtio line, 'queues': [virtqueue lines]}}."""
    by_index, by_address = {}, {}
    for line in run(g, "virtio"):
        word = line.split()[0] if line.split() else ""
        values = harness.parse_values(line)
        if word == "virtio":
            entry = {"values": values, "queues": [], "line": line}
            by_index[values["dev"]] = entry
            by_address[values["pci"]] = entry
        elif word == "virtqueue":
            assert values["dev"] in by_index, "virtqueue before its device: %r" % line
            by_index[values["dev"]]["queues"].append(values)
        else:
            raise AssertionError("unexpected line from `virtio`: %r" % line)
    return by_address


def blk_state(g):
    disks = {}
    for line in run(g, "blk"):
        assert line.startswith("blk "), "unexpected line from `blk`: %r" % line
        values = harness.parse_values(line)
        disks[values["disk"]] = values
    return disks


def pci_state(g):
    functions = {}
    for line in run(g, "pci"):
        words = line.split()
        assert words[:1] == ["pci"], "unexpected line from `pci`: %r" % line
        functions[words[1]] = harness.parse_values(line)
    return functions


def bars_of(values):
    """{index: (kind, address, size)} from a `pci` line's values."""
    return harness.pci_bars(values)


def qmp_pci(g):
    """{'bb:dd.f': {'vendor', 'device', 'bars'}} from QMP query-pci (bus 0)."""
    found = {}
    for bus in g.qmp("query-pci"):
        for d in bus["devices"]:
            bars = {}
            for region in d.get("regions", []):
                kind = "io" if region["type"] == "io" else (
                    "mem64" if region.get("mem_type_64") else "mem")
                bars[region["bar"]] = (kind, region["address"], region["size"])
            found["%02x:%02x.%x" % (bus["bus"], d["slot"], d["function"])] = {
                "vendor": "%04x" % d["id"]["vendor"], "device": "%04x" % d["id"]["device"],
                "bars": bars}
    return found


def queue_of(entry, what):
    assert len(entry["queues"]) == 1, "%s: expected one virtqueue, got %r" % (what, entry)
    return entry["queues"][0]


def check_queue_sane(queue, what):
    for key in ("bad_id", "stale_id", "bad_length", "bad_index", "broken", "in_flight"):
        assert queue[key] == "0", "%s: %s=%s in %r" % (what, key, queue[key], queue)
    assert queue["added"] == queue["completed"], "%s: added != completed: %r" % (what, queue)


def counter_delta(before, after, key):
    return int(after[key]) - int(before[key])


def allocated_kib(g):
    return int(one_line(run(g, "mem")[:1], "mem ", "mem")["allocated_kib"])


# ---- transports x rings x interrupts, PCI against QMP, freeze/thaw/restore

MATRIX_IMAGE = 2 << 20    # 4096 sectors
HOST_LBA = 40             # a random 4 KiB block the host writes before boot
WRITE_LBAS = {"boot": 1000, "thaw": 2000, "restore": 3000}  # 16 sectors each


def matrix_disks(machine):
    """serial -> (device properties, expectations)."""
    # q35's INTx modern disk uses a split ring, pc's a packed one
    intx_packed = machine == "pc"
    return {
        "tr": ("", dict(legacy=True, modern=True, packed=False, intx=False)),
        "trp": ("packed=on", dict(legacy=True, modern=True, packed=True, intx=False)),
        "mod": ("disable-legacy=on", dict(legacy=False, modern=True, packed=False, intx=False)),
        "modp": ("disable-legacy=on,packed=on",
                 dict(legacy=False, modern=True, packed=True, intx=False)),
        # a legacy device's features are 32 bits: it never offers RING_PACKED
        "leg": ("disable-modern=on,packed=on",
                dict(legacy=True, modern=False, packed=False, intx=False)),
        # two INTx-only functions of one slot: INTA of one slot, one line
        # (slot 0x10: clear of the slots QEMU hands out by itself)
        "modi": ("disable-legacy=on,vectors=0,addr=0x10.0x0,multifunction=on"
                 + (",packed=on" if intx_packed else ""),
                 dict(legacy=False, modern=True, packed=intx_packed, intx=True)),
        "legi": ("disable-modern=on,vectors=0,addr=0x10.0x1",
                 dict(legacy=True, modern=False, packed=False, intx=True)),
    }


def disk_pattern(serial, phase):
    return zlib.crc32(("%s/%s" % (serial, phase)).encode()) | 0x01010101


def check_virtio_device(entry, expect, serial):
    values, what = entry["values"], "virtio line of %s: %s" % (serial, entry["line"])
    features = set(values["features"].split(","))
    assert values["type"] == "blk" and values["driver"] == "virtio-blk", what
    assert values["transport"] == ("modern" if expect["modern"] else "legacy"), what
    assert values["irq"] == ("intx" if expect["intx"] else "msix"), what
    assert values["queues"] == "1" and "error" not in values, what
    assert ("version_1" in features) == expect["modern"], what
    assert ("ring_packed" in features) == expect["packed"], what
    assert {"event_idx", "indirect_desc", "flush", "seg_max", "blk_size"} <= features, what
    assert "ro" not in features, what
    queue = queue_of(entry, serial)
    assert queue["index"] == "0" and queue["size"] == "256", (serial, queue)
    assert queue["layout"] == ("packed" if expect["packed"] else "split"), (serial, queue)
    assert queue["indirect_max"] == "128", (serial, queue)
    check_queue_sane(queue, serial)


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_transport_matrix(guest, machine, tmp_path):
    disks = matrix_disks(machine)
    images, args = {}, []
    for index, (serial, (props, _)) in enumerate(disks.items()):
        image = Image(tmp_path / ("%s.img" % serial), MATRIX_IMAGE)
        image.put(HOST_LBA, random_block(serial))
        images[serial] = image
        args += drive_args(index, image.path, serial, props)
    # no torpor-data, no torpor-swap: the ESP and these 7 fill the driver's 8 disks
    g = guest(machine=machine, qemu_args=args, options=["--no-data", "--no-swap"])
    g.wait_ready()

    # ---- enumeration: pci, virtio, blk, and QEMU's own view (QMP) ----
    pci = pci_state(g)
    assert (pci["00:00.0"]["vendor"], pci["00:00.0"]["device"]) == HOST_BRIDGE[machine], \
        pci["00:00.0"]
    qemu = qmp_pci(g)
    assert set(pci) == set(qemu), "functions: guest %s, QEMU %s" % (sorted(pci), sorted(qemu))
    virtio_functions = [a for a, v in qemu.items() if v["vendor"] == "1af4"]
    blk_functions = [a for a in virtio_functions if qemu[a]["device"] in ("1001", "1042")]
    assert len(blk_functions) == 1 + len(disks), qemu
    for address in virtio_functions:
        got, want = pci[address], qemu[address]
        assert (got["vendor"], got["device"]) == (want["vendor"], want["device"]), address
        assert bars_of(got) == want["bars"], "%s: guest BARs %s, QMP %s" % (
            address, bars_of(got), want["bars"])
    for address in blk_functions:
        got = pci[address]
        assert got["class"] == "01.00.00" and got["driver"] == "virtio-blk", (address, got)

    blk = blk_state(g)
    assert set(blk) == {"torpor-esp"} | set(disks), sorted(blk)
    state = virtio_state(g)
    assert sorted(a for a, e in state.items() if e["values"]["type"] == "blk") == \
        sorted(blk_functions), sorted(state)
    address_of = {}
    for serial, (props, expect) in disks.items():
        disk = blk[serial]
        address_of[serial] = address = disk["pci"]
        assert (disk["serial"], disk["sectors"], disk["ro"], disk["flush"]) == \
            (serial, str(MATRIX_IMAGE // SECTOR), "0", "1"), disk
        f = pci[address]
        assert f["device"] == ("1001" if expect["legacy"] else "1042"), (serial, f)
        assert f["irq"] != "-", (serial, f)
        if expect["intx"]:
            assert f["msix"] == "0", (serial, f)
        else:
            assert int(f["msix"]) >= 2, (serial, f)
        kinds = {kind for kind, _, _ in bars_of(f).values()}
        assert ("io" in kinds) == expect["legacy"], (serial, "legacy I/O BAR", f)
        assert ("mem64" in kinds) == expect["modern"], (serial, "modern 64-bit BAR", f)
        check_virtio_device(state[address], expect, serial)
    # the two INTx functions of slot 0x10 really share one interrupt line
    assert (address_of["modi"], address_of["legi"]) == ("00:10.0", "00:10.1"), address_of
    assert pci["00:10.0"]["irq"] == pci["00:10.1"]["irq"], (pci["00:10.0"], pci["00:10.1"])

    def io_round(phase):
        """On every disk: read the host's block, write this phase's pattern
        (16 sectors), flush, read back its last sector; each is one request,
        and they get interrupts."""
        before = virtio_state(g)
        lba = WRITE_LBAS[phase]
        for serial in disks:
            read_matches(g, serial, HOST_LBA, random_block(serial))
            images[serial].expect(lba, blk_write(g, serial, lba, disk_pattern(serial, phase), 16))
            assert run(g, "blk flush %s" % serial) == ["blkflush disk=%s" % serial]
            read_matches(g, serial, lba + 15, pattern_bytes(disk_pattern(serial, phase), 1))
        after = virtio_state(g)
        for serial, (_, expect) in disks.items():
            address = address_of[serial]
            check_virtio_device(after[address], expect, serial)
            q0, q1 = queue_of(before[address], serial), queue_of(after[address], serial)
            assert counter_delta(q0, q1, "added") == 4, (phase, serial, q0, q1)
            assert counter_delta(before[address]["values"], after[address]["values"],
                                 "interrupts") >= 1, (phase, serial, "no interrupt", after[address])
        # flushed: the host sees every disk's data, and nothing else changed
        for serial, image in images.items():
            image.check("%s after the %s writes and flush" % (serial, phase))

    io_round("boot")

    # ---- freeze, then thaw; freeze, then restore ----
    for phase in ("thaw", "restore"):
        allocated = allocated_kib(g)
        assert run(g, "virtio freeze") == ["virtio freeze ok"]
        frozen = virtio_state(g)
        for address in blk_functions:
            assert frozen[address]["values"]["driver"] == "virtio-blk", frozen[address]["line"]
        for address, entry in frozen.items():
            if entry["values"]["driver"] == "-":
                continue
            assert entry["queues"] == [], "frozen device has queues: %r" % entry
            assert (entry["values"]["queues"], entry["values"]["irq"]) == ("0", "-"), \
                "frozen: %s" % entry["line"]
        for name, disk in blk_state(g).items():
            assert disk.get("frozen") == "1", "blk line of frozen %s: %r" % (name, disk)
        for serial in disks:
            expect_error(g, "blk read %s %d 1" % (serial, HOST_LBA),
                         "blk: read %s:" % serial, "the disk is frozen")
        expect_error(g, "blk write tr %d 0x1 1" % WRITE_LBAS[phase], "the disk is frozen")
        expect_error(g, "blk flush tr", "the disk is frozen")
        # still bound, still where QEMU has it
        pci_frozen = pci_state(g)
        for serial in disks:
            assert pci_frozen[address_of[serial]]["driver"] == "virtio-blk", serial
        assert set(qmp_pci(g)) == set(pci)

        assert run(g, "virtio " + phase) == ["virtio %s ok" % phase]
        resumed = blk_state(g)
        for name, disk in resumed.items():
            assert "frozen" not in disk, "after %s: %r" % (phase, disk)
        # the queues were given back on freeze and taken again: no leak
        assert allocated_kib(g) == allocated, "allocated_kib before freeze %d, after %s %d" % (
            allocated, phase, allocated_kib(g))
        io_round(phase)

    # ---- after QEMU exits the files hold exactly what was written ----
    g.send("poweroff\r")
    assert g.wait_exit(timeout=60) == 0, g.tail()
    for serial, image in images.items():
        image.check("%s after poweroff" % serial)


# ---- ring features off, and 16-entry rings that wrap ---------------------

RING_IMAGE = 8 << 20
RING_DISKS = {
    # serial: (properties, layout, size, indirect_max, max_segments, depth)
    "pnf": ("packed=on,event_idx=off,indirect_desc=off", "packed", 256, 0, 126, 64),
    "snf": ("disable-legacy=on,event_idx=off,indirect_desc=off", "split", 256, 0, 126, 64),
    # without indirect tables a request takes 3 descriptors: 16 hold 5
    "pnf16": ("packed=on,event_idx=off,indirect_desc=off,queue-size=16", "packed", 16, 0, 14, 8),
    "snf16": ("event_idx=off,indirect_desc=off,queue-size=16", "split", 16, 0, 14, 8),
    # event_idx and indirect on, packed, small: event offsets cross the wrap
    "pe16": ("packed=on,queue-size=16", "packed", 16, 128, 14, 16),
    "le16": ("disable-modern=on,event_idx=off,indirect_desc=off,queue-size=16",
             "split", 16, 0, 14, 8),
}
ROUNDS = 8


def test_ring_features_and_wrap(guest, tmp_path):
    images, args = {}, []
    for index, (serial, spec) in enumerate(RING_DISKS.items()):
        images[serial] = Image(tmp_path / ("%s.img" % serial), RING_IMAGE)
        args += drive_args(index, images[serial].path, serial, spec[0])
    g = guest(qemu_args=args, options=["--no-data"])
    g.wait_ready()

    blk = blk_state(g)
    before = virtio_state(g)
    for serial, (props, layout, size, indirect_max, max_segments, depth) in RING_DISKS.items():
        disk = blk[serial]
        assert (disk["max_segments"], disk["depth"]) == (str(max_segments), str(depth)), disk
        entry = before[disk["pci"]]
        features = set(entry["values"]["features"].split(","))
        off = "event_idx=off" in props
        assert ("event_idx" in features) != off, entry["line"]
        assert ("indirect_desc" in features) != off, entry["line"]
        assert ("ring_packed" in features) == (layout == "packed"), entry["line"]
        assert ("version_1" in features) == ("disable-modern" not in props), entry["line"]
        queue = queue_of(entry, serial)
        assert (queue["layout"], queue["size"], queue["indirect_max"]) == \
            (layout, str(size), str(indirect_max)), (serial, queue)

    for serial, image in images.items():
        # the benchmark keeps the queue full (1 MiB requests); 4 MiB of 0xa5
        values = one_line(run(g, "blk bench %s 4" % serial), "blkbench ", serial)
        assert int(values["write_mibps"]) > 0 and int(values["read_mibps"]) > 0, values
        image.expect(0, b"\xa5" * (4 << 20))
        # then multi-sector round trips at odd places, many laps of a small ring
        for i in range(ROUNDS):
            lba = 8193 + 37 * i
            pattern = disk_pattern(serial, i)
            image.expect(lba, blk_write(g, serial, lba, pattern, 3))
            read_matches(g, serial, lba, pattern_bytes(pattern, 3))
        assert run(g, "blk flush %s" % serial) == ["blkflush disk=%s" % serial]

    after = virtio_state(g)
    for serial, image in images.items():
        address = blk[serial]["pci"]
        q0, q1 = queue_of(before[address], serial), queue_of(after[address], serial)
        check_queue_sane(q1, serial)
        # bench: 4 writes, a flush, 4 reads; then 2 per round; a flush
        assert counter_delta(q0, q1, "added") == 9 + 2 * ROUNDS + 1, (serial, q0, q1)
        image.check(serial)


# ---- read-only disks, device errors (blkdebug) -----------------------

ERROR_IMAGE = 2 << 20
WRITE_FAULT, READ_FAULT = 100, 200


def test_read_only_and_device_errors(guest, tmp_path):
    ro = Image(tmp_path / "ro.img", ERROR_IMAGE)
    ro.put(HOST_LBA, random_block("ro"))
    bad = Image(tmp_path / "bad.img", ERROR_IMAGE)
    bad.put(HOST_LBA, random_block("bad"))
    rules = tmp_path / "blkdebug.conf"
    rules.write_text(
        '[inject-error]\nevent = "write_aio"\niotype = "write"\nerrno = "5"\n'
        'sector = "%d"\nonce = "on"\n\n'
        '[inject-error]\nevent = "read_aio"\niotype = "read"\nerrno = "5"\n'
        'sector = "%d"\nonce = "on"\n' % (WRITE_FAULT, READ_FAULT))
    args = drive_args(0, ro.path, "ro", drive_options=",readonly=on")
    args += drive_args(1, "blkdebug:%s:%s" % (rules, bad.path), "bad",
                       drive_options=",werror=report,rerror=report")
    g = guest(machine="pc", qemu_args=args, options=["--no-data"])
    g.wait_ready()
    g.connect_qmp()  # before the errors, so their events reach us

    # ---- read-only: the ESP and a readonly=on drive ----
    blk = blk_state(g)
    state = virtio_state(g)
    for name, lba in (("torpor-esp", 0), ("ro", HOST_LBA)):
        assert blk[name]["ro"] == "1", blk[name]
        entry = state[blk[name]["pci"]]
        assert "ro" in entry["values"]["features"].split(","), entry["line"]
        added = queue_of(entry, name)["added"]
        line = expect_error(g, "blk write %s %d 0xdeadbeef 2" % (name, lba),
                            "error: blk: write %s:" % name, "read-only", "sector=%d" % lba)
        assert line == "error: blk: write %s: the disk is read-only sector=%d" % (name, lba)
        # refused by the driver: the device never saw a request
        assert queue_of(virtio_state(g)[blk[name]["pci"]], name)["added"] == added
    read_matches(g, "ro", HOST_LBA, random_block("ro"))
    with open(os.path.join(harness.REPO, "build", "esp.img"), "rb") as f:
        esp_sector0 = f.read(SECTOR)
    assert esp_sector0[510:] == b"\x55\xaa"
    read_matches(g, "torpor-esp", 0, esp_sector0)
    blk_after = blk_state(g)
    assert (blk_after["ro"]["writes"], blk_after["ro"]["errors"]) == ("0", "0"), blk_after["ro"]
    ro.check("read-only image")

    # ---- injected device errors: reported once, then the disk works ----
    first = blk_write(g, "bad", 0, 0x600d600d, 8)      # sectors 0-7: no fault
    bad.expect(0, first)
    pattern = 0x0badf00d
    expect_error(g, "blk write bad %d 0x%x 8" % (WRITE_FAULT - 4, pattern),
                 "error: blk: write bad:", "I/O error reported by the device",
                 "sector=%d" % (WRITE_FAULT - 4))
    event = g.wait_event("BLOCK_IO_ERROR", timeout=10)
    assert (event["data"]["operation"], event["data"]["action"]) == ("write", "report"), event
    assert blk_state(g)["bad"]["errors"] == "1"
    bad.check("after the failed write")    # nothing of it reached the file
    bad.expect(WRITE_FAULT - 4, blk_write(g, "bad", WRITE_FAULT - 4, pattern, 8))
    read_matches(g, "bad", WRITE_FAULT - 4, pattern_bytes(pattern, 8))

    expect_error(g, "blk read bad %d 8" % (READ_FAULT - 4),
                 "error: blk: read bad:", "I/O error reported by the device",
                 "sector=%d" % (READ_FAULT - 4))
    event = g.wait_event("BLOCK_IO_ERROR", timeout=10)
    assert (event["data"]["operation"], event["data"]["action"]) == ("read", "report"), event
    read_matches(g, "bad", READ_FAULT - 4, bytes(8 * SECTOR))
    read_matches(g, "bad", HOST_LBA, random_block("bad"))
    assert run(g, "blk flush bad") == ["blkflush disk=bad"]

    disk = blk_state(g)["bad"]
    # the counters count requests, failed ones too
    assert (disk["writes"], disk["reads"], disk["flushes"], disk["errors"]) == \
        ("3", "4", "1", "2"), disk
    entry = virtio_state(g)[disk["pci"]]
    check_queue_sane(queue_of(entry, "bad"), "bad")
    bad.check("after the retries")


# ---- the benchmark, 1 MiB transfers, the end of the disk -------------

DATA_SECTORS = 131072  # run-qemu.sh's 64 MiB data disk
MIB_SECTORS = 2048


def test_bench_and_large_transfers(guest, tmp_path):
    data = Image(tmp_path / "data.img", DATA_SECTORS * SECTOR)
    tail_lba = DATA_SECTORS - 8
    data.put(tail_lba, random_block("tail"))
    g = guest(options=["--data", data.path])
    g.wait_ready()

    disk = blk_state(g)["torpor-data"]
    assert (disk["sectors"], disk["mib"], disk["ro"], disk["depth"]) == \
        (str(DATA_SECTORS), "64", "0", "64"), disk
    address = disk["pci"]

    # the last sectors, and one past them
    read_matches(g, "torpor-data", tail_lba, random_block("tail"))
    expect_error(g, "blk read torpor-data %d 2" % (DATA_SECTORS - 1),
                 "beyond the end of the disk", "sector=%d" % (DATA_SECTORS - 1))
    expect_error(g, "blk write torpor-data %d 0x1 1" % DATA_SECTORS,
                 "beyond the end of the disk", "sector=%d" % DATA_SECTORS)
    expect_error(g, "blk read torpor-data 0 %d" % (MIB_SECTORS + 1), "count must be 1 to 2048")

    # ---- 1 MiB in one command is one request (1 MiB is the request limit) ----
    q0 = queue_of(virtio_state(g)[address], "torpor-data")
    mib = blk_write(g, "torpor-data", 0, 0x5a5a5a5a, MIB_SECTORS)
    assert zlib.crc32(mib) == zlib.crc32(b"\x5a" * (1 << 20))
    data.expect(0, mib)
    q1 = queue_of(virtio_state(g)[address], "torpor-data")
    assert counter_delta(q0, q1, "added") == 1, (q0, q1)
    read_matches(g, "torpor-data", 0, mib)  # the dump: 8 sectors, all 5a
    q2 = queue_of(virtio_state(g)[address], "torpor-data")
    assert counter_delta(q1, q2, "added") == 1, (q1, q2)
    # at an odd sector, ending 3 sectors before the host's tail block
    odd_lba = tail_lba - MIB_SECTORS - 3
    data.expect(odd_lba, blk_write(g, "torpor-data", odd_lba, 0x01234567, MIB_SECTORS))
    read_matches(g, "torpor-data", odd_lba, pattern_bytes(0x01234567, MIB_SECTORS))
    assert run(g, "blk flush torpor-data") == ["blkflush disk=torpor-data"]
    data.check("after the 1 MiB writes")

    # ---- the benchmark: 16 x 1 MiB writes queued together, flush, reads ----
    before = virtio_state(g)[address]
    counts = blk_state(g)["torpor-data"]
    values = one_line(run(g, "blk bench torpor-data 16", timeout=120), "blkbench ", "bench")
    assert values["disk"] == "torpor-data" and values["mib"] == "16", values
    assert int(values["write_mibps"]) > 0 and int(values["read_mibps"]) > 0, values
    assert int(values["write_ms"]) >= 0 and int(values["read_ms"]) >= 0, values
    after = virtio_state(g)[address]
    qb, qa = queue_of(before, "torpor-data"), queue_of(after, "torpor-data")
    check_queue_sane(qa, "torpor-data")
    requests = counter_delta(qb, qa, "added")
    assert requests == 16 + 1 + 16, (qb, qa)
    done = blk_state(g)["torpor-data"]
    assert [counter_delta(counts, done, k) for k in ("writes", "flushes", "reads", "errors")] \
        == [16, 1, 16, 0], (counts, done)
    # the requests were outstanding together: with event_idx the device
    # asks for fewer notifications, or interrupts cover several completions
    kicks = counter_delta(qb, qa, "kicks")
    interrupts = counter_delta(before["values"], after["values"], "interrupts")
    assert kicks < requests or interrupts < requests, (kicks, interrupts, qb, qa)
    data.expect(0, b"\xa5" * (16 << 20))
    data.check("after blk bench 16")

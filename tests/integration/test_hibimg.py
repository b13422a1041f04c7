"""tools/hibimg (build/hibimg) against hibernation images built here with
`struct` (no QEMU): valid images; a flipped byte in the header, the index
and the data; truncated, resized, empty and garbage files; images of format
version 1; every state, and `set` re-arming only what checks out. hibimg
must say the right reason with the right exit status for each, and never
crash.
"""

import os
import random
import re
import struct
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HIBIMG = os.path.join(REPO, "build", "hibimg")

# pm/image_format.h
MAGIC = 0x4E52425450524F54  # "TORPTBRN"
VERSION = 3
PAGE = 4096
SECTOR = 512
MAX_RANGES = 64
STATE_EMPTY, STATE_VALID, STATE_RESUMING, STATE_USED, STATE_SKIPPED = 0, 1, 2, 3, 4
ENTRY_ZERO = 1
ENTRY_FLAG_BITS = 12
MASK = (1 << 64) - 1

BUILD_ID = 0x1BADB002C0FFEE11
IMAGE_BASE = 0x1E268000
SERIAL = b"torpor-swap"

P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, bits):
    return ((x << bits) | (x >> (64 - bits))) & MASK


def _round(lane, word):
    return _rotl((lane + word * P2) & MASK, 31) * P1 & MASK


def checksum(data: bytes, seed=0) -> int:
    """image_checksum (pm/image.c): XXH64 of the bytes with seed 0, as the
    xxHash specification defines it (lib/hash.c is the C of it)."""
    n, at = len(data), 0
    if n >= 32:
        lanes = [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed, (seed - P1) & MASK]
        words = struct.unpack_from("<%dQ" % (n // 32 * 4), data)
        for i in range(0, len(words), 4):
            lanes = [_round(lanes[k], words[i + k]) for k in range(4)]
        at = n // 32 * 32
        h = (_rotl(lanes[0], 1) + _rotl(lanes[1], 7) + _rotl(lanes[2], 12) + _rotl(lanes[3], 18)) & MASK
        for lane in lanes:
            h = ((h ^ _round(0, lane)) * P1 + P4) & MASK
    else:
        h = (seed + P5) & MASK
    h = (h + n) & MASK
    while at + 8 <= n:
        h = (_rotl(h ^ _round(0, struct.unpack_from("<Q", data, at)[0]), 27) * P1 + P4) & MASK
        at += 8
    if at + 4 <= n:
        h = (_rotl(h ^ (struct.unpack_from("<I", data, at)[0] * P1 & MASK), 23) * P2 + P3) & MASK
        at += 4
    for byte in data[at:]:
        h = _rotl(h ^ (byte * P5 & MASK), 11) * P1 & MASK
    h = (h ^ (h >> 33)) * P2 & MASK
    h = (h ^ (h >> 29)) * P3 & MASK
    return h ^ (h >> 32)


def checksum_version1(data: bytes) -> int:
    """The checksum of format version 1: xor then multiply, word by word."""
    total = 0xCBF29CE484222325
    for (word,) in struct.iter_unpack("<Q", data):
        total = ((total ^ word) * 0x100000001B3) & MASK
    return total ^ len(data)


# struct image_header of pm/image_format.h, field by field, little-endian,
# with no padding: sizeof(struct image_header) == 1888. Keep in step with
# pm/image_format.h; pack_header is the only place that knows the layout.
HEADER_FORMAT = (
    "<QIIQ"              # magic version state header_checksum (offset 16)
    + "QQQII"            # build_id image_base ram_bytes range_count flags
    + "%dQ" % (2 * MAX_RANGES)  # ranges[64]: base, pages (offset 56)
    + "7Q"               # page_count zero_pages data_pages index_sector data_sector
                         # index_checksum written_ns
    + "Q20sI"            # disk_sectors (offset 1136), disk_serial[20], reserved
    + "13Q4H2Q512s"      # cpu (offset 1168): rip rsp rbx rbp r12-r15 rflags cr0 cr3 cr4
                         # efer, gdt_limit idt_limit reserved[2], gdt_base idt_base, fxsave
    + "16sQ16s16s16sQ"   # key_chain (offset 1808) key_counter nonce index_tag header_tag
                         # reserved_end: all zero in a plain image
)
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)
HEADER_CHECKSUM_OFFSET = 16
assert HEADER_SIZE == 1888
ENTRY_FORMAT = "<QQ8x"  # pfn_and_flags, checksum (a plain image's), 8 zero bytes of the tag
ENTRY_SIZE = struct.calcsize(ENTRY_FORMAT)
assert ENTRY_SIZE == 24


def pack_header(magic=MAGIC, version=VERSION, state=STATE_VALID, build_id=BUILD_ID,
                image_base=IMAGE_BASE, ram_bytes=0, ranges=(), range_count=None,
                flags=0, page_count=0, zero_pages=0, data_pages=None, index_sector=None,
                data_sector=None, index_checksum=0, written_ns=0, disk_sectors=0,
                disk_serial=SERIAL, header_checksum=None):
    """The header page (4 KiB, zero after the struct). Sector fields default
    to what image_layout makes; header_checksum=None seals it as image_seal
    does (the checksum of the struct with that field 0)."""
    if data_pages is None:
        data_pages = page_count - zero_pages
    if index_sector is None:
        index_sector = PAGE // SECTOR
    if data_sector is None:
        data_sector = PAGE // SECTOR + index_bytes(page_count) // SECTOR
    if range_count is None:
        range_count = len(ranges)
    flat = []
    for i in range(MAX_RANGES):
        flat += ranges[i] if i < len(ranges) else (0, 0)
    cpu = [0xFFFFFFFF81000000, 0x7FF000] + [0] * 7 + [0x80000011, 0x1000, 0x20, 0xD01]
    cpu += [0x37, 0xFFF, 0, 0, 0x9000, 0xA000, bytes(range(256)) * 2]
    fields = [build_id, image_base, ram_bytes, range_count, flags,
              *flat, page_count, zero_pages, data_pages & MASK, index_sector, data_sector,
              index_checksum, written_ns, disk_sectors, disk_serial, 0, *cpu,
              bytes(16), 0, bytes(16), bytes(16), bytes(16), 0]
    header = struct.pack(HEADER_FORMAT, magic, version, state, 0, *fields)
    if header_checksum is None:
        header_checksum = checksum(header)
    header = struct.pack(HEADER_FORMAT, magic, version, state, header_checksum, *fields)
    return header + bytes(PAGE - HEADER_SIZE)


def index_bytes(count):
    """image_index_bytes: 24-byte entries, rounded up to whole pages."""
    return (count * ENTRY_SIZE + PAGE - 1) // PAGE * PAGE


def page_data(pfn):
    """A saved page's contents: zero pages for pfn % 5 == 0, else bytes from pfn."""
    if pfn % 5 == 0:
        return bytes(PAGE)
    return random.Random(pfn).randbytes(PAGE)


class Image:
    """An image as the writer lays it out: the header page, the index
    (entries sorted by pfn, zero pages flagged with checksum 0 and no data),
    then the data of every other page in index order; `spare` bytes of disk
    after it. The header records the disk as exactly that size (serial
    torpor-swap) unless disk_sectors= says otherwise."""

    def __init__(self, pfns, ranges, state=STATE_VALID, written_ns=1_234_567_890,
                 entries=None, spare=0, **header):
        self.pfns = sorted(pfns)
        self.pages = [page_data(pfn) for pfn in self.pfns]
        self.zero = [not any(page) for page in self.pages]
        if entries is None:
            entries = [(pfn << ENTRY_FLAG_BITS | (ENTRY_ZERO if zero else 0),
                        0 if zero else checksum(page))
                       for pfn, page, zero in zip(self.pfns, self.pages, self.zero)]
        self.entries = entries
        index = b"".join(struct.pack(ENTRY_FORMAT, *entry) for entry in entries)
        self.count = len(entries)
        self.zero_pages = sum(self.zero)
        self.data_pages = self.count - self.zero_pages
        ram_bytes = sum(pages for _, pages in ranges) * PAGE
        self.index_offset = PAGE
        self.data_offset = PAGE + index_bytes(self.count)
        data = b"".join(page for page, zero in zip(self.pages, self.zero) if not zero)
        self.bytes = self.data_offset + len(data)
        fields = dict(state=state, ram_bytes=ram_bytes, ranges=ranges, page_count=self.count,
                      zero_pages=self.zero_pages, index_checksum=checksum(index),
                      written_ns=written_ns, disk_sectors=(self.bytes + spare) // SECTOR)
        fields.update(header)
        self.disk_sectors = fields["disk_sectors"]
        self.header = pack_header(**fields)
        self.disk = (self.header + index + bytes(index_bytes(self.count) - len(index))
                     + data + bytes(spare))

    def data_offset_of(self, entry):
        """Where the data of index entry `entry` lies on the disk."""
        before = sum(1 for zero in self.zero[:entry] if not zero)
        return self.data_offset + before * PAGE


RANGES = [(0x100 * PAGE, 0x100), (0x400 * PAGE, 0x100)]  # 2 MiB of RAM
# 0x100-0x117 and 0x400-0x403: 28 pages, 5 of them zero (0x104, 0x109, ...)
PFNS = list(range(0x100, 0x118)) + list(range(0x400, 0x404))


def standard(**changes):
    return Image(PFNS, RANGES, **changes)


def write(tmp_path, data, name="disk.img"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def flipped(data, offset, mask=0x01):
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1:]


def run(*args):
    if not os.access(HIBIMG, os.X_OK):
        pytest.fail("%s is missing: run `make` first" % HIBIMG)
    result = subprocess.run([HIBIMG, *map(str, args)], capture_output=True, text=True,
                            timeout=60)
    assert "Sanitizer" not in result.stderr and "runtime error" not in result.stderr, \
        result.stderr
    assert result.returncode in (0, 1, 2), (result.returncode, result.stderr)
    return result


def lines(result):
    return result.stdout.splitlines()


def assert_one_complaint(result, status, *words):
    """A refusal or an error: that exit status and one line on stderr."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    complaint = result.stderr.splitlines()
    assert len(complaint) == 1, result.stderr
    assert complaint[0].startswith("hibimg: "), complaint
    for word in words:
        assert word in complaint[0], (word, complaint)


def info_line(image, state="valid"):
    return ("image state=%s version=3 pages=%d zero_pages=%d data_pages=%d bytes=%d "
            "build_id=%016x ram_mib=2 image_base=0x%x written_ms=1234 protection=plain "
            "disk_sectors=%d disk_serial=torpor-swap"
            % (state, image.count, image.zero_pages, image.data_pages, image.bytes,
               BUILD_ID, IMAGE_BASE, image.disk_sectors))


def test_checksum_known_answers():
    # the reference XXH64's answers (libxxhash 0.8.1)
    assert checksum(b"") == 0xEF46DB3751D8E999
    assert checksum(b"abc") == 0x44BC2CF5AD770999
    assert checksum(bytes(PAGE)) == 0xAC869B6F32D8BBDB
    assert checksum(bytes((7 * i + 3) & 0xFF for i in range(4096))) == 0x796398CD432797CC
    assert checksum(bytes((7 * i + 3) & 0xFF for i in range(100)), 0x746F72706F722D32) == \
        0x892137BBA14FC602
    assert HEADER_SIZE == 1888 and len(pack_header()) == PAGE


def test_info_valid_image(tmp_path):
    image = standard()
    assert (image.count, image.zero_pages, image.data_pages) == (28, 5, 23)
    result = run("info", write(tmp_path, image.disk))
    assert result.returncode == 0, result.stderr
    assert lines(result) == [info_line(image), "check=ok"]
    assert result.stderr == ""


def test_verify_valid_image(tmp_path):
    image = standard()
    result = run("verify", write(tmp_path, image.disk))
    assert result.returncode == 0, result.stderr
    assert lines(result) == [info_line(image), "check=ok", "verify ok pages=28"]
    assert result.stderr == ""


def test_disk_larger_than_the_image(tmp_path):
    image = standard(spare=1 << 20)
    assert run("verify", write(tmp_path, image.disk)).returncode == 0


def test_image_of_no_pages(tmp_path):
    image = Image([], RANGES)
    assert len(image.disk) == PAGE
    result = run("verify", write(tmp_path, image.disk))
    assert result.returncode == 0, result.stderr
    assert "pages=0 zero_pages=0 data_pages=0 bytes=4096 " in lines(result)[0]
    assert lines(result)[1:] == ["check=ok", "verify ok pages=0"]


def test_index_of_several_pages(tmp_path):
    # 0x100-0x1ff and 0x400-0x47f: 384 entries of 24 bytes, a three-page index
    pfns = list(range(0x100, 0x200)) + list(range(0x400, 0x480))
    image = Image(pfns, [(0x100 * PAGE, 0x100), (0x400 * PAGE, 0x100)])
    assert image.data_offset == 4 * PAGE
    path = write(tmp_path, image.disk)
    result = run("verify", path)
    assert result.returncode == 0, result.stderr
    assert lines(result)[-1] == "verify ok pages=384"
    last = run("page", path, "0x47f")
    assert last.returncode == 0, last.stderr
    assert parse_dump(last.stdout) == page_data(0x47F)


def parse_dump(text):
    data = b""
    for number, line in enumerate(text.splitlines()):
        assert re.fullmatch(r"[0-9a-f]{8}  [0-9a-f]{2}( [0-9a-f]{2}){15}", line), line
        assert int(line[:8], 16) == number * 16
        data += bytes.fromhex(line[10:])
    return data


def test_page_dump(tmp_path):
    image = standard()
    path = write(tmp_path, image.disk)
    for pfn in (0x101, 0x117, 0x400, 0x403):
        for spelling in ("0x%x" % pfn, "0X%X" % pfn, "%d" % pfn):
            result = run("page", path, spelling)
            assert result.returncode == 0, result.stderr
            assert len(lines(result)) == 256
            assert parse_dump(result.stdout) == page_data(pfn), spelling


def test_page_zero(tmp_path):
    path = write(tmp_path, standard().disk)
    result = run("page", path, "0x109")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "page pfn=0x109 zero=1\n"


def test_page_not_in_image(tmp_path):
    path = write(tmp_path, standard().disk)
    for pfn in ("0x118", "0xff", "0", "0x3ff", "0x404", "0xfffffffffffff", "99999999999"):
        result = run("page", path, pfn)
        assert_one_complaint(result, 1, "not in the image")
        assert result.stdout == ""


def test_page_bad_pfn(tmp_path):
    path = write(tmp_path, standard().disk)
    for pfn in ("", "abc", "0x", "-1", "+5", " 5", "12z", "0x0x10", "0x1g",
                "99999999999999999999999"):
        result = run("page", path, pfn)
        assert_one_complaint(result, 2, "PFN")


def test_flipped_header_byte(tmp_path):
    image = standard()
    # the checksum itself, build_id, ram_bytes, range_count, flags, a range,
    # page_count, data_sector, index_checksum, written_ns, disk_sectors,
    # disk_serial, reserved, cpu, fxsave, the last byte
    for offset in (16, 23, 24, 41, 48, 52, 56, 64, 1080, 1112, 1120, 1128, 1136, 1150, 1164,
                   1168, 1500, 1807):
        path = write(tmp_path, flipped(image.disk, offset))
        info = run("info", path)
        assert_one_complaint(info, 1, "bad-header-checksum")
        assert lines(info)[-1] == "check=bad-header-checksum", offset
        verify = run("verify", path)
        assert verify.returncode == 1
        assert lines(verify)[-2:] == ["check=bad-header-checksum",
                                      "verify FAIL reason=bad-header-checksum"], offset
        assert_one_complaint(run("page", path, "0x101"), 1, "bad-header-checksum")
    bad_magic = run("info", write(tmp_path, flipped(image.disk, 3)))
    assert_one_complaint(bad_magic, 1, "bad-magic")
    assert lines(bad_magic) == ["check=bad-magic"]
    bad_version = run("verify", write(tmp_path, flipped(image.disk, 8, 0x02)))
    assert_one_complaint(bad_version, 1, "bad-version")
    assert lines(bad_version) == ["check=bad-version", "verify FAIL reason=bad-version"]


def test_flipped_index_byte(tmp_path):
    image = standard()
    for entry, byte in ((0, 0), (0, 1), (0, 8), (13, 15), (27, 6)):
        path = write(tmp_path, flipped(image.disk, image.index_offset + ENTRY_SIZE * entry + byte))
        info = run("info", path)
        assert_one_complaint(info, 1, "bad-index-checksum")
        assert lines(info) == [info_line(image), "check=bad-index-checksum"]
        verify = run("verify", path)
        assert verify.returncode == 1
        assert lines(verify)[-1] == "verify FAIL reason=bad-index-checksum"
    # the padding after the last entry is not part of the index
    padding = write(tmp_path, flipped(image.disk, image.index_offset + ENTRY_SIZE * 28 + 3))
    assert run("verify", padding).returncode == 0


def test_flipped_data_byte(tmp_path):
    image = standard()
    for entry in (0, 1, 5, 23, 27):  # 5 follows the zero page 0x104
        assert not image.zero[entry]
        for at in (0, 4095):
            path = write(tmp_path, flipped(image.disk, image.data_offset_of(entry) + at, 0x80))
            info = run("info", path)  # info reads no data
            assert info.returncode == 0 and lines(info)[-1] == "check=ok"
            verify = run("verify", path)
            assert_one_complaint(verify, 1, "checksum")
            assert lines(verify) == [
                info_line(image), "check=ok",
                "verify FAIL reason=bad-page-checksum page_index=%d pfn=0x%x"
                % (entry, image.pfns[entry])]
            dump = run("page", path, hex(image.pfns[entry]))
            assert_one_complaint(dump, 1, "bad-page-checksum")
            assert parse_dump(dump.stdout) == flipped(page_data(image.pfns[entry]), at, 0x80)


def test_truncated(tmp_path):
    image = standard()
    for length in (len(image.disk) - 1, image.data_offset + PAGE, image.data_offset,
                   image.index_offset + 100, PAGE):
        path = write(tmp_path, image.disk[:length])
        info = run("info", path)
        assert_one_complaint(info, 1, "image-beyond-disk")
        assert lines(info) == [info_line(image), "check=image-beyond-disk"], length
        verify = run("verify", path)
        assert_one_complaint(verify, 1, "image-beyond-disk")
        assert lines(verify)[-1] == "verify FAIL reason=image-beyond-disk"
    for length in (PAGE - 1, HEADER_SIZE, 100, 1, 0):
        path = write(tmp_path, image.disk[:length])
        for command in (["info", path], ["verify", path], ["page", path, "0x101"]):
            result = run(*command)
            assert_one_complaint(result, 1, "too short")
            assert result.stdout == ""


def test_empty_disk(tmp_path):
    path = write(tmp_path, bytes(1 << 20))
    info = run("info", path)
    assert_one_complaint(info, 1, "no-image")
    assert lines(info) == [
        "image state=empty version=0 pages=0 zero_pages=0 data_pages=0 bytes=0 "
        "build_id=0000000000000000 ram_mib=0 image_base=0x0 written_ms=0 protection=plain disk_sectors=0 "
        "disk_serial=-",
        "check=no-image"]
    verify = run("verify", path)
    assert_one_complaint(verify, 1, "no-image")
    assert lines(verify)[-1] == "verify FAIL reason=no-image"
    assert_one_complaint(run("page", path, "1"), 1, "no-image")


def test_garbage(tmp_path):
    rng = random.Random(5)
    for size in (PAGE, 10_000, 1 << 16):
        path = write(tmp_path, rng.randbytes(size))
        for command in ("info", "verify"):
            result = run(command, path)
            assert_one_complaint(result, 1, "bad-magic")
            assert lines(result)[0] == "check=bad-magic"
    # the right magic and version in front of garbage
    garbage = struct.pack("<QI", MAGIC, VERSION) + rng.randbytes(1 << 16)
    result = run("verify", write(tmp_path, garbage))
    assert_one_complaint(result, 1, "bad-header-checksum")
    # a valid header in front of a garbage index and data
    image = standard()
    path = write(tmp_path, image.header + rng.randbytes(len(image.disk) - PAGE))
    assert_one_complaint(run("verify", path), 1, "bad-index-checksum")


def test_page_count_too_large_for_the_disk(tmp_path):
    # sealed headers claiming huge indexes: refused from the header, never allocated
    for page_count, reason in ((1 << 40, "image-beyond-disk"),  # a 16 TiB index
                               (1 << 30, "image-beyond-disk"),
                               ((1 << 40) + 1, "bad-layout"),  # past the format's limit
                               (MASK, "bad-layout")):
        ranges = [(0x100 * PAGE, 1 << 40)]
        header = pack_header(ranges=ranges, ram_bytes=1 << 52, page_count=page_count,
                             zero_pages=page_count)
        path = write(tmp_path, header + bytes(1 << 16))
        for command in ("info", "verify"):
            result = run(command, path)
            assert_one_complaint(result, 1, reason)
            assert lines(result)[-1].endswith(reason), (page_count, lines(result))
        assert_one_complaint(run("page", path, "0x100"), 1, reason)


def test_index_larger_than_memory(tmp_path):
    # a sparse 1 TiB disk whose sealed header claims a 1 TiB index: not allocated
    entries = 1 << 36
    header = pack_header(ranges=[(0x100 * PAGE, 1 << 40)], ram_bytes=1 << 52,
                         page_count=entries, zero_pages=entries,
                         disk_sectors=(PAGE + entries * ENTRY_SIZE) // SECTOR)
    path = write(tmp_path, header)
    try:
        os.truncate(path, PAGE + entries * ENTRY_SIZE)
    except OSError as error:
        pytest.skip("no sparse 1 TiB file here: %s" % error)
    result = run("info", path)
    assert_one_complaint(result, 2, "index")
    assert result.stdout.startswith("image state=valid version=3 pages=%d " % entries)


def test_index_not_sorted(tmp_path):
    image = standard()
    entries = list(image.entries)
    entries[3], entries[4] = entries[4], entries[3]
    swapped = Image(PFNS, RANGES, entries=entries)
    result = run("verify", write(tmp_path, swapped.disk))
    assert_one_complaint(result, 1, "index-not-sorted")
    assert lines(result)[-2:] == ["check=index-not-sorted", "verify FAIL reason=index-not-sorted"]


def test_page_outside_the_ranges(tmp_path):
    image = Image(PFNS, [(0x100 * PAGE, 0x100), (0x400 * PAGE, 3)])  # 0x403 is not RAM
    result = run("info", write(tmp_path, image.disk))
    assert_one_complaint(result, 1, "page-not-ram")


def test_used_and_resuming_images(tmp_path):
    for state, word, reason in ((STATE_USED, "used", "already-used"),
                                (STATE_RESUMING, "resuming", "earlier-resume-did-not-finish"),
                                (STATE_SKIPPED, "skipped", "skipped")):
        image = standard(state=state)
        path = write(tmp_path, image.disk)
        info = run("info", path)
        assert_one_complaint(info, 1, reason)
        assert lines(info) == [info_line(image, word), "check=" + reason]
        # kept for hibimg: the data can still be checked and read, but it is not resumable
        verify = run("verify", path)
        assert_one_complaint(verify, 1, reason)
        assert lines(verify) == [info_line(image, word), "check=" + reason,
                                 "verify ok pages=28"]
        dump = run("page", path, "0x102")
        assert dump.returncode == 0, dump.stderr
        assert parse_dump(dump.stdout) == page_data(0x102)
        damaged = write(tmp_path, flipped(image.disk, image.data_offset_of(2)), "damaged.img")
        assert lines(run("verify", damaged))[-1].startswith("verify FAIL reason=bad-page-checksum")


def test_usage_and_io_errors(tmp_path):
    path = write(tmp_path, standard().disk)
    for args in ([], ["info"], ["frob", path], ["info", path, "extra"], ["page", path]):
        result = run(*args)
        assert result.returncode == 2, args
        assert "usage" in result.stderr and result.stdout == ""
    help_text = run("--help")
    assert help_text.returncode == 0 and "usage" in help_text.stdout
    missing = run("info", str(tmp_path / "no-such.img"))
    assert_one_complaint(missing, 2, "No such file")
    directory = run("verify", str(tmp_path))
    assert directory.returncode in (1, 2)
    assert len(directory.stderr.splitlines()) == 1, directory.stderr


# ---- format version 1, the disk's identity, and `set` ---------------------

def as_version1(header: bytes) -> bytes:
    """A version 3 header page rewritten as a version 1 kernel wrote it:
    the 1792-byte header of that format (build_id at 16, no disk identity,
    cpu at 1136, checksum at 1776) sealed with the version 1 checksum."""
    old = bytearray(PAGE)
    old[:16] = header[:16]  # magic, version, state
    struct.pack_into("<I", old, 8, 1)  # version
    old[16:1128] = header[24:1136]  # build_id .. written_ns
    old[1136:1776] = header[1168:1808]  # cpu
    struct.pack_into("<Q", old, 1776, checksum_version1(bytes(old[:1792])))
    return bytes(old)


def version1_image():
    """A valid image as a version 1 kernel wrote it: its header, then an
    index and data like today's."""
    image = standard()
    return as_version1(image.header) + image.disk[PAGE:]


def test_version_1_image_is_refused(tmp_path):
    disk = version1_image()
    path = write(tmp_path, disk)
    for command in ("info", "verify"):
        result = run(command, path)
        assert_one_complaint(result, 1, "bad-version")
        assert lines(result)[0] == "check=bad-version", lines(result)
    assert_one_complaint(run("page", path, "0x101"), 1, "bad-version")
    refused = run("set", path, "state", "valid")
    assert_one_complaint(refused, 1, "bad-version")
    assert open(path, "rb").read() == disk


def test_image_of_another_disk_size_is_refused(tmp_path):
    # written to a disk 8 sectors larger than this file, or smaller (but still holding it)
    for recorded in (None, 8, -8):
        image = standard(spare=PAGE)
        sectors = image.disk_sectors + (recorded or 0)
        if recorded:
            image = standard(spare=PAGE, disk_sectors=sectors)
        path = write(tmp_path, image.disk)
        info = run("info", path)
        if recorded is None:
            assert info.returncode == 0, info.stderr
            continue
        assert_one_complaint(info, 1, "disk-changed")
        assert lines(info) == [info_line(image), "check=disk-changed"]
        assert "disk_sectors=%d " % sectors in lines(info)[0]
        verify = run("verify", path)
        assert_one_complaint(verify, 1, "disk-changed")
        assert lines(verify)[-1] == "verify FAIL reason=disk-changed"
    # the file grown after the image was written: another disk as well
    image = standard()
    path = write(tmp_path, image.disk + bytes(SECTOR))
    assert_one_complaint(run("info", path), 1, "disk-changed")
    # shrunk below the image: truncated, which says more
    path = write(tmp_path, image.disk[:-SECTOR])
    assert_one_complaint(run("info", path), 1, "image-beyond-disk")


def test_disk_serial_is_shown_as_one_word(tmp_path):
    for serial, shown in ((b"torpor-swap", "torpor-swap"), (b"", "-"),
                          (b"0123456789abcdefghij", "0123456789abcdefghij"),
                          (b"a b=c\\d\x01\xff", r"a\x20b\x3dc\x5cd\x01\xff")):
        image = standard(disk_serial=serial)
        result = run("info", write(tmp_path, image.disk))
        assert result.returncode == 0, result.stderr
        assert lines(result)[0].endswith(" disk_serial=" + shown), (serial, lines(result)[0])


def header_fields(disk):
    """The header page but state and header_checksum, which `set state` changes."""
    return disk[:12] + disk[24:PAGE]


@pytest.mark.parametrize("state", [STATE_USED, STATE_RESUMING, STATE_SKIPPED, STATE_VALID])
def test_set_state_valid_re_arms_a_sound_image(tmp_path, state):
    image = standard(state=state)
    path = write(tmp_path, image.disk)
    result = run("set", path, "state", "valid")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    after = open(path, "rb").read()
    assert after == standard().disk  # the image a valid one would be, byte for byte
    assert header_fields(after) == header_fields(image.disk)
    assert after[PAGE:] == image.disk[PAGE:]
    info = run("info", path)
    assert info.returncode == 0 and lines(info) == [info_line(image), "check=ok"]


REARM_REFUSALS = {
    # what is wrong with a used image, and the reason `set state valid` gives
    "header": (lambda image: flipped(image.disk, 1150), "bad-header-checksum"),
    "index": (lambda image: flipped(image.disk, image.index_offset + ENTRY_SIZE * 5 + 2), "bad-index-checksum"),
    "data": (lambda image: flipped(image.disk, image.data_offset_of(5) + 4000), "bad-page-checksum"),
    "truncated": (lambda image: image.disk[:image.data_offset + PAGE], "image-beyond-disk"),
    "grown": (lambda image: image.disk + bytes(PAGE), "disk-changed"),
    "layout": (lambda image: Image(PFNS, RANGES, state=STATE_USED, data_sector=99).disk, "bad-layout"),
    "magic": (lambda image: flipped(image.disk, 0), "bad-magic"),
    "empty": (lambda image: bytes(len(image.disk)), "no-image"),
}


@pytest.mark.parametrize("damage", sorted(REARM_REFUSALS))
def test_set_state_valid_refuses_what_does_not_check_out(tmp_path, damage):
    spoil, reason = REARM_REFUSALS[damage]
    disk = spoil(standard(state=STATE_USED))
    path = write(tmp_path, disk)
    result = run("set", path, "state", "valid")
    assert_one_complaint(result, 1, "not changed", reason)
    if damage == "data":
        assert "page 5 (pfn 0x105) is damaged" in result.stderr, result.stderr
    assert result.stdout == ""
    assert open(path, "rb").read() == disk  # nothing written


def test_set_rewrites_only_a_sound_header(tmp_path):
    image = standard()
    # a damaged header is never resealed, whatever the field
    damaged = flipped(image.disk, 1500)
    path = write(tmp_path, damaged)
    for args in (("state", "used"), ("state", "skipped"), ("build_id", "1234")):
        assert_one_complaint(run("set", path, *args), 1, "bad-header-checksum")
        assert open(path, "rb").read() == damaged
    # a sound one: skipped, then refused for it, then valid again
    path = write(tmp_path, image.disk)
    assert run("set", path, "state", "skipped").returncode == 0
    skipped = run("info", path)
    assert_one_complaint(skipped, 1, "skipped")
    assert lines(skipped) == [info_line(image, "skipped"), "check=skipped"]
    assert run("set", path, "build_id", "abc").returncode == 0
    assert "build_id=0000000000000abc " in lines(run("info", path))[0]
    # states and fields that are not
    for args in (("state", "empty"), ("state", "VALID"), ("state", "4"), ("disk_sectors", "8")):
        assert_one_complaint(run("set", path, *args), 2)

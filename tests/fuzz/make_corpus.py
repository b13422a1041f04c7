#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets to tests/fuzz/corpus/<target>/.

The seeds are committed; this script is how they were made (run it again
after changing an input format: `python3 tests/fuzz/make_corpus.py`).
Deterministic: the same files every time.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1

# ---- fuzz_image: a header page, then index entries (pm/image_format.h) ----

PAGE = 4096
HEADER_SIZE = 1808
IMAGE_MAGIC = 0x4E52425450524F54
IMAGE_VERSION = 2
STATE_VALID, STATE_RESUMING, STATE_USED, STATE_SKIPPED = 1, 2, 3, 4
CONTROL = PAGE - 16  # fuzz_image.c's control bytes
OWN, SEAL, FIX_INDEX, EXPECT_RANGES, BOOT_RAM, OWN_DISK = 1, 2, 4, 8, 16, 32
DISK_SECTORS = 128 << 10  # fuzz_image.c's fixed disk
SERIAL = b"torpor-swap"

P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def rotl(x, bits):
    return ((x << bits) | (x >> (64 - bits))) & MASK


def lane_round(lane, word):
    return rotl((lane + word * P2) & MASK, 31) * P1 & MASK


def checksum(data, seed=0):
    """image_checksum: XXH64 (lib/hash.c) of the bytes, seed 0."""
    n, at = len(data), 0
    if n >= 32:
        lanes = [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed, (seed - P1) & MASK]
        while at + 32 <= n:
            for k, (word,) in enumerate(struct.iter_unpack("<Q", data[at:at + 32])):
                lanes[k] = lane_round(lanes[k], word)
            at += 32
        h = (rotl(lanes[0], 1) + rotl(lanes[1], 7) + rotl(lanes[2], 12) + rotl(lanes[3], 18)) & MASK
        for lane in lanes:
            h = ((h ^ lane_round(0, lane)) * P1 + P4) & MASK
    else:
        h = (seed + P5) & MASK
    h = (h + n) & MASK
    while at + 8 <= n:
        h = (rotl(h ^ lane_round(0, struct.unpack_from("<Q", data, at)[0]), 27) * P1 + P4) & MASK
        at += 8
    if at + 4 <= n:
        h = (rotl(h ^ (struct.unpack_from("<I", data, at)[0] * P1 & MASK), 23) * P2 + P3) & MASK
        at += 4
    for byte in data[at:]:
        h = rotl(h ^ (byte * P5 & MASK), 11) * P1 & MASK
    h = (h ^ (h >> 33)) * P2 & MASK
    h = (h ^ (h >> 29)) * P3 & MASK
    return h ^ (h >> 32)


assert checksum(b"") == 0xEF46DB3751D8E999  # the reference XXH64's answers
assert checksum(b"abc") == 0x44BC2CF5AD770999
assert checksum(bytes(PAGE)) == 0xAC869B6F32D8BBDB


def image(entries, ranges, state=STATE_VALID, control=b"", seal=True, page_count=None,
          build_id=0x746F72706F722D31, ram_bytes=512 << 20, magic=IMAGE_MAGIC,
          version=IMAGE_VERSION, disk_sectors=DISK_SECTORS, serial=SERIAL):
    """entries: (pfn, zero) pairs. Returns the fuzz input bytes."""
    index = b"".join(struct.pack("<QQ", pfn << 12 | int(zero), 0 if zero else pfn * 0x9E3779B1 & MASK)
                     for pfn, zero in entries)
    count = len(entries) if page_count is None else page_count
    zero_pages = sum(1 for _, zero in entries if zero)
    index_bytes = (count * 16 + PAGE - 1) // PAGE * PAGE
    header = bytearray(PAGE)
    struct.pack_into("<QII", header, 0, magic, version, state)
    struct.pack_into("<QQQII", header, 24, build_id, 0x1000000, ram_bytes, len(ranges), 0)
    for i, (base, pages) in enumerate(ranges):
        struct.pack_into("<QQ", header, 56 + 16 * i, base, pages)
    struct.pack_into("<QQQQQQQ", header, 1080, count, zero_pages, count - zero_pages,
                     8, 8 + index_bytes // 512, checksum(index), 123456789)
    struct.pack_into("<Q20s", header, 1136, disk_sectors, serial)  # the disk it was written to
    if seal:  # header_checksum at 16, over the header with it 0
        struct.pack_into("<Q", header, 16, checksum(bytes(header[:HEADER_SIZE])))
    header[CONTROL:CONTROL + len(control)] = control
    return bytes(header) + index


def control(flags, spare_extra=0, free=()):
    """free: up to 4 (gap, pages) pairs for fuzz_image.c's made-up free ranges."""
    out = bytearray(16)
    out[0], out[1], out[2] = flags, spare_extra, len(free)
    for i, (gap, pages) in enumerate(free):
        out[3 + 2 * i], out[4 + 2 * i] = gap, pages - 1
    return bytes(out)


def image_seeds():
    ram = [(0x100000, 256), (0x400000, 512)]
    small = [(0x100, False), (0x101, True), (0x105, False)]
    spread = [(0x100 + 3 * i, i % 5 == 0) for i in range(60)] + [(0x400 + i, False) for i in range(40)]
    deep = control(OWN | EXPECT_RANGES | BOOT_RAM, 2, [(8, 4), (0, 16), (2, 40)])
    return {
        "empty": bytes(PAGE),
        "short-magic": struct.pack("<QI", IMAGE_MAGIC, 1),
        "valid-3-pages": image(small, ram, control=deep),
        "valid-fixed-expectation": image(small, ram, control=control(0)),
        "valid-100-pages": image(spread, ram, control=control(OWN | BOOT_RAM, 5, [(8, 64), (1, 64), (30, 64), (5, 64)])),
        "used": image(small, ram, state=STATE_USED, control=control(OWN, 1, [(8, 2)])),
        "resuming": image(small, ram, state=STATE_RESUMING, control=control(OWN | EXPECT_RANGES, 0, [(9, 3)])),
        "unsealed-fixed-by-control": image(small, ram, seal=False, control=control(OWN | SEAL | FIX_INDEX, 3, [(0, 64)])),
        "index-truncated": image(small, ram, page_count=9, control=deep),
        "no-pages": image([], ram, control=deep),
        "bad-magic": image(small, ram, magic=IMAGE_MAGIC ^ 1, control=deep),
        "skipped": image(small, ram, state=STATE_SKIPPED, control=control(OWN | OWN_DISK, 1, [(8, 3)])),
        "version-1": image(small, ram, version=1, control=deep),
        "own-disk": image(spread, ram, disk_sectors=1 << 30, serial=b"0123456789abcdefghij",
                          control=control(OWN | OWN_DISK | EXPECT_RANGES | BOOT_RAM, 4, [(8, 64), (2, 64)])),
        "other-disk": image(small, ram, serial=b"torpor-data", control=control(OWN | EXPECT_RANGES)),
    }


# ---- fuzz_line: bytes typed at the console ----

def line_seeds():
    return {
        "help": b"help\r\n",
        "numbers": b"mem 0x1000 4096 0X1fF 18446744073709551615 18446744073709551616\n",
        "hex-edges": b"0xffffffffffffffff 0x10000000000000000 0x 0 00 0x0\r",
        "editing": b"abc\x7f\x7fd\x08\x15xyz\x03ok\r\nnext line\n",
        "many-words": b"a\tb  c d e f g h i j k\n",
        "long-line": b"x" * 250 + b" 12\n",
        "control-bytes": bytes(range(0, 32)) + b"\x80\xff tail\r\r\n\n",
    }


# ---- fuzz_used_ring: a queue shape, then a script (fuzz_used_ring.c's OP_*) ----

ADD, FETCH, COMPLETE, COMPLETE_LIE, RAW_ENTRY, PUSH, RAW_INDEX, EVENT, GET, INTERRUPTS = range(10)
PACKED, EVENT_IDX = 1, 2


def indirect(choice):
    """index into fuzz_used_ring.c's indirect_choices (0,0,1,2,3,4,8,16)"""
    return choice << 2


def add(count, writable_mask, *lengths):
    assert len(lengths) == count
    return bytes([ADD, count - 1, writable_mask]) + bytes(lengths)


def in_flight_id(k):
    return bytes([2, k])  # pick_id: a chain in flight


def small_length(n):
    return bytes([n << 1])  # pick_length: small


def ring_seeds():
    seeds = {}
    # split, 8 entries, an honest device: add, fetch, complete in every order, take back
    seeds["split-honest"] = bytes([0, 3]) + add(2, 0b10, 16, 32) + add(3, 0b110, 8, 8, 8) + \
        add(1, 1, 64) + bytes([FETCH, COMPLETE, 0x12, GET, 7, COMPLETE, 0x21, GET, 7]) + \
        add(4, 0b1100, 1, 2, 3, 4) + bytes([FETCH, COMPLETE_LIE, 0, 1, 0xff, 0xff, 0xff, 0xff, GET, 3])
    # packed, 5 entries (wraps quickly), event_idx, indirect up to 4
    seeds["packed-honest-indirect"] = bytes([PACKED | EVENT_IDX | indirect(5), 4]) + \
        (add(3, 0b100, 10, 10, 10) + add(1, 1, 5) + bytes([INTERRUPTS, 2, FETCH, COMPLETE, 0x20, GET, 7])) * 6 + \
        bytes([EVENT, 0, 3, 0x80, INTERRUPTS, 0])
    # split, lying: an id in flight twice, an unknown id, then an index that runs ahead
    seeds["split-lying"] = bytes([EVENT_IDX, 2]) + add(2, 0b10, 4, 4) + add(1, 1, 8) + \
        bytes([PUSH]) + in_flight_id(0) + small_length(3) + bytes([PUSH]) + in_flight_id(0) + small_length(100) + \
        bytes([GET, 7, PUSH, 1, 200]) + small_length(0) + bytes([GET, 7]) + add(1, 1, 8) + \
        bytes([RAW_ENTRY, 1, 0]) + in_flight_id(1) + small_length(1) + bytes([RAW_INDEX, 0, 2, GET, 7])
    # packed, lying: used flags for the wrong lap, an id no longer in flight
    seeds["packed-lying"] = bytes([PACKED, 2]) + add(2, 0b10, 4, 4) + add(1, 0, 8) + \
        bytes([PUSH]) + in_flight_id(1) + small_length(2) + bytes([0]) + \
        bytes([GET, 1, PUSH]) + in_flight_id(0) + small_length(9) + bytes([1, GET, 1]) + \
        bytes([RAW_ENTRY, 1, 0, 0xff, 0xff]) + small_length(1) + bytes([0, GET, 3]) + \
        bytes([PUSH, 1, 1]) + small_length(1) + bytes([0, GET, 1])
    # split of 8 entries, indirect of 16: chains of 8 take one descriptor each
    seeds["split-indirect"] = bytes([indirect(7), 3]) + add(8, 0b11110000, *range(8)) + \
        bytes([FETCH, COMPLETE, 0, GET, 0]) + add(8, 0xff, *range(8)) + add(3, 0b100, 1, 1, 1) + \
        bytes([FETCH, COMPLETE, 0x80, GET, 0])
    # the largest queues: split and packed of 1024 entries (size bytes 0xf3, 0xff)
    seeds["split-1024"] = bytes([EVENT_IDX, 0xF3]) + (add(2, 0b10, 8, 8) + bytes([INTERRUPTS, 2])) * 20 + \
        bytes([FETCH, COMPLETE, 0x2F, GET, 7, COMPLETE, 0x0F, GET, 7])
    seeds["packed-1024"] = bytes([PACKED | indirect(7), 0xFF]) + add(8, 0b11000000, *range(8)) * 10 + \
        bytes([FETCH, COMPLETE, 0x25, GET, 7, PUSH]) + in_flight_id(0) + small_length(1) + bytes([0, GET, 7])
    return seeds


def main():
    for target, seeds in (("fuzz_image", image_seeds()), ("fuzz_line", line_seeds()),
                          ("fuzz_used_ring", ring_seeds())):
        directory = os.path.join(HERE, "corpus", target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()

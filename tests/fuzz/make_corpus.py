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
HEADER_SIZE = 1888
IMAGE_MAGIC = 0x4E52425450524F54
IMAGE_VERSION = 3
STATE_VALID, STATE_RESUMING, STATE_USED, STATE_SKIPPED = 1, 2, 3, 4
CONTROL = PAGE - 16  # fuzz_image.c's control bytes
OWN, SEAL, FIX_INDEX, EXPECT_RANGES, BOOT_RAM, OWN_DISK, AUTHENTICATE = 1, 2, 4, 8, 16, 32, 64
KEY_RIGHT, KEY_NONE, KEY_OTHER_CHAIN, KEY_NEWER, KEY_OTHER_SECRET = range(5)  # control[11]
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
    index = b"".join(struct.pack("<QQ8x", pfn << 12 | int(zero), 0 if zero else pfn * 0x9E3779B1 & MASK)
                     for pfn, zero in entries)
    count = len(entries) if page_count is None else page_count
    zero_pages = sum(1 for _, zero in entries if zero)
    index_bytes = (count * 24 + PAGE - 1) // PAGE * PAGE
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


def control(flags, spare_extra=0, free=(), key=KEY_RIGHT, image_number=0):
    """free: up to 4 (gap, pages) pairs for fuzz_image.c's made-up free ranges."""
    out = bytearray(16)
    out[0], out[1], out[2] = flags, spare_extra, len(free)
    out[11], out[12] = key, image_number
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
        # tagged by the harness under its key; data pages after the entries
        "authenticated": image(spread, ram, control=control(OWN | EXPECT_RANGES | BOOT_RAM | AUTHENTICATE,
                                                            2, [(8, 64), (2, 64)]))
        + bytes(range(256)) * 16 * 3,
        "authenticated-replayed": image(small, ram, control=control(OWN | AUTHENTICATE, key=KEY_NEWER)),
        "authenticated-other-secret": image(small, ram, control=control(OWN | AUTHENTICATE, key=KEY_OTHER_SECRET,
                                                                         image_number=5)),
        "authenticated-no-key": image(small, ram, control=control(OWN | AUTHENTICATE, key=KEY_NONE)),
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


# ---- fuzz_console_ports: three config bytes, then a script (fuzz_console_ports.c's OP_*) ----

(C_RAW, C_EVENT, C_NAME, C_DATA, C_COMPLETE, C_BAD_TOKEN, C_OPEN, C_CLOSE, C_READ, C_WRITE,
 C_FLUSH, C_RESET, C_FAIL_POST) = range(13)
DEVICE_READY, PORT_ADD, PORT_REMOVE, PORT_READY, CONSOLE_PORT, RESIZE, PORT_OPEN, PORT_NAME = range(8)
HONEST = 5  # pick_length: the true length


def event(port, kind, value=1):
    return bytes([C_EVENT, port, kind, value])


def name(port, which):
    """one of fuzz_console_ports.c's names (0: the guest agent's)"""
    return bytes([C_NAME, port, which, HONEST])


def raw_name(port, data, length_how=HONEST):
    return bytes([C_NAME, port, 0x80, len(data)]) + data + bytes([length_how])


def data(port, n):
    return bytes([C_DATA, port]) + struct.pack("<H", n) + bytes([HONEST])


def complete(which, count):
    return bytes([C_COMPLETE, which, count, 0])


def console_seeds():
    handshake = event(1, PORT_ADD) + event(2, PORT_ADD) + complete(1, 4) + name(1, 0) + \
        name(2, 1) + bytes([C_FLUSH]) + event(1, PORT_OPEN) + complete(1, 4)
    seeds = {}
    # QEMU's order, the agent opened before it appears, an echo, then a restore
    seeds["handshake-echo-restore"] = bytes([31, 3, 32, C_OPEN, 0]) + handshake + \
        data(1, 5) + bytes([C_READ, 0, 64, 0, C_WRITE, 0, 5, 0]) + complete(2, 2) + \
        bytes([C_RESET, 31, 3, 32]) + handshake + data(1, 512) + bytes([C_READ, 0, 16, 0])
    # the ring fills and wraps, held buffers drain in pieces
    seeds["ring-wrap"] = bytes([31, 2, 32, C_OPEN, 0]) + handshake + data(1, 512) * 14 + \
        bytes([C_READ, 0, 0xff, 0x03]) + data(1, 512) * 4 + bytes([C_READ, 0, 0x00, 0x10]) * 3
    # a device that lies: bad ids, duplicates, names without an end, short and long lengths
    seeds["lying"] = bytes([8, 4, 32, C_OPEN, 0]) + event(1, PORT_ADD) + event(1, PORT_ADD) + \
        event(0xf0, PORT_ADD) + event(9, PORT_OPEN) + event(3, PORT_READY) + \
        raw_name(1, b"x" * 128) + raw_name(1, b"bad\nname\x00") + raw_name(1, b"") + \
        raw_name(1, b"org.qemu.guest_agent.0\x00", 1) + \
        bytes([C_RAW, 0, 4, 1, 0, 0, 0, 4]) + bytes([C_RAW, 1, 12, 2, 0, 0, 0, 7, 0, 1, 0, 65, 66, 67, 0, 2]) + \
        bytes([C_BAD_TOKEN, 0, 2, 0x10, 0x00, 8, 0, 0, 0, C_BAD_TOKEN, 1, 4, 0, 0, 1, 0, 0, 0]) + \
        data(1, 100) + bytes([C_DATA, 1, 0, 2, 1]) + event(1, PORT_REMOVE) + event(1, PORT_REMOVE)
    # no room: post failures, a queue of three control buffers, busy transmit slots
    seeds["small-queues"] = bytes([31, 3, 3, C_FAIL_POST, 1, C_OPEN, 0, C_FAIL_POST, 0, C_FLUSH]) + \
        event(1, PORT_ADD) + event(2, PORT_ADD) + name(1, 0) + event(2, CONSOLE_PORT) + \
        bytes([C_FLUSH]) + complete(1, 1) + bytes([C_FLUSH]) + name(2, 1) + \
        bytes([C_OPEN, 1, C_CLOSE, 1]) * 20 + complete(1, 7) + bytes([C_FLUSH]) + complete(1, 7)
    return seeds


# ---- fuzz_agent: bytes from the host on the guest agent's port ----

def request(command, arguments=None, id=None):
    """one request as libvirt writes it (compact JSON, one line)"""
    text = '{"execute":"%s"' % command
    if arguments is not None:
        text += ',"arguments":' + arguments
    if id is not None:
        text += ',"id":' + id
    return (text + "}\n").encode("latin-1")  # \xNN in a name is that raw byte


def agent_seeds():
    every = b"".join(request(c) for c in (
        "guest-ping", "guest-info", "guest-get-time", "guest-set-time", "guest-get-osinfo",
        "guest-get-host-name", "guest-get-timezone", "guest-get-vcpus", "guest-get-memory-blocks",
        "guest-get-memory-block-info", "guest-suspend-disk"))
    return {
        "libvirt-session": request("guest-sync", '{"id":1796153527863}') + request("guest-info") +
        request("guest-get-time") + request("guest-set-time", '{"time":1796153527863814000}') +
        request("guest-ping") + request("guest-shutdown", '{"mode":"powerdown"}'),
        "sync-delimited": b"\xff" + request("guest-sync-delimited", '{"id":9223372036854775807}') +
        b'{"execute":"guest-sync","arguments":{"id":\xff' + request("guest-ping", id='"x"'),
        "every-command": every + request("guest-shutdown", '{"mode":"reboot"}') +
        request("guest-shutdown", '{"mode":"halt"}') + request("guest-shutdown"),
        "argument-errors": request("guest-sync") + request("guest-sync", '{"id":"a"}') +
        request("guest-sync", '{"id":1.5}') + request("guest-sync", '{"id":1,"x":2}') +
        request("guest-ping", "[]") + request("guest-shutdown", '{"mode":"bogus"}') +
        request("guest-set-time", '{"time":-1}') + request("guest-nope", id="7") +
        b'{"execute":5}\n{"arguments":{}}\n{"execute":"guest-ping","foo":1}\n42 [1] "x" true\n' +
        b'{"execute":"guest-ping","execute":"guest-info"}\n',
        "garbage": b"hello\n\x01\x02{\"execute\":\"a\x03b\"}\n{'execute':'guest-ping'}\n#}],:" +
        b'{"execute":\xc3\xa9}\n\xfe{"execute":"guest-\nping"}\n' + request("guest-ping"),
        "multiline": b'{"execute":\n  "guest-ping"\n}{"execute":"guest-ping"} {"execute":\r\n' +
        b'"guest-sync","arguments":\t{"id":\n-5}}',
        "unicode": request("guest-\\u0070ing") + request("guest-ping", id='"\\ud83d\\ude00\\u0000"') +
        request("\\ud800") + request("\\udc00x") + request("a/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") +
        request("\xc0\x80") + request("\xed\xa0\x80") + request("bad\\x") +
        request("guest-ping", id='"\\b\\f\\n\\r\\t\\"\\\\\\/"'),
        "deep": request("guest-ping", id="[" * 14 + "{}" + "]" * 14) +
        request("guest-ping", id="[" * 15 + "{}" + "]" * 15) + b"[" * 40 + b"]" * 40 + b"\n",
        "oversized": request("guest-ping", id='"' + "p" * 4100 + '"') + request("guest-ping"),
        "numbers": b"".join(request("guest-sync", '{"id":%s}' % n) for n in (
            "0", "-0", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
            "1e3", "1.0", "01", "-", "123456789012345678901234567890")),
        "json-value": b'{"a": [1, -2.5e+3, true, false, null, "s\\u00e9", {"b": []}], "c": {}}',
    }


# ---- fuzz_efi_vars: an OVMF variable store (tools/efi_vars.c) ----

KEY_VENDOR = bytes([0xdd, 0xb0, 0x5c, 0x11, 0x86, 0xec, 0x3d, 0x4d,
                    0xbc, 0x3e, 0xbe, 0xae, 0x7a, 0xfd, 0x15, 0x21])
AUTH_STORE = bytes([0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
                    0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92])
PLAIN_STORE = bytes([0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41,
                     0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d])


def efi_var(auth, state, name, vendor, data, attributes=3):
    encoded = (name + "\0").encode("utf-16-le")
    if auth:
        header = struct.pack("<HBBIQ16sIII16s", 0x55AA, state, 0, attributes, 0, bytes(16), 0,
                             len(encoded), len(data), vendor)
    else:
        header = struct.pack("<HBBIII16s", 0x55AA, state, 0, attributes, len(encoded), len(data), vendor)
    raw = header + encoded + data
    return raw + b"\xff" * (-len(raw) % 4)


def efi_store(variables, auth=True, size=2048):
    fv = bytes(32) + struct.pack("<Q4sIHHHBB", size, b"_FVH", 0x4feff, 72, 0, 0, 0, 2) + bytes(16)
    body = b"".join(variables)
    vs = (AUTH_STORE if auth else PLAIN_STORE) + struct.pack("<IBBHI", size - 72, 0x5A, 0xFE, 0, 0)
    out = fv + vs + body
    return out + b"\xff" * (size - len(out))


def efi_vars_seeds():
    record = struct.pack("<II16sQ32s", 0x59454B54, 1, bytes(range(16)), 7, bytes(range(32, 64)))
    return {
        "empty-store": efi_store([]),
        "key": efi_store([efi_var(True, 0x3F, "Boot0000", bytes(16), b"\x01\x02\x03"),
                          efi_var(True, 0x3C, "TorporImageKey", KEY_VENDOR, record),
                          efi_var(True, 0x3F, "TorporImageKey", KEY_VENDOR, record)]),
        "plain-key": efi_store([efi_var(False, 0x3F, "TorporImageKey", KEY_VENDOR, record)], auth=False),
        "short-record": efi_store([efi_var(True, 0x3E, "TorporImageKey", KEY_VENDOR, record[:20])]),
        "not-a-volume": b"\x00" * 64,
    }


def main():
    for target, seeds in (("fuzz_efi_vars", efi_vars_seeds()), ("fuzz_image", image_seeds()), ("fuzz_line", line_seeds()),
                          ("fuzz_used_ring", ring_seeds()), ("fuzz_console_ports", console_seeds()),
                          ("fuzz_agent", agent_seeds())):
        directory = os.path.join(HERE, "corpus", target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()

"""Reads a dm-log-writes log: the record QEMU's blklogwrites driver keeps
(run-qemu.sh --swap-log) of every write, write-zeroes, discard and flush a
guest sent to a disk, in the order QEMU completed them.

The format (Linux drivers/md/dm-log-writes.c, QEMU block/blklogwrites.c;
all integers little-endian): sector 0 is the superblock {u64 magic, u64
version, u64 nr_entries, u32 sectorsize}; from sector 1 on, each entry is
one sector {u64 sector, u64 nr_sectors, u64 flags, u64 data_len} followed
by nr_sectors sectors of data, except a discard, which has none. Sectors
and counts are in `sectorsize` units. QEMU logs a write-zeroes as a plain
write whose data is zeros, a flush as an entry of 0 sectors with the flush
flag, and rewrites the superblock only at a flush (and every
log-super-update-interval entries, 4096 by default): entries after the
last flush are in the file but not counted yet. They are read too, as
`counted=False`, up to the first one that is incomplete.
"""

import mmap
import struct

MAGIC = 0x6a736677736872
VERSION = 1
FLAG_FLUSH = 1 << 0    # everything completed before it is durable
FLAG_FUA = 1 << 1      # this write is durable once complete
FLAG_DISCARD = 1 << 2  # no data follows the entry
FLAG_MARK = 1 << 3     # a named point; data_len bytes of name in the entry sector
KNOWN_FLAGS = FLAG_FLUSH | FLAG_FUA | FLAG_DISCARD | FLAG_MARK

SUPERBLOCK = struct.Struct("<QQQI")  # magic, version, nr_entries, sectorsize
ENTRY = struct.Struct("<QQQQ")       # sector, nr_sectors, flags, data_len
MIN_SECTOR_SIZE = 512                # crash states tear at 512-byte sectors
MAX_SECTOR_SIZE = 1 << 23            # QEMU refuses 2^24 and more


class LogFormatError(Exception):
    """The file is not a dm-log-writes log this reader can trust."""


class LogEntry:
    """One entry: a write (data in the log), a discard, a flush or a mark."""

    __slots__ = ("index", "sector", "sector_count", "flags", "data_offset",
                 "mark", "counted")

    def __init__(self, index, sector, sector_count, flags, data_offset, mark, counted):
        self.index = index                # position in the log, from 0
        self.sector = sector              # first sector written, in log sectors
        self.sector_count = sector_count  # sectors written (0 for a plain flush)
        self.flags = flags                # FLAG_* bits
        self.data_offset = data_offset    # byte offset of the data in the log, or None
        self.mark = mark                  # the name of a mark entry, else None
        self.counted = counted            # within the superblock's nr_entries

    @property
    def is_flush(self):
        return bool(self.flags & FLAG_FLUSH)

    @property
    def is_fua(self):
        return bool(self.flags & FLAG_FUA)

    @property
    def is_discard(self):
        return bool(self.flags & FLAG_DISCARD)

    @property
    def is_mark(self):
        return bool(self.flags & FLAG_MARK)

    @property
    def changes_disk(self):
        """A write or a discard of at least one sector."""
        return self.sector_count > 0 and not self.is_mark

    def describe(self):
        what = []
        if self.is_discard:
            what.append("discard")
        elif self.changes_disk:
            what.append("write")
        if self.is_flush:
            what.append("flush")
        if self.is_fua:
            what.append("fua")
        if self.is_mark:
            what.append("mark %r" % self.mark)
        text = "entry %d %s" % (self.index, "+".join(what) or "empty")
        if self.changes_disk:
            text += " sectors %d-%d" % (self.sector, self.sector + self.sector_count - 1)
        return text


class WriteLog:
    """A parsed log. `entries` in log order; `data(entry)` the bytes an
    entry wrote. Keeps the file mapped until close()."""

    def __init__(self, name, buffer, sector_size, entries, counted_entries, keep=None):
        self.name = name
        self.sector_size = sector_size
        self.entries = entries
        self.counted_entries = counted_entries  # the superblock's nr_entries
        self._buffer = buffer
        self._keep = keep  # the open file behind a mapping

    @property
    def uncounted_entries(self):
        return len(self.entries) - self.counted_entries

    def data(self, entry):
        """The data of a write entry (a memoryview into the log); a discard
        reads as zeros."""
        size = entry.sector_count * self.sector_size
        if entry.data_offset is None:
            return memoryview(bytes(size))
        return memoryview(self._buffer)[entry.data_offset:entry.data_offset + size]

    def close(self):
        if isinstance(self._buffer, mmap.mmap):
            self._buffer.close()
        if self._keep is not None:
            self._keep.close()
        self._buffer = b""
        self._keep = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_log(path):
    """Parses the log file at `path`; raises LogFormatError if malformed."""
    f = open(path, "rb")
    try:
        size = f.seek(0, 2)
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except BaseException:
        f.close()
        raise
    try:
        sector_size, entries, counted = parse_log(buffer, str(path))
    except BaseException:
        if buffer:
            buffer.close()
        f.close()
        raise
    return WriteLog(str(path), buffer, sector_size, entries, counted, keep=f)


def parse_log(buffer, name="log"):
    """Parses a whole log held in `buffer` (bytes or mmap); returns
    (sector_size, entries, counted_entries)."""
    size = len(buffer)
    if size == 0:
        return MIN_SECTOR_SIZE, [], 0  # nothing was ever logged
    if size < SUPERBLOCK.size:
        raise LogFormatError("%s: %d bytes, shorter than a superblock (%d bytes)"
                             % (name, size, SUPERBLOCK.size))
    magic, version, counted, sector_size = SUPERBLOCK.unpack_from(buffer, 0)
    if magic != MAGIC:
        hint = " (no superblock: QEMU writes it at the first flush)" if magic == 0 else ""
        raise LogFormatError("%s: not a dm-log-writes log: magic 0x%x, expected 0x%x%s"
                             % (name, magic, MAGIC, hint))
    if version != VERSION:
        raise LogFormatError("%s: log version %d, only version %d is known" % (name, version, VERSION))
    if not (MIN_SECTOR_SIZE <= sector_size <= MAX_SECTOR_SIZE) or sector_size & (sector_size - 1):
        raise LogFormatError("%s: sector size %d is not a power of two from %d to %d"
                             % (name, sector_size, MIN_SECTOR_SIZE, MAX_SECTOR_SIZE))
    if size < sector_size:
        raise LogFormatError("%s: %d bytes, shorter than its %d-byte superblock sector"
                             % (name, size, sector_size))

    entries = []
    offset = sector_size
    while True:
        index = len(entries)
        strict = index < counted
        entry, offset = _parse_entry(buffer, offset, index, sector_size, name, strict, counted)
        if entry is None:
            break
        entries.append(entry)
    return sector_size, entries, counted


def _parse_entry(buffer, offset, index, sector_size, name, strict, counted):
    """The entry at `offset` and the offset after it. A counted entry
    (strict) must be sound or the log is refused; past the superblock's
    count, the first incomplete or unsound entry ends the log (None)."""
    size = len(buffer)

    def bad(message):
        if not strict:
            return None, offset
        raise LogFormatError("%s: entry %d (the superblock counts %d) at byte %d: %s"
                             % (name, index, counted, offset, message))

    if offset + sector_size > size:
        return bad("past the end of the log (%d bytes): the log is truncated" % size)
    sector, sector_count, flags, data_len = ENTRY.unpack_from(buffer, offset)
    if flags & ~KNOWN_FLAGS:
        return bad("unknown flags 0x%x" % flags)
    mark = None
    if flags & FLAG_MARK:
        if data_len > sector_size - ENTRY.size:
            return bad("a mark name of %d bytes does not fit its sector" % data_len)
        start = offset + ENTRY.size
        mark = bytes(buffer[start:start + data_len]).decode("utf-8", "replace")
    elif data_len:
        return bad("data_len %d on an entry that is not a mark" % data_len)
    if sector_count == 0 and not flags:
        return bad("a write of 0 sectors with no flags: not an entry a driver logs")
    if (sector + sector_count) * sector_size >= 1 << 63:
        return bad("sectors %d+%d lie beyond any disk" % (sector, sector_count))
    next_offset = offset + sector_size
    data_offset = None
    # QEMU's own reader (blk_log_writes_find_cur_log_sector): every entry
    # but a discard is followed by nr_sectors of data
    if not flags & FLAG_DISCARD:
        data_offset = next_offset
        next_offset += sector_count * sector_size
        if next_offset > size:
            return bad("its %d sectors of data run past the end of the log (%d bytes): "
                       "the log is truncated" % (sector_count, size))
    entry = LogEntry(index, sector, sector_count, flags,
                     data_offset if sector_count else None, mark, strict)
    return entry, next_offset

"""The crash-state tools without QEMU: the dm-log-writes reader
(tests/crash/log_writes.py) on logs built here, malformed ones refused,
and the crash-state generator (tests/crash/crash_states.py), whose every
state is checked byte for byte against a replay done here on a bytearray."""

import os
import random
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crash"))

import crash_states  # noqa: E402
import log_writes  # noqa: E402
from log_writes import FLAG_DISCARD, FLAG_FLUSH, FLAG_FUA, FLAG_MARK  # noqa: E402

SECTOR = 512


# ---- building logs ----------------------------------------------------------

def write(sector, data):
    return ("write", sector, data)


def flush():
    return ("flush",)


def encode_log(entries, sector_size=SECTOR, counted=None, magic=log_writes.MAGIC, version=1):
    """A log in the dm-log-writes layout. `entries` are write(sector, data),
    flush(), ("discard", sector, count), ("fua", sector, data),
    ("flush-write", sector, data), ("mark", name) or ("raw", entry tuple,
    data); `counted` is the superblock's nr_entries (default: all)."""
    body = b""
    for spec in entries:
        kind = spec[0]
        if kind in ("write", "fua", "flush-write"):
            flags = {"write": 0, "fua": FLAG_FUA, "flush-write": FLAG_FLUSH}[kind]
            assert len(spec[2]) % sector_size == 0
            header, data = (spec[1], len(spec[2]) // sector_size, flags, 0), spec[2]
        elif kind == "flush":
            header, data = (0, 0, FLAG_FLUSH, 0), b""
        elif kind == "discard":
            header, data = (spec[1], spec[2], FLAG_DISCARD, 0), b""
        elif kind == "mark":
            name = spec[1].encode()
            header, data = (0, 0, FLAG_MARK, len(name)), b""
        else:
            header, data = spec[1], spec[2]
        sector = struct.pack("<QQQQ", *header)
        if kind == "mark":
            sector += spec[1].encode()
        body += sector.ljust(sector_size, b"\0") + data
    count = len(entries) if counted is None else counted
    superblock = struct.pack("<QQQI", magic, version, count, sector_size).ljust(sector_size, b"\0")
    return superblock + body


def save(tmp_path, data, name="test.log"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def sectors(rng, count):
    return bytes(rng.randrange(256) for _ in range(count * SECTOR))


# ---- the reader -------------------------------------------------------------

def test_reader_gives_every_entry_with_its_data(tmp_path):
    rng = random.Random(1)
    first, second = sectors(rng, 3), sectors(rng, 1)
    path = save(tmp_path, encode_log([write(10, first), flush(), ("discard", 4, 2),
                                      ("mark", "done"), write(0, second), flush()]))
    with log_writes.read_log(path) as log:
        assert log.sector_size == SECTOR and log.counted_entries == 6
        kinds = [(e.index, e.sector, e.sector_count, e.flags, e.mark) for e in log.entries]
        assert kinds == [(0, 10, 3, 0, None), (1, 0, 0, FLAG_FLUSH, None), (2, 4, 2, FLAG_DISCARD, None),
                         (3, 0, 0, FLAG_MARK, "done"), (4, 0, 1, 0, None), (5, 0, 0, FLAG_FLUSH, None)]
        assert bytes(log.data(log.entries[0])) == first
        assert bytes(log.data(log.entries[4])) == second
        assert bytes(log.data(log.entries[2])) == bytes(2 * SECTOR)  # a discard reads as zeros
        assert [e.changes_disk for e in log.entries] == [True, False, True, False, True, False]
        assert all(e.counted for e in log.entries)


def test_entries_after_the_last_flush_are_read_as_uncounted(tmp_path):
    rng = random.Random(2)
    data = encode_log([write(1, sectors(rng, 1)), flush(), write(2, sectors(rng, 2)),
                       write(7, sectors(rng, 1))], counted=2)
    # a third uncounted write whose data never made it to the log
    data += struct.pack("<QQQQ", 9, 4, 0, 0).ljust(SECTOR, b"\0") + bytes(SECTOR)
    with log_writes.read_log(save(tmp_path, data)) as log:
        assert [e.counted for e in log.entries] == [True, True, False, False]
        assert log.uncounted_entries == 2
        assert log.entries[3].sector == 7


def test_an_empty_file_is_an_empty_log(tmp_path):
    with log_writes.read_log(save(tmp_path, b"")) as log:
        assert log.entries == []


def test_a_4096_byte_log_is_read_in_its_own_sectors(tmp_path):
    data = bytes(range(256)) * 16
    with log_writes.read_log(save(tmp_path, encode_log([write(3, data), flush()], sector_size=4096))) as log:
        assert log.sector_size == 4096
        assert (log.entries[0].sector, log.entries[0].sector_count) == (3, 1)
        assert bytes(log.data(log.entries[0])) == data


def good_log():
    return encode_log([write(0, bytes(2 * SECTOR)), flush()])


def patched(data, offset, fmt, value):
    data = bytearray(data)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


MALFORMED = {
    "too short": (good_log()[:20], "shorter than a superblock"),
    "no superblock": (bytes(SECTOR) + good_log()[SECTOR:], "no superblock"),
    "wrong magic": (patched(good_log(), 0, "<Q", 0x1234), "not a dm-log-writes log"),
    "version 2": (patched(good_log(), 8, "<Q", 2), "log version 2"),
    "sector size 1000": (patched(good_log(), 24, "<I", 1000), "sector size 1000"),
    "sector size 256": (patched(good_log(), 24, "<I", 256), "sector size 256"),
    "unknown flags": (patched(good_log(), SECTOR + 16, "<Q", 0x30), "unknown flags 0x30"),
    "data_len on a write": (patched(good_log(), SECTOR + 24, "<Q", 5), "not a mark"),
    "counts more entries": (patched(good_log(), 16, "<Q", 3), "entry 2 (the superblock counts 3)"),
    "truncated data": (good_log()[:SECTOR * 3], "data run past the end"),
    "empty entry": (encode_log([("raw", (0, 0, 0, 0), b"")]), "a write of 0 sectors"),
    "beyond any disk": (encode_log([("raw", (1 << 60, 1 << 60, FLAG_DISCARD, 0), b"")]), "beyond any disk"),
    "mark name too long": (encode_log([("raw", (0, 0, FLAG_MARK, 600), b"")]), "does not fit"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_log_is_refused(tmp_path, case):
    data, words = MALFORMED[case]
    with pytest.raises(log_writes.LogFormatError) as error:
        log_writes.read_log(save(tmp_path, data))
    assert words in str(error.value)
    assert str(tmp_path / "test.log") in str(error.value)  # names the file


def test_a_write_beyond_the_disk_is_refused(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(8 * SECTOR))
    with log_writes.read_log(save(tmp_path, encode_log([write(6, bytes(3 * SECTOR)), flush()]))) as log:
        with pytest.raises(crash_states.CrashStateError, match="beyond the 8 sectors"):
            crash_states.Phase("p", image, log)


# ---- the generator ----------------------------------------------------------

class Model:
    """The replay rules, done independently on a bytearray: entries in log
    order, per 512-byte sector."""

    def __init__(self, base, log):
        self.base = bytes(base)
        self.log = log
        self.factor = log.sector_size // SECTOR

    def apply(self, disk, entry_index, kept=None):
        entry = self.log.entries[entry_index]
        data = bytes(self.log.data(entry))
        first = entry.sector * self.factor
        for offset in range(entry.sector_count * self.factor):
            if kept is None or offset in kept:
                disk[(first + offset) * SECTOR:(first + offset + 1) * SECTOR] = \
                    data[offset * SECTOR:(offset + 1) * SECTOR]

    def at_flush(self, number, first_entry=0):
        """Every write before the number-th flush point (FUA after itself,
        flush-with-data before itself)."""
        disk = bytearray(self.base)
        seen = 0
        for entry in self.log.entries:
            if entry.is_flush and entry.index >= first_entry:
                seen += 1
            if seen >= number and entry.index >= first_entry:
                break
            if entry.changes_disk:
                self.apply(disk, entry.index)
            if entry.is_fua and entry.index >= first_entry:
                seen += 1
                if seen >= number:
                    break
        return disk

    def expected(self, phase, state):
        if state.kind == "flush" and state.flush != "end":
            return self.at_flush(state.flush, phase.first_entry)
        disk = self.at_flush(state.completed_flushes, phase.first_entry)
        if state.kind == "flush":
            group = phase.groups[-1]
            for w in group.writes:
                self.apply(disk, w.entry)
            return disk
        group = phase.groups[phase._group_index(state.flush)]
        for w in group.writes:
            if state.torn and w.entry == state.torn[0]:
                self.apply(disk, w.entry, set(state.torn[2]))
            elif w.entry in state.applied:
                self.apply(disk, w.entry)
        return disk


def scenario(tmp_path, sector_size=SECTOR, size_sectors=256, seed=5):
    """A random base disk and a log of three flushed groups (overlapping
    writes within a group, so order matters) and writes after the last
    flush; returns (image path, log, model)."""
    rng = random.Random(seed)
    unit = sector_size // SECTOR
    base = sectors(rng, size_sectors)
    image = tmp_path / "base.img"
    image.write_bytes(base)

    def data(count):
        return sectors(rng, count * unit)

    entries = [write(0, data(8)), flush(),
               write(20, data(4)), write(22, data(4)), write(40, data(1)), write(60, data(16)), flush(),
               flush(),  # a flush with nothing new
               write(0, data(8)), write(100, data(2)), flush(),
               write(5, data(3)), write(120, data(1))]
    log = log_writes.read_log(save(tmp_path, encode_log(entries, sector_size=sector_size, counted=11)))
    return image, log, Model(base, log)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_flush_states_replay_the_log_prefix_byte_for_byte(tmp_path):
    image, log, model = scenario(tmp_path)
    phase = crash_states.Phase("p", image, log)
    states = phase.flush_states()
    assert [s.flush for s in states] == [0, 1, 2, 3, 4, "end"]
    assert [s.completed_flushes for s in states] == [0, 1, 2, 3, 4, 4]
    for state in states:
        path = tmp_path / "state.img"
        phase.write_state(state, path)
        assert read(path) == bytes(model.expected(phase, state)), state.label
    assert states[0].content == 0  # the starting disk
    assert states[2].content == states[3].content  # the empty flush changed nothing


def check_states(tmp_path, phase, model, states):
    contents = set()
    for state in states:
        with crash_states.state_file(phase, state, tmp_path / "state.img") as path:
            disk = read(path)
        assert disk == bytes(model.expected(phase, state)), state.label
        contents.add(disk)
        if state.kind != "flush":
            group = phase.groups[phase._group_index(state.flush)]
            entries = [w.entry for w in group.writes]
            assert set(state.applied) <= set(entries), state.label
            assert state.completed_flushes == phase._group_index(state.flush)
        if state.torn:
            entry, mode, kept, count = state.torn
            assert entry not in state.applied and entry in entries
            assert 0 < len(kept) < count and count >= 2
            if mode == "prefix":
                assert list(kept) == list(range(len(kept)))
            assert "entry %d torn (%s, %d sectors %s" % (entry, mode, len(kept), crash_states.ranges_text(kept)[:8]) \
                in state.label
            assert len(state.label) < 200
            assert state.as_dict()["torn"]["kept"] == crash_states.ranges_text(kept)
    assert len(contents) == len(states)  # no disk twice
    assert not os.path.exists(tmp_path / "state.img")


def test_subset_and_torn_states_hold_exactly_what_their_labels_say(tmp_path):
    image, log, model = scenario(tmp_path)
    phase = crash_states.Phase("p", image, log)
    states = phase.states(200, random.Random(3))
    kinds = [s.kind for s in states]
    assert kinds[:5] == ["flush"] * 5  # flush 3 repeats flush 2's disk
    assert kinds.count("subset") >= 10 and kinds.count("torn") >= 30
    modes = {s.torn[1] for s in states if s.torn}
    assert modes == {"prefix", "subset"}
    assert {s.flush for s in states if s.kind != "flush"} == {1, 2, 4, "end"}
    check_states(tmp_path, phase, model, states)


def test_a_chosen_torn_state_holds_what_its_label_says(tmp_path):
    image, log, model = scenario(tmp_path)
    phase = crash_states.Phase("p", image, log)
    group = phase.groups[1]  # writes at 20, 22, 40 and 60
    victim = next(w for w in group.writes if w.count == 16)
    other = next(w for w in group.writes if w.count == 1)
    state = phase.torn_state(1, victim, "prefix", (0,), applied=(other.entry,))
    assert state.kind == "torn" and state.flush == 2 and state.completed_flushes == 1
    assert state.torn == (victim.entry, "prefix", (0,), 16)
    assert "entry %d torn (prefix, 1 sectors 0 of 0-15 kept)" % victim.entry in state.label
    check_states(tmp_path, phase, model, [state])


def test_states_depend_only_on_the_seed(tmp_path):
    image, log, _ = scenario(tmp_path)
    phase = crash_states.Phase("p", image, log)
    first = [s.label for s in phase.states(40, random.Random(9))]
    again = [s.label for s in phase.states(40, random.Random(9))]
    other = [s.label for s in phase.states(40, random.Random(10))]
    assert first == again and first != other
    assert len(set(first)) == 40


def test_small_groups_are_enumerated_then_given_up(tmp_path):
    rng = random.Random(4)
    image = tmp_path / "base.img"
    image.write_bytes(bytes(64 * SECTOR))
    log = log_writes.read_log(save(tmp_path, encode_log([write(0, sectors(rng, 2)), flush()])))
    states = crash_states.Phase("p", image, log).states(100, random.Random(1))
    # flush 0 and 1, and the two one-sector tears of the only write (a
    # prefix of one sector and the subset {0} are the same disk)
    shapes = sorted((str(s.flush), s.torn[2] if s.torn else ()) for s in states)
    assert shapes == [("0", ()), ("1", ()), ("1", (0,)), ("1", (1,))]


def test_4096_byte_log_sectors_tear_at_512_bytes(tmp_path):
    image, log, model = scenario(tmp_path, sector_size=4096, size_sectors=1024, seed=6)
    phase = crash_states.Phase("p", image, log)
    assert phase.groups[0].writes[0].count == 64  # 8 log sectors of 4096
    states = phase.states(60, random.Random(2))
    torn = [s for s in states if s.torn]
    assert any(len(s.torn[2]) % 8 for s in torn)  # torn inside a 4096-byte sector
    check_states(tmp_path, phase, model, states)


def test_discard_fua_and_flush_with_data(tmp_path):
    rng = random.Random(7)
    base = sectors(rng, 32)
    image = tmp_path / "base.img"
    image.write_bytes(base)
    entries = [("fua", 0, sectors(rng, 1)),          # durable by itself: ends group 1
               write(4, sectors(rng, 2)),
               ("flush-write", 8, sectors(rng, 1)),  # flushes entry 1, then writes
               ("discard", 10, 3), flush()]
    log = log_writes.read_log(save(tmp_path, encode_log(entries)))
    phase = crash_states.Phase("p", image, log)
    assert [[w.entry for w in g.writes] for g in phase.groups] == [[0], [1], [2, 3]]
    model = Model(base, log)
    final = phase.flush_states()[-1]
    path = tmp_path / "final.img"
    phase.write_state(final, path)
    disk = read(path)
    assert disk[10 * SECTOR:13 * SECTOR] == bytes(3 * SECTOR)  # the discard reads as zeros
    assert disk == bytes(model.expected(phase, final))
    check_states(tmp_path, phase, model, phase.states(50, random.Random(1)))


def test_entries_before_the_first_entry_are_in_every_state(tmp_path):
    image, log, model = scenario(tmp_path)
    phase = crash_states.Phase("p", image, log, first_entry=2)
    assert [w.entry for w in phase.committed] == [0]
    states = phase.states(80, random.Random(5))
    assert states[0].flush == 0 and states[0].content != 0  # entry 0 is on the disk
    early = [s for s in states if s.completed_flushes < 2]
    assert len(early) > 5
    for state in early:  # entry 8 rewrites sectors 0-7 before flush 3
        path = tmp_path / "state.img"
        phase.write_state(state, path)
        assert read(path)[:8 * SECTOR] == bytes(log.data(log.entries[0])), state.label
    check_states(tmp_path, phase, model, states)


def test_state_copies_are_sparse_and_removed(tmp_path):
    image = tmp_path / "big.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    rng = random.Random(8)
    log = log_writes.read_log(save(tmp_path, encode_log([write(100, sectors(rng, 8)), flush(),
                                                         write(50000, sectors(rng, 2)), flush()])))
    phase = crash_states.Phase("p", image, log)
    path = tmp_path / "state.img"
    with pytest.raises(RuntimeError):
        with crash_states.state_file(phase, phase.flush_states()[-1], path) as written:
            size = os.stat(written)
            assert size.st_size == 64 << 20
            assert size.st_blocks * 512 <= 256 << 10, size.st_blocks
            raise RuntimeError("the caller failed")
    assert not path.exists()


def test_sample_takes_every_phase_in_turn(tmp_path):
    image, log, _ = scenario(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_image, other_log, _ = scenario(other_dir, seed=11)
    phases = [crash_states.Phase("a", image, log), crash_states.Phase("b", other_image, other_log)]
    chosen = crash_states.sample(phases, 16, seed=1)
    assert len(chosen) == 16
    assert [s.kind for s in chosen[:10]] == ["flush"] * 10
    assert [s.phase for s in chosen[10:14]] == ["a", "b", "a", "b"]
    # one phase's states do not depend on the other phases
    alone = crash_states.sample(phases[:1], 30, seed=1)
    assert [s.label for s in chosen if s.phase == "a"] == \
        [s.label for s in alone if s.kind == "flush"] + \
        [s.label for s in alone if s.kind != "flush"][:3]


def test_ranges_text():
    assert crash_states.ranges_text([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert crash_states.ranges_text([3]) == "3"
    assert crash_states.ranges_text([]) == ""


def test_same_content_reads_holes_as_zeros(tmp_path):
    import crash_runner

    def sparse(name, writes, size=8 << 20):
        path = tmp_path / name
        with open(path, "wb") as f:
            f.truncate(size)
            for offset, data in writes:
                f.seek(offset)
                f.write(data)
        return path

    data = bytes(range(256)) * 64
    a = sparse("a", [(1 << 20, data)])
    b = sparse("b", [(1 << 20, data), (5 << 20, bytes(1 << 20))])  # zeros written, not a hole
    c = sparse("c", [(1 << 20, data), (6 << 20, b"x")])
    d = sparse("d", [(1 << 20, data)], size=9 << 20)
    assert crash_runner.same_content(a, b) and crash_runner.same_content(b, a)
    assert not crash_runner.same_content(a, c) and not crash_runner.same_content(c, a)
    assert not crash_runner.same_content(a, d)

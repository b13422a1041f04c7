"""Crash states: what a power loss could have left on a disk at any moment
of a recorded run, built from the starting disk image and the run's
dm-log-writes log (log_writes.py), the way xfstests replays dm-log-writes
logs and CrashMonkey replays recorded block I/O (docs/reliability.md,
Crash states).

The log is cut into groups: the writes sent since the previous flush, and
the flush that ends them (a FUA write ends a group after itself, a flush
entry carrying data before itself). At flush k every write of groups 1..k
is on the medium; before flush k completes, any of the writes of group k
may or may not be, and a write of several 512-byte sectors may have
reached it only in part. Three kinds of state follow:

- flush:  the disk at flush k (k = 0: the disk as the run found it), every
          write up to flush k applied in log order;
- subset: the disk at flush k-1 plus a random subset of group k;
- torn:   the same with one multi-sector write of group k torn at a sector
          boundary: a prefix of its sectors, or any subset of them.

States are deterministic for a seed and never repeat a disk content: each
state's content is summarised by a 128-bit sum over its changed sectors,
and a candidate whose sum was seen is dropped. A state is written as a
sparse copy of the starting image (cp --sparse=always) with only the
sectors that differ from it written on top.
"""

import contextlib
import hashlib
import os
import random
import subprocess

SECTOR = 512           # the unit of tearing
MODULUS = 1 << 128     # content sums are taken modulo this
ATTEMPTS = 40          # draws without a new state before a group is spent
LABEL_RANGES = 40      # a label lists this many characters of kept sectors


class CrashStateError(Exception):
    """A log that does not fit the disk it is said to describe."""


def _term(sector, content):
    """The contribution of one sector holding `content` to a state's sum."""
    digest = hashlib.blake2b(content, digest_size=16, salt=sector.to_bytes(16, "little")).digest()
    return int.from_bytes(digest, "little")


def ranges_text(offsets):
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    parts = []
    start = previous = None
    for value in offsets:
        if start is None:
            start = previous = value
        elif value == previous + 1:
            previous = value
        else:
            parts.append("%d" % start if start == previous else "%d-%d" % (start, previous))
            start = previous = value
    if start is not None:
        parts.append("%d" % start if start == previous else "%d-%d" % (start, previous))
    return ",".join(parts)


class Write:
    """One write (or discard) of a phase, in 512-byte sectors."""

    __slots__ = ("entry", "sector", "count", "terms", "_log")

    def __init__(self, log, entry):
        factor = log.sector_size // SECTOR
        self.entry = entry.index            # the log entry it came from
        self.sector = entry.sector * factor
        self.count = entry.sector_count * factor
        self._log = log
        data = log.data(entry)
        self.terms = [_term(self.sector + i, data[i * SECTOR:(i + 1) * SECTOR])
                      for i in range(self.count)]

    def data(self, first, count):
        """The bytes this write puts in its sectors first..first+count-1."""
        entry = self._log.entries[self.entry]
        return self._log.data(entry)[first * SECTOR:(first + count) * SECTOR]

    def describe(self):
        return "entry %d (sectors %d-%d)" % (self.entry, self.sector, self.sector + self.count - 1)


class Group:
    """The writes sent since the previous flush point, and that point."""

    __slots__ = ("number", "writes", "flush_entry")

    def __init__(self, number, writes, flush_entry):
        self.number = number            # flush k ends group k; None: the end of the log
        self.writes = writes
        self.flush_entry = flush_entry  # the entry index of the flush, or None


class CrashState:
    """One crash state and its label."""

    __slots__ = ("phase", "kind", "flush", "completed_flushes", "applied", "torn", "content")

    def __init__(self, phase, kind, flush, completed_flushes, applied, torn, content):
        self.phase = phase      # the phase's name
        self.kind = kind        # "flush", "subset" or "torn"
        self.flush = flush      # the flush number (int, 0 = before any), or "end"
        # how many of the phase's flushes the guest had seen complete: the
        # flush itself for a flush state, the one before for the others
        self.completed_flushes = completed_flushes
        self.applied = applied  # entries of this flush's group applied whole (flush: all)
        self.torn = torn        # None, or (entry, "prefix"|"subset", kept offsets, count)
        self.content = content  # the content sum (0: the starting disk)

    @property
    def label(self):
        where = "flush %s" % self.flush
        if self.kind == "flush":
            return "%s flush: the disk at %s" % (self.phase, where)
        text = "%s %s at %s: entries [%s] applied" % (
            self.phase, self.kind, where, ",".join(str(e) for e in self.applied))
        if self.torn:
            entry, mode, kept, count = self.torn
            kept_text = ranges_text(kept)
            if len(kept_text) > LABEL_RANGES:  # the whole list is in as_dict()
                kept_text = kept_text[:kept_text.rindex(",", 0, LABEL_RANGES)] + ",..."
            text += ", entry %d torn (%s, %d sectors %s of 0-%d kept)" % (
                entry, mode, len(kept), kept_text, count - 1)
        return text

    def as_dict(self):
        torn = None
        if self.torn:
            entry, mode, kept, count = self.torn
            torn = {"entry": entry, "mode": mode, "kept": ranges_text(kept), "sectors": count}
        return {"phase": self.phase, "kind": self.kind, "flush": self.flush,
                "applied": list(self.applied), "torn": torn, "label": self.label}


class Phase:
    """A recorded run: the starting disk image, the log of what the guest
    sent to it, and where in the log the run begins (entries before
    `first_entry` are on the disk in every state: they happened before the
    part of the run under test)."""

    def __init__(self, name, image, log, first_entry=0):
        self.name = name
        self.image = str(image)
        self.log = log
        self.first_entry = first_entry
        self.image_sectors = os.path.getsize(self.image) // SECTOR
        writes = []
        for entry in log.entries:
            if entry.changes_disk:
                write = Write(log, entry)
                if write.sector + write.count > self.image_sectors:
                    raise CrashStateError(
                        "%s: %s writes sectors %d-%d, beyond the %d sectors of %s"
                        % (log.name, entry.describe(), write.sector,
                           write.sector + write.count - 1, self.image_sectors, self.image))
                writes.append(write)
        self._base_terms = self._read_base_terms(writes)

        self.committed = []  # writes before first_entry
        self.groups = []
        pending = []
        by_entry = {w.entry: w for w in writes}
        flushes = 0
        for entry in log.entries:
            if entry.index < first_entry:
                if entry.index in by_entry:
                    self.committed.append(by_entry[entry.index])
                continue
            if entry.is_flush:  # a flush with data flushes what came before it
                flushes += 1
                self.groups.append(Group(flushes, pending, entry.index))
                pending = []
            if entry.index in by_entry:
                pending.append(by_entry[entry.index])
                if entry.is_fua:
                    flushes += 1
                    self.groups.append(Group(flushes, pending, entry.index))
                    pending = []
        self.flush_count = flushes
        if pending:
            self.groups.append(Group(None, pending, None))

        # the disk at each flush: sector -> (write, offset), and its sum
        overlay = {}
        self._apply(overlay, [(w, None) for w in self.committed])
        self._flush_overlays = [overlay]
        self._flush_sums = [self._sum(overlay)]
        for group in self.groups:
            overlay = dict(overlay)
            self._apply(overlay, [(w, None) for w in group.writes])
            self._flush_overlays.append(overlay)
            self._flush_sums.append(self._sum(overlay))

    # ---- content sums ----

    def _read_base_terms(self, writes):
        """The term of every sector a write touches, as the starting image
        holds it (one read per run of neighbouring sectors)."""
        touched = sorted({w.sector + i for w in writes for i in range(w.count)})
        terms = {}
        with open(self.image, "rb") as f:
            start = 0
            while start < len(touched):
                end = start
                while end + 1 < len(touched) and touched[end + 1] == touched[end] + 1:
                    end += 1
                first, count = touched[start], end - start + 1
                data = os.pread(f.fileno(), count * SECTOR, first * SECTOR)
                for i in range(count):
                    terms[first + i] = _term(first + i, data[i * SECTOR:(i + 1) * SECTOR])
                start = end + 1
        return terms

    @staticmethod
    def _apply(overlay, applications):
        """Applies (write, kept offsets or None for all) in order."""
        for write, kept in applications:
            for offset in (range(write.count) if kept is None else kept):
                overlay[write.sector + offset] = (write, offset)

    def _sum(self, overlay):
        total = 0
        for sector, (write, offset) in overlay.items():
            total += write.terms[offset] - self._base_terms[sector]
        return total % MODULUS

    def _candidate_sum(self, group_index, applications):
        """The sum of the disk at the flush before group `group_index` with
        `applications` (writes of that group) on top."""
        before = self._flush_overlays[group_index]
        changed = {}
        for write, kept in applications:
            for offset in (range(write.count) if kept is None else kept):
                changed[write.sector + offset] = write.terms[offset]
        total = self._flush_sums[group_index]
        for sector, term in changed.items():
            old = before.get(sector)
            total += term - (old[0].terms[old[1]] if old else self._base_terms[sector])
        return total % MODULUS

    @property
    def final_content(self):
        """The content sum of the disk with every write applied."""
        return self._flush_sums[-1]

    # ---- the states ----

    def _flush_label(self, group_index):
        number = self.groups[group_index].number
        return "end" if number is None else number

    def _group_index(self, flush):
        return len(self.groups) - 1 if flush == "end" else flush - 1

    def _flush_state(self, index):
        """The disk after groups 1..index (index 0: the starting disk)."""
        group = self.groups[index - 1] if index else None
        flush = self._flush_label(index - 1) if index else 0
        applied = tuple(w.entry for w in group.writes) if group else ()
        return CrashState(self.name, "flush", flush, min(index, self.flush_count), applied, None,
                          self._flush_sums[index])

    def flush_states(self):
        """The disk at every flush (and at the end of the log when writes
        follow the last flush), the starting disk first."""
        return [self._flush_state(index) for index in range(len(self.groups) + 1)]

    def _draw(self, kind, group_index, rng):
        """One random state of `kind` in group `group_index` (0-based), or
        None when the group cannot make one."""
        writes = self.groups[group_index].writes
        if kind == "torn":
            tearable = [w for w in writes if w.count >= 2]
            if not tearable:
                return None
            victim = rng.choice(tearable)
            if rng.random() < 0.5:
                mode, kept = "prefix", tuple(range(rng.randrange(1, victim.count)))
            else:
                mode = "subset"
                kept = tuple(sorted(rng.sample(range(victim.count), rng.randrange(1, victim.count))))
            applied = tuple(w.entry for w in writes if w is not victim and rng.random() < 0.5)
            return self.torn_state(group_index, victim, mode, kept, applied)
        applied = tuple(w.entry for w in writes if rng.random() < 0.5)
        applications = [(w, None) for w in writes if w.entry in applied]
        return CrashState(self.name, kind, self._flush_label(group_index), group_index,
                          applied, None, self._candidate_sum(group_index, applications))

    def torn_state(self, group_index, victim, mode, kept, applied=()):
        """The disk at the flush before group `group_index` (0-based) with
        the writes `applied` of that group whole and `victim`, one of its
        writes, reaching the medium only in its sectors `kept`."""
        applications = [(w, None) if w is not victim else (w, kept)
                        for w in self.groups[group_index].writes if w is victim or w.entry in applied]
        return CrashState(self.name, "torn", self._flush_label(group_index), group_index, tuple(applied),
                          (victim.entry, mode, tuple(kept), victim.count),
                          self._candidate_sum(group_index, applications))

    def states(self, count, rng):
        """Up to `count` states, no two with the same disk: every flush
        state first, then subset and torn states in turn, each kind taking
        the groups round robin until a group yields nothing new."""
        seen = set()
        result = []
        for state in self.flush_states():
            if len(result) < count and state.content not in seen:
                seen.add(state.content)
                result.append(state)
        open_pairs = [(kind, index) for kind in ("subset", "torn")
                      for index, group in enumerate(self.groups) if group.writes]
        turn = 0
        while len(result) < count and open_pairs:
            kind = ("subset", "torn")[turn % 2]
            turn += 1
            pairs = [pair for pair in open_pairs if pair[0] == kind]
            if not pairs:
                continue
            pair = pairs[(turn // 2) % len(pairs)]
            for _ in range(ATTEMPTS):
                state = self._draw(kind, pair[1], rng)
                if state is not None and state.content not in seen:
                    seen.add(state.content)
                    result.append(state)
                    break
            else:
                open_pairs.remove(pair)
        return result

    # ---- writing a state ----

    def overlay(self, state):
        """sector -> (write, offset) for every sector the state wrote."""
        if state.kind == "flush":
            index = 0 if state.flush == 0 else self._group_index(state.flush) + 1
            return dict(self._flush_overlays[index])
        index = self._group_index(state.flush)
        overlay = dict(self._flush_overlays[index])
        applications = []
        for write in self.groups[index].writes:
            if state.torn and write.entry == state.torn[0]:
                applications.append((write, state.torn[2]))
            elif write.entry in state.applied:
                applications.append((write, None))
        self._apply(overlay, applications)
        return overlay

    def write_state(self, state, path):
        """Writes the state's disk to `path`: a sparse copy of the starting
        image with the sectors that differ from it written on top."""
        subprocess.run(["cp", "--sparse=always", self.image, str(path)], check=True)
        overlay = self.overlay(state)
        changed = sorted(sector for sector, (write, offset) in overlay.items()
                         if write.terms[offset] != self._base_terms[sector])
        fd = os.open(str(path), os.O_WRONLY)
        try:
            position = 0
            while position < len(changed):
                # one pwrite per run of neighbouring sectors from one write
                first = changed[position]
                write, offset = overlay[first]
                length = 1
                while (position + length < len(changed)
                       and changed[position + length] == first + length
                       and overlay[first + length] == (write, offset + length)):
                    length += 1
                os.pwrite(fd, write.data(offset, length), first * SECTOR)
                position += length
        finally:
            os.close(fd)


def sample(phases, count, seed):
    """Up to `count` states over several phases: every phase's flush
    states first, then the others taken from the phases in turn. Each
    phase draws from its own generator seeded by `seed` and its name, so
    adding a phase does not change another phase's states."""
    lists = [phase.states(count, random.Random("%s:%s" % (seed, phase.name))) for phase in phases]
    chosen = [state for states in lists for state in states if state.kind == "flush"][:count]
    rest = [[state for state in states if state.kind != "flush"] for states in lists]
    position = 0
    while len(chosen) < count and any(position < len(states) for states in rest):
        for states in rest:
            if position < len(states) and len(chosen) < count:
                chosen.append(states[position])
        position += 1
    return chosen


@contextlib.contextmanager
def state_file(phase, state, path):
    """Writes the state's disk at `path` for the `with` block, and removes
    it afterwards (whatever happens in the block)."""
    try:
        phase.write_state(state, path)
        yield str(path)
    finally:
        if os.path.exists(str(path)):
            os.unlink(str(path))

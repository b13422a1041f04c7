#!/usr/bin/python3
"""Boots torpor on crash states of its hibernation disk and judges what it
does (docs/reliability.md, Crash states).

    tests/crash/crash_runner.py [--states N] [--seed S] [--no-prior] [--work DIR]
    make crash [STATES=N] [SEED=S]

It records two phases with run-qemu.sh --swap-log: a hibernation (a guest
that resumed an earlier image fills memory and types `hibernate`; QEMU
exits) and the resume of that image (the next boot, on a second log,
marks the header `resuming` and then `used`; `verify`; `poweroff`). It
builds crash states from both (crash_states.py; the resume phase starts
from the disk the hibernation left) and boots each state twice, the
second time on the disk the first boot left. Outcomes are judged from the
documented console lines only (`resume ok`, `resume refused reason=WORD`,
`verify ok`, `torpor ready`, `exception vector=`):

- good: `resume ok` and then `verify` exactly as after the recorded resume
  (the whole image), or a fresh boot that says why (`resume refused
  reason=WORD`, or no image on the disk: hibimg finds none);
- BAD: an exception, a hang past a bound, QEMU exiting or resetting, a
  resume whose `verify` differs, a fresh boot that says nothing while
  hibimg accepts the image, a complete image (the disk `hibernate ok`
  left) not resumed, a resume in the resume phase after the flush that
  made its first header write durable (the image was already entered),
  and any resume on the second boot (a second resume, or an image that a
  boot went past coming back).

Prints one line per state, then per phase and kind how many states were
tried and each outcome's count. Exit status 1 when any state is BAD; the
disks of BAD states are kept in WORK/bad/.
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import crash_states  # noqa: E402
import harness  # noqa: E402
import log_writes  # noqa: E402

MIB = 1 << 20
PRIOR_FILL = "fill 8 3"     # the earlier image, resumed before the recorded hibernation
RECORDED_FILL = "fill 24 5"  # memory the recorded image carries
BOOT_BOUND = 120     # s from QEMU start to `resume ok` or `torpor ready`
COMMAND_BOUND = 180  # s for a prompt or `verify`
EXIT_BOUND = 60      # s for QEMU to exit after `hibernate ok` or `poweroff`

# the first of: a whole `resume ok` line, `torpor ready` (a fresh boot), an exception
FIRST_RE = re.compile(r"(?m)^resume ok\b[^\r\n]*\r?\n|^torpor ready\b|exception vector=[^\r\n]*")
RESUME_OK_RE = re.compile(r"(?m)^resume ok\b[^\r\n]*\r?\n")
HIBERNATE_OK_RE = re.compile(r"(?m)^hibernate ok\b[^\r\n]*\r?\n")
REFUSED_RE = re.compile(r"(?m)^resume refused reason=(\S+)")
SKIPPED_RE = re.compile(r"(?m)^resume skipped reason=(\S+)")
EXCEPTION_RE = re.compile(r"exception vector=[^\r\n]*")
CHECK_RE = re.compile(r"(?m)^check=(\S+)")
NOTHING_BACK = "verify ok regions=0 kib=0"


class RecordingError(Exception):
    """The recorded run did not go as it must for the states to mean anything."""


def default_guest(name, **kwargs):
    return harness.Guest(name=name, **kwargs)


def copy_sparse(source, target):
    subprocess.run(["cp", "--sparse=always", str(source), str(target)], check=True)


def _data_ranges(fd, size):
    """The (start, end) byte ranges of a file that are not holes."""
    ranges = []
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        ranges.append((start, end))
        position = end
    return ranges


def same_content(first, second):
    """Whether two (sparse) files hold the same bytes; reads only the parts
    that are data in either (holes read as zeros)."""
    with open(first, "rb") as a, open(second, "rb") as b:
        size = os.fstat(a.fileno()).st_size
        if os.fstat(b.fileno()).st_size != size:
            return False
        ranges = sorted(_data_ranges(a.fileno(), size) + _data_ranges(b.fileno(), size))
        position = 0
        for start, end in ranges:
            start = max(start, position)
            while start < end:
                length = min(end - start, 4 * MIB)
                if os.pread(a.fileno(), length, start) != os.pread(b.fileno(), length, start):
                    return False
                start += length
            position = max(position, end)
    return True


# ---- recording --------------------------------------------------------------

class Recording:
    """The two recorded phases and what a whole resume must show."""

    def __init__(self, directory, phases, reference_verify, logs, variables):
        self.directory = directory
        self.phases = phases                    # {"hibernate": Phase, "resume": Phase}
        self.reference_verify = reference_verify  # `verify` after the recorded resume
        self._logs = logs
        # per phase, the guest's UEFI variable store as that phase's boot
        # left it: the image key a crash at any point of it leaves
        # (docs/security.md, The key; a boot sets its key before it
        # touches the disk)
        self.variables = variables

    def close(self):
        for log in self._logs:
            log.close()


def _expect(condition, message, guest=None):
    if not condition:
        raise RecordingError(message + ("\n" + guest.tail() if guest else ""))


def record(directory, start_guest=default_guest, prior=True, memory=512):
    """Records the hibernate and resume phases in `directory`. `prior`: the
    recorded hibernation happens in a guest that resumed an earlier image,
    so its disk starts with a used header (else it starts empty)."""
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    swap = os.path.join(directory, "swap.img")
    with open(swap, "wb") as f:
        f.truncate((memory + 64) * MIB)
    if prior:
        with start_guest("crash-record-prior", memory=memory, options=["--swap", swap]) as g:
            g.wait_ready(timeout=BOOT_BOUND)
            g.command(PRIOR_FILL)
            _hibernate(g)

    start_hibernate = os.path.join(directory, "start-hibernate.img")
    copy_sparse(swap, start_hibernate)
    hibernate_log = os.path.join(directory, "hibernate.log")
    with start_guest("crash-record-hibernate", memory=memory,
                     options=["--swap", swap, "--swap-log", hibernate_log]) as g:
        if prior:
            g.wait_for(RESUME_OK_RE, timeout=BOOT_BOUND)
            g.wait_prompt(timeout=COMMAND_BOUND)
        else:
            g.wait_ready(timeout=BOOT_BOUND)
        # what the boot wrote (the earlier image's `resuming` and `used`)
        # is on the disk in every state of this phase
        with log_writes.read_log(hibernate_log) as log:
            first_entry = len(log.entries)
        g.command(RECORDED_FILL)
        _hibernate(g)
    hibernate_vars = os.path.join(directory, "hibernate.vars.fd")
    shutil.copyfile(harness.vars_of(swap), hibernate_vars)

    start_resume = os.path.join(directory, "start-resume.img")
    copy_sparse(swap, start_resume)
    resume_log = os.path.join(directory, "resume.log")
    with start_guest("crash-record-resume", memory=memory,
                     options=["--swap", swap, "--swap-log", resume_log]) as g:
        g.wait_for(RESUME_OK_RE, timeout=BOOT_BOUND)
        g.wait_prompt(timeout=COMMAND_BOUND)
        verify = g.command("verify", timeout=COMMAND_BOUND)
        _expect(verify and verify[0].startswith("verify ok"), "verify after the recorded resume: %r" % verify, g)
        g.send("poweroff\r")
        _expect(g.wait_exit(EXIT_BOUND) == 0, "poweroff after the recorded resume", g)
    resume_vars = os.path.join(directory, "resume.vars.fd")
    shutil.copyfile(harness.vars_of(swap), resume_vars)

    logs = [log_writes.read_log(hibernate_log), log_writes.read_log(resume_log)]
    phases = {"hibernate": crash_states.Phase("hibernate", start_hibernate, logs[0], first_entry),
              "resume": crash_states.Phase("resume", start_resume, logs[1])}
    recording = Recording(directory, phases, verify[0], logs,
                          {"hibernate": hibernate_vars, "resume": resume_vars})
    # the logs explain the disks: replaying each whole log gives the disk
    # the phase ended with
    check = os.path.join(directory, "replayed.img")
    for phase, ended in ((phases["hibernate"], start_resume), (phases["resume"], swap)):
        with crash_states.state_file(phase, phase.flush_states()[-1], check):
            _expect(same_content(check, ended), "replaying %s does not give %s" % (phase.log.name, ended))
    return recording


def _hibernate(g):
    g.connect_qmp()  # before QEMU exits
    g.send("hibernate\r")
    g.wait_for(HIBERNATE_OK_RE, timeout=COMMAND_BOUND)
    _expect(g.wait_exit(EXIT_BOUND) == 0, "QEMU's exit status after hibernate ok", g)


# ---- one boot on a crash state ----------------------------------------------

class Boot:
    """What one boot on a crash-state disk did."""

    def __init__(self):
        self.outcome = None      # "resumed", "fresh", "crash", "hang" or "exit"
        self.detail = ""         # the exception line, the wait that ran out, QEMU's status
        self.refused = []        # `resume refused` reasons
        self.skipped = []        # `resume skipped` reasons
        self.verify = None       # the first line `verify` printed
        self.fresh_too = False   # a resume that also printed `torpor ready`
        self.log_path = None

    @property
    def broken(self):
        return self.outcome in ("crash", "hang", "exit")

    def describe(self, reference):
        if self.outcome == "resumed":
            return "resume ok, " + ("verify ok" if self.verify == reference else "verify %r" % self.verify)
        if self.outcome == "fresh":
            if self.refused:
                return "refused " + ",".join(self.refused)
            if self.skipped:
                return "skipped " + ",".join(self.skipped)
            return "no image"
        return self.outcome


def boot_on(start_guest, disk, name):
    """Boots on `disk` (-no-reboot: a reset ends QEMU), runs `verify` and
    `poweroff`; returns the Boot."""
    boot = Boot()
    with start_guest(name, options=["--swap", disk], qemu_args=["-no-reboot"]) as g:
        boot.log_path = g.log_path
        try:
            first = g.search(FIRST_RE, timeout=BOOT_BOUND)
            if first is None:
                try:
                    status = g.proc.wait(5)
                    boot.outcome, boot.detail = "exit", "QEMU exited (status %d) before a prompt" % status
                except subprocess.TimeoutExpired:
                    boot.outcome, boot.detail = "hang", "no resume ok or torpor ready within %d s" % BOOT_BOUND
                return boot
            if first.group(0).startswith("exception"):
                boot.outcome, boot.detail = "crash", first.group(0)
                return boot
            boot.outcome = "resumed" if first.group(0).startswith("resume ok") else "fresh"
            g.wait_prompt(timeout=COMMAND_BOUND)
            verify = g.command("verify", timeout=COMMAND_BOUND)
            boot.verify = verify[0] if verify else ""
            g.send("poweroff\r")
            status = g.wait_exit(EXIT_BOUND)
            if status != 0:
                boot.outcome, boot.detail = "exit", "QEMU exited with status %d after poweroff" % status
        except harness.GuestTimeout as error:
            boot.outcome, boot.detail = "hang", str(error).splitlines()[0]
        except harness.GuestError as error:
            boot.outcome, boot.detail = "exit", str(error).splitlines()[0]
        finally:
            output = g.output
            boot.refused = REFUSED_RE.findall(output)
            boot.skipped = SKIPPED_RE.findall(output)
            boot.fresh_too = bool(re.search(harness.READY_RE, output)) and bool(RESUME_OK_RE.search(output))
            exception = EXCEPTION_RE.search(output)
            if exception:
                boot.outcome, boot.detail = "crash", exception.group(0)
    return boot


def hibimg_check(disk):
    """hibimg's verdict on the disk's header and index (`check=WORD`)."""
    result = harness.hibimg("info", disk)  # with the state's variable store: the owner's view
    match = CHECK_RE.search(result.stdout)
    return match.group(1) if match else "unreadable"


# ---- judging ----------------------------------------------------------------

def commit_flush(phase):
    """The number of the flush that made the phase's first write durable
    (None when no flush follows a write)."""
    for group in phase.groups:
        if group.writes:
            return group.number
    return None


def judge(recording, phase, state, first, second, check):
    """The reasons a state is BAD (an empty list: good)."""
    reference = recording.reference_verify
    bad = []
    for which, boot in (("first boot", first), ("second boot", second)):
        if boot.broken:
            bad.append("%s: %s: %s" % (which, boot.outcome, boot.detail))
        if boot.outcome == "resumed" and boot.verify != reference:
            bad.append("%s resumed, but verify says %r, not %r" % (which, boot.verify, reference))
        if boot.outcome == "resumed" and boot.fresh_too:
            bad.append("%s booted fresh as well as resuming" % which)
        if boot.outcome == "fresh" and boot.verify != NOTHING_BACK:
            bad.append("%s booted fresh, but verify says %r" % (which, boot.verify))
    if phase.name == "resume" and first.outcome == "resumed":
        commit = commit_flush(phase)
        if commit is not None and state.completed_flushes >= commit:
            bad.append("resumed an image already entered (flush %d of its resume had completed)" % commit)
    complete = state.content == (phase.final_content if phase.name == "hibernate" else 0)
    if complete and first.outcome == "fresh":
        bad.append("the complete image (the disk hibernate ok left) was not resumed")
    if first.outcome == "fresh" and not first.refused and not first.skipped and check == "ok":
        bad.append("booted fresh without a reason, though hibimg accepts the image")
    if second.outcome == "resumed":
        bad.append("the second boot resumed: " + ("a second resume of the same image" if first.outcome == "resumed"
                                                  else "an image the first boot went past came back"))
    return bad


class Result:
    def __init__(self, number, state, check, first, second, bad, reference):
        self.number = number
        self.state = state
        self.check = check
        self.first = first
        self.second = second
        self.bad = bad
        self.outcome = "%s; then %s" % (first.describe(reference), second.describe(reference))

    def line(self):
        text = "[%3d] %s -> %s" % (self.number, self.state.label, self.outcome)
        for reason in self.bad:
            text += "\n      BAD: " + reason
        return text

    def as_dict(self):
        return dict(self.state.as_dict(), number=self.number, hibimg_check=self.check,
                    outcome=self.outcome, bad=self.bad,
                    logs=[self.first.log_path, self.second.log_path])


def try_state(recording, state, number, start_guest=default_guest, keep_bad=None):
    """Writes the state's disk, boots it twice, judges; returns a Result."""
    phase = recording.phases[state.phase]
    path = os.path.join(recording.directory, "state.img")
    with crash_states.state_file(phase, state, path):
        # the store the crashed boot left; the second boot gets the one the first left
        shutil.copyfile(recording.variables[state.phase], harness.vars_of(path))
        check = hibimg_check(path)
        first = boot_on(start_guest, path, "crash-%03d-first" % number)
        second = boot_on(start_guest, path, "crash-%03d-second" % number)
    result = Result(number, state, check, first, second,
                    judge(recording, phase, state, first, second, check), recording.reference_verify)
    if result.bad and keep_bad:
        os.makedirs(keep_bad, exist_ok=True)
        phase.write_state(state, os.path.join(keep_bad, "%03d.img" % number))
        with open(os.path.join(keep_bad, "%03d.json" % number), "w") as f:
            json.dump(result.as_dict(), f, indent=1)
    return result


def sample_states(recording, count, seed):
    """`count` states of both phases (crash_states.sample), except the
    resume phase's starting disk: it is the hibernate phase's last flush
    state, booted once as that."""
    states = crash_states.sample(list(recording.phases.values()), count + 1, seed)
    return [s for s in states if not (s.phase == "resume" and s.content == 0)][:count]


def small_sample(recording):
    """Three telling states: the complete image; its sealed header torn
    after its first sector (the new magic, state and checksum over the
    cleared rest of the header: refused, never `no-image`, which a tear
    that loses sector 0 gives); and the resume's first header write made
    durable. Chosen, not drawn: which torn state a seeded draw gives
    depends on the recording's content, which differs from run to run."""
    hibernate, resume = recording.phases["hibernate"], recording.phases["resume"]
    seal_group = max(index for index, group in enumerate(hibernate.groups)
                     if group.writes and group.number is not None)
    header = min(hibernate.groups[seal_group].writes, key=lambda write: write.sector)
    if header.count < 2:
        raise AssertionError("the sealed header write %s cannot be torn" % header.describe())
    return [
        next(s for s in hibernate.flush_states() if s.content == hibernate.final_content),
        hibernate.torn_state(seal_group, header, "prefix", (0,)),
        next(s for s in resume.flush_states() if s.flush == commit_flush(resume)),
    ]


# ---- the report -------------------------------------------------------------

PHASE_ORDER = ("hibernate", "resume")
KIND_ORDER = ("flush", "subset", "torn")


def report(results, out=sys.stdout):
    """Per phase and kind: states tried and the count of each outcome;
    returns how many states were BAD."""
    table = {}
    for result in results:
        key = (result.state.phase, result.state.kind)
        table.setdefault(key, collections.Counter())[result.outcome + (" [BAD]" if result.bad else "")] += 1
    for key in sorted(table, key=lambda k: (PHASE_ORDER.index(k[0]), KIND_ORDER.index(k[1]))):
        counts = table[key]
        out.write("%-9s %-6s tried %3d\n" % (key[0], key[1], sum(counts.values())))
        for outcome, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            out.write("    %4d  %s\n" % (count, outcome))
    bad = sum(1 for result in results if result.bad)
    out.write("crash states: %d tried, %d BAD\n" % (len(results), bad))
    return bad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=60, help="how many states to boot (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="the sampling seed (default: random, printed)")
    parser.add_argument("--no-prior", action="store_true",
                        help="record the hibernation on an empty disk, not over a used image")
    parser.add_argument("--work", default=os.path.join(harness.REPO, "build", "crash"),
                        help="the work folder, emptied first (default build/crash)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    shutil.rmtree(args.work, ignore_errors=True)
    started = time.monotonic()
    print("crash: recording (seed %d)" % seed, flush=True)
    recording = record(os.path.join(args.work, "record"), prior=not args.no_prior)
    try:
        for phase in recording.phases.values():
            print("crash: %s phase: %d log entries from entry %d, flushes %d, writes per flush %s"
                  % (phase.name, len(phase.log.entries), phase.first_entry, phase.flush_count,
                     [len(g.writes) for g in phase.groups]), flush=True)
        states = sample_states(recording, args.states, seed)
        print("crash: %d states (%s), recorded in %.0f s"
              % (len(states), ", ".join("%s %d" % (kind, count) for kind, count in
                                        collections.Counter(s.kind for s in states).items()),
                 time.monotonic() - started), flush=True)
        results = []
        for number, state in enumerate(states):
            result = try_state(recording, state, number, keep_bad=os.path.join(args.work, "bad"))
            results.append(result)
            print(result.line(), flush=True)
        with open(os.path.join(args.work, "results.json"), "w") as f:
            json.dump({"seed": seed, "states": args.states, "prior": not args.no_prior,
                       "results": [r.as_dict() for r in results]}, f, indent=1)
        print("crash: seed %d, %.0f s" % (seed, time.monotonic() - started))
        bad = report(results)
    finally:
        recording.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

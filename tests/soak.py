#!/usr/bin/python3
"""Soak: many hibernate/resume cycles of one guest on one torpor-swap disk.

    tests/soak.py [--cycles N] [--seed S] [--memory MIB]
    make soak [CYCLES=N] [SEED=S]

Each cycle boots QEMU on the same disk (from the second cycle on, the boot
must resume the image the cycle before wrote), then does a random mix
drawn from a printed seed, so a failure can be replayed with --seed: fill
and free regions of random sizes, set a random balloon target, hibernate
by the console or by the power button, and sometimes start the next QEMU
with an extra device. After every resume it checks `resume ok`, `verify ok`
with exactly the regions it expects, an empty balloon list whose pages
came back (discarded_pages), and `mem` adding up. Prints one line per cycle
and a report: cycles, failures (must be 0), the longest cycle. Exit status
0 when every cycle passed."""

import argparse
import os
import random
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))

import harness  # noqa: E402

MIB = 1 << 20
HIBERNATE_OK = re.compile(r"hibernate ok pages=(\d+) ")
RESUME_OK = re.compile(r"(?m)^resume ok pages=(\d+) ms=(\d+)(.*?)\r?\n")


class CycleFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CycleFailure(message)


def values(guest, command):
    return {k: int(v) for k, v in guest.command_values(command).items() if v.isdigit()}


def wait_balloon(guest, value, timeout=120):
    guest.qmp("balloon", value=value)
    deadline = time.monotonic() + timeout
    while guest.qmp("query-balloon")["actual"] != value:
        check(time.monotonic() < deadline, "balloon did not reach %d" % value)
        time.sleep(0.05)  # bounded poll of a host-side value


def check_memory_adds_up(guest):
    mem = values(guest, "mem")
    check(mem["free_kib"] + mem["used_kib"] == mem["total_kib"], "mem does not add up: %r" % mem)
    check(mem["reserved_kib"] + mem["allocated_kib"] == mem["used_kib"], "mem does not add up: %r" % mem)
    return mem


def run_cycle(number, rng, swap, memory, regions, extra_device, resumed_expected):
    """One boot: check what came back, change things, hibernate. `regions`
    maps region id -> kib and is updated. Returns a summary string."""
    args = ["-device", "virtio-rng-pci"] if extra_device else []
    guest = harness.Guest(name="soak-%03d" % number, memory=memory, options=["--swap", swap],
                          qemu_args=args)
    with guest:
        guest.connect_qmp()
        if resumed_expected:
            match = guest.wait_for(RESUME_OK, timeout=300)
            check(match.group(0).split()[-1].startswith("read_us="), "resume incomplete: " + match.group(0))
            guest.wait_prompt()
            check(not re.search(harness.READY_RE, guest.output), "booted fresh as well as resuming")
            kib = sum(regions.values())
            verify = guest.command("verify", timeout=300)
            check(verify == ["verify ok regions=%d kib=%d" % (len(regions), kib)],
                  "verify after resume: %r, expected %d regions, %d KiB" % (verify, len(regions), kib))
            balloon = values(guest, "balloon")
            check(balloon["list_pages"] == 0 and balloon["actual_pages"] == 0, "balloon after resume: %r" % balloon)
        else:
            guest.wait_ready()
            check("resume ok" not in guest.output, "resumed when no image was expected")
        check_memory_adds_up(guest)

        # the random mix
        for _ in range(rng.randint(1, 4)):
            if regions and rng.random() < 0.35:
                victim = rng.choice(sorted(regions))
                check(guest.command("free %d" % victim)[0].startswith("free id=%d" % victim), "free failed")
                del regions[victim]
            elif len(regions) < 12:
                mib = rng.choice([1, 2, 3, 5, 8, 13, 21, 34])
                line = guest.command("fill %d %d" % (mib, rng.randint(1, 1 << 30)), timeout=120)[0]
                found = re.match(r"fill id=(\d+) kib=(\d+)", line)
                check(found, "fill failed: %r" % line)
                regions[int(found.group(1))] = int(found.group(2))
        ballooned = rng.choice([0, 16, 64, 128])
        if ballooned:
            wait_balloon(guest, (memory - ballooned) * MIB)
        check_memory_adds_up(guest)

        by_button = rng.random() < 0.3
        started = time.monotonic()
        if by_button:
            guest.qmp("system_powerdown")
        else:
            guest.send("hibernate\r")
        match = guest.wait_for(HIBERNATE_OK, timeout=300)
        check(guest.wait_exit(timeout=120) == 0, "QEMU did not exit 0 after hibernate")
        return "regions=%d kib=%d ballooned_mib=%d by=%s extra_device=%d pages=%s hibernate_s=%.1f" % (
            len(regions), sum(regions.values()), ballooned, "button" if by_button else "console",
            int(extra_device), match.group(1), time.monotonic() - started)


def soak(cycles, seed, memory):
    rng = random.Random(seed)
    print("soak: seed=%d cycles=%d memory_mib=%d" % (seed, cycles, memory), flush=True)
    failures, longest = 0, 0.0
    regions = {}
    with tempfile.TemporaryDirectory(prefix="torpor-soak.") as directory:
        swap = os.path.join(directory, "swap.img")
        resumed_expected = False
        for number in range(cycles):
            started = time.monotonic()
            try:
                summary = run_cycle(number, rng, swap, memory, regions, rng.random() < 0.2, resumed_expected)
                resumed_expected = True
                status = "ok"
            except (CycleFailure, harness.GuestError) as error:
                failures += 1
                summary = str(error).splitlines()[0]
                status = "FAIL"
                # start over from a fresh disk so later cycles still test something
                os.unlink(swap) if os.path.exists(swap) else None
                regions.clear()
                resumed_expected = False
            seconds = time.monotonic() - started
            longest = max(longest, seconds)
            print("cycle %d %s seconds=%.1f %s" % (number, status, seconds, summary), flush=True)
    print("soak: cycles=%d failures=%d longest_cycle_s=%.1f seed=%d" % (cycles, failures, longest, seed))
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=int(os.environ.get("CYCLES", "50")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or time.time_ns() % 1000000))
    parser.add_argument("--memory", type=int, default=512)
    options = parser.parse_args()
    return 1 if soak(options.cycles, options.seed, options.memory) else 0


if __name__ == "__main__":
    sys.exit(main())

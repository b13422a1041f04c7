"""The page allocator seen through the shell: fill/verify/free regions of
pseudo-random data, and verify's detection of a corrupted page."""

import re

FILL_RE = re.compile(r"fill id=(\d+) kib=(\d+) sum=(?:0x)?([0-9a-fA-F]+)")


def fill(guest, args, kib):
    """Runs `fill ARGS`; returns (id, sum) after checking the line."""
    lines = guest.command("fill " + args)
    found = [FILL_RE.fullmatch(line) for line in lines if line.startswith("fill ")]
    assert found and found[0], "fill %s printed %r" % (args, lines)
    region, size, checksum = found[0].groups()
    assert int(size) == kib, lines
    return int(region), int(checksum, 16)


def verify(guest):
    lines = guest.command("verify")
    results = [line for line in lines if line.startswith("verify ")]
    assert len(results) == 1, lines
    return results[0]


def free_kib(guest):
    return int(guest.command_values("mem")["free_kib"])


def no_errors(lines):
    assert not [line for line in lines if line.startswith("error:")], lines
    return lines


def test_fill_verify_free(guest):
    g = guest()
    g.wait_ready()
    free_initial = free_kib(g)

    first, first_sum = fill(g, "16 7", 16384)
    free_after_fill = free_kib(g)
    assert free_initial - free_after_fill >= 16384, (free_initial, free_after_fill)
    assert verify(g) == "verify ok regions=1 kib=16384"

    second, _ = fill(g, "8", 8192)
    assert second != first
    assert verify(g) == "verify ok regions=2 kib=24576"

    free_before = free_kib(g)
    no_errors(g.command("free %d" % first))
    free_after = free_kib(g)
    assert free_after - free_before >= 16384, (free_before, free_after)
    assert verify(g) == "verify ok regions=1 kib=8192"

    again, again_sum = fill(g, "16 7", 16384)
    assert again_sum == first_sum, "same size and seed gave a different sum"
    other, other_sum = fill(g, "16 8", 16384)
    assert other_sum != first_sum, "different seeds gave the same sum"
    assert verify(g) == "verify ok regions=3 kib=40960"

    for region in (second, again, other):
        no_errors(g.command("free %d" % region))
    assert verify(g).startswith("verify ok regions=0")
    free_final = free_kib(g)
    assert abs(free_final - free_initial) <= 64, (
        "freeing every region left free_kib at %d, was %d" % (free_final, free_initial))


def test_verify_detects_corruption(guest):
    g = guest()
    g.wait_ready()
    region, _ = fill(g, "4 1", 4096)
    page = 517
    lines = g.command("corrupt %d %d" % (region, page))
    assert "corrupt id=%d page=%d" % (region, page) in lines, lines
    assert verify(g) == "verify FAIL region=%d page=%d" % (region, page)
    assert g.command_values("uptime")["ms"].isdigit()

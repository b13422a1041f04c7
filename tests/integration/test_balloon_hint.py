"""Free page hinting (virtio 1.2, 5.5.6.7) under a real live migration on
one host: a guest with `--free-page-hint` (plus free page reporting and
deflate-on-oom on the same device) migrates to a second QEMU started with
`-incoming`; QEMU skips the pages the guest hinted, the destination gets
every hinted block back into its allocator (DONE), `verify` passes there,
and the destination hibernates and resumes in a third QEMU. An allocation
that needs the hinted memory while a round runs ends the round early
instead of failing, and the memory it wrote arrives on the destination.
A freeze (what hibernation does first) during a round gives every block
back before anything else happens.

All three QEMUs share the swap and data disk files (the destination takes
their locks only when it runs); each has its own OVMF vars copy, whose
content comes across in the migration stream.
"""

import time

import harness
from test_balloon import PAGES_PER_MIB, balloon_state, fill, mem_state, verify_ok
from test_hibernate import hibernate_ok
from test_resume import resume_ok

RAM_MIB = 1024
OPTIONS_PROPS = "deflate-on-oom=on,free-page-reporting=on"


def disks(tmp_path):
    """run-qemu.sh options for a guest the migration can move: hints on,
    and disk files all QEMUs of the test share."""
    return ["--free-page-hint", "--balloon", OPTIONS_PROPS,
            "--swap", str(tmp_path / "swap.img"), "--data", str(tmp_path / "data.img")]


def start_pair(guest, tmp_path):
    options = disks(tmp_path)
    source = guest(memory=RAM_MIB, options=options)
    source.wait_ready()
    source.connect_qmp()
    socket_path = str(tmp_path / "migrate.sock")
    destination = guest(memory=RAM_MIB, options=options,
                        qemu_args=["-incoming", "unix:" + socket_path])
    return source, destination, socket_path, options


def wait_balloon(g, condition, timeout, what):
    """Polls `balloon` until condition(state) holds; returns the state."""
    deadline = time.monotonic() + timeout
    while True:
        state = balloon_state(g)
        if condition(state):
            return state
        assert time.monotonic() < deadline, "%s: %r\n%s" % (what, state, g.tail())
        time.sleep(0.2)  # bounded poll of the guest's own counters


def test_migration_with_hints_then_verify_hibernate_resume(guest, tmp_path):
    """The hinted pages are not sent, come back to the allocator on the
    destination, and nothing the guest holds is lost on the way."""
    source, destination, socket_path, options = start_pair(guest, tmp_path)
    b = balloon_state(source)
    assert {"free_page_hint", "reporting", "deflate_on_oom"} <= set(b["features"]), b
    assert b["hint_rounds"] == 0 and b["hint_held_pages"] == 0, b
    fill(source, 64, 3)
    before = mem_state(source)

    info = harness.migrate(source, destination, socket_path, timeout=600)
    source.close()

    state = wait_balloon(destination, lambda s: s["hint_held_pages"] == 0, 60,
                         "hinted blocks not all back after the migration")
    assert state["hint_rounds"] >= 1, state
    assert destination.command_values("balloon")["hint"] == "idle"
    # most free memory was hinted in the round(s)
    assert state["hinted_pages"] >= before["free_kib"] // 4 // 2, (state, before)
    # QEMU sent (in full or as a zero page) far fewer pages than RAM holds:
    # without hints every page goes out at least once
    ram = info["ram"]
    pages_sent = ram["normal"] + ram["duplicate"]
    assert pages_sent < RAM_MIB * PAGES_PER_MIB // 2, ram
    verify_ok(destination, 1, 64 * 1024)
    after = mem_state(destination)
    assert after["hinted_kib"] == 0, after
    # every hinted block is free again: the allocator is where it was
    # (free page reporting may hold a few blocks at any moment)
    assert after["free_kib"] + after["reporting_kib"] >= before["free_kib"] + before["reporting_kib"] - 1024, (
        before, after)

    hibernate_ok(destination)
    resumed = guest(memory=RAM_MIB, options=options)
    resume_ok(resumed)
    verify_ok(resumed, 1, 64 * 1024)


def test_allocation_during_a_round_ends_it_early(guest, tmp_path):
    """A migration held at 256 KiB/s keeps the first round's blocks out of
    the allocator; a fill that needs them ends the round (it does not
    fail), and the data it wrote reaches the destination."""
    source, destination, socket_path, _ = start_pair(guest, tmp_path)
    fill(source, 32, 4)
    free_kib = mem_state(source)["free_kib"]
    destination.connect_qmp()
    harness.wait_path(socket_path, alive=lambda: destination.proc.poll() is None)
    # 256 KiB/s: the first pass over the pages not hinted (the kernel and
    # the fill, ~55 MiB) takes minutes, and the first round lasts as long
    source.qmp("migrate-set-parameters", **{"max-bandwidth": 1 << 18})
    source.qmp("migrate", uri="unix:" + socket_path)
    # the round's blocks: more than half the RAM out of the allocator
    wait_balloon(source, lambda s: s["hint_held_pages"] * 4 >= RAM_MIB * 1024 // 2, 120,
                 "no round holding blocks")
    held = mem_state(source)
    assert held["hinted_kib"] >= RAM_MIB * 1024 // 2, held

    # more than is left outside the round: only the early end makes room
    want_mib = (held["free_kib"] + held["hinted_kib"]) // 1024 - 128
    assert want_mib * 1024 > held["free_kib"], held
    fill(source, want_mib, 5)
    state = balloon_state(source)
    assert state["hint_early_ends"] >= 1, state
    assert source.qmp("query-migrate")["status"] == "active"
    assert "balloon: free page hinting ended early" in source.output

    # let the migration finish: the pages fill wrote were dirtied after
    # their hint, so they are sent
    finish_migration(source)
    source.close()
    verify_ok(destination, 2, (32 + want_mib) * 1024)
    wait_balloon(destination, lambda s: s["hint_held_pages"] == 0, 60, "blocks held after DONE")
    assert mem_state(destination)["free_kib"] >= free_kib - want_mib * 1024 - 1024


def finish_migration(source, timeout=600):
    """Lifts the bandwidth limit and polls until the migration completed."""
    source.qmp("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
    deadline = time.monotonic() + timeout
    while True:
        info = source.qmp("query-migrate")
        if info["status"] == "completed":
            return info
        assert info["status"] == "active", info
        assert time.monotonic() < deadline, "migration did not complete: %r" % info
        time.sleep(0.1)  # bounded poll of the source's migration state


def test_freeze_during_a_round_gives_the_blocks_back(guest, tmp_path):
    """What a hibernation does first (the drivers' freeze) while a round
    holds blocks: the round ends and every block is back in the allocator
    before any snapshot could be taken; after thaw the migration still
    completes and the destination passes verify."""
    source, destination, socket_path, _ = start_pair(guest, tmp_path)
    fill(source, 32, 6)
    free_kib = mem_state(source)["free_kib"]
    destination.connect_qmp()
    harness.wait_path(socket_path, alive=lambda: destination.proc.poll() is None)
    source.qmp("migrate-set-parameters", **{"max-bandwidth": 1 << 18})  # see above
    source.qmp("migrate", uri="unix:" + socket_path)
    wait_balloon(source, lambda s: s["hint_held_pages"] * 4 >= RAM_MIB * 1024 // 2, 120,
                 "no round holding blocks")

    assert "virtio freeze ok" in source.command("virtio freeze")
    m = mem_state(source)
    assert m["hinted_kib"] == 0, m
    assert m["free_kib"] + m["reporting_kib"] >= free_kib - 1024, (free_kib, m)
    state = balloon_state(source)
    assert state["hint_held_pages"] == 0, state
    assert source.command_values("balloon")["hint"] == "idle"
    assert "virtio thaw ok" in source.command("virtio thaw")

    finish_migration(source)
    source.close()
    verify_ok(destination, 1, 32 * 1024)
    wait_balloon(destination, lambda s: s["hint_held_pages"] == 0, 60, "blocks held after DONE")

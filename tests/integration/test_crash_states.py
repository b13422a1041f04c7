"""Crash states in make test: a small sample of what `make crash` runs
(tests/crash/crash_runner.py, docs/reliability.md). A hibernation and
the resume of its image are recorded with run-qemu.sh --swap-log; torpor
then boots twice on three crash states built from the logs: the complete
image (it must resume, then never again), the image with its sealed
header torn (never resumed: a fresh boot that says why), and the disk
once the resume's first header write was flushed (the image was entered:
never resumed again)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crash"))

import crash_runner  # noqa: E402


def test_crash_states_small_sample(guest, tmp_path):
    def start(name, **kwargs):
        return guest(**kwargs)

    recording = crash_runner.record(tmp_path / "record", start, prior=False)
    try:
        states = crash_runner.small_sample(recording)
        results = [crash_runner.try_state(recording, state, number, start)
                   for number, state in enumerate(states)]
    finally:
        recording.close()
    summary = "\n".join(result.line() for result in results)
    assert not any(result.bad for result in results), summary
    complete, torn, entered = results
    assert complete.first.outcome == "resumed", summary
    assert torn.first.outcome == "fresh" and torn.first.refused, summary
    assert entered.first.outcome == "fresh" and entered.first.refused, summary
    assert all(result.second.outcome == "fresh" for result in results), summary

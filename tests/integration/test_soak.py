"""The quick variant of `make soak` (tests/soak.py): three hibernate and
resume cycles of one guest with a random mix from a fresh seed, printed in
the failure message so the run can be replayed (`make soak SEED=...`)."""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import soak  # noqa: E402  (tests/soak.py)


def test_quick_soak(capsys):
    seed = random.randrange(1000000)
    failures = soak.soak(cycles=3, seed=seed, memory=512)
    output = capsys.readouterr().out
    assert failures == 0, "replay with: make soak CYCLES=3 SEED=%d\n%s" % (seed, output)
    assert output.count(" ok seconds=") == 3, output

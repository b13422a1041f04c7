"""pytest fixtures for the QEMU integration tests.

`guest` is a function-scoped factory: `guest(memory=512, machine="q35")`
starts a Guest (see harness.py) whose serial output is logged to
build/test-logs/<test name>.log. Every guest is killed when the test ends,
and a watchdog kills them once the test has run TEST_TIME_LIMIT seconds
(default 300), so every wait ends and no test can hang. A failed test's
report includes the tail of each guest's serial output.

`libvirt_domain` (libvirt_harness.py) is the same for domains under
libvirt, on the daemons of the session fixture `libvirt_daemons`.
"""

import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
# the libvirt tests' fixtures, libvirt_daemons and libvirt_domain
from libvirt_harness import libvirt_daemons, libvirt_domain  # noqa: E402,F401

TEST_TIME_LIMIT = float(os.environ.get("TORPOR_TEST_TIME_LIMIT", "300"))


@pytest.fixture
def guest(request):
    """Returns start(memory=512, machine="q35", qemu_args=(), options=())
    -> harness.Guest; all guests it started are closed after the test."""
    guests = []

    def start(memory=512, machine="q35", qemu_args=(), options=()):
        name = request.node.name
        if guests:
            name += ".%d" % (len(guests) + 1)
        started = harness.Guest(name=name, memory=memory, machine=machine,
                                qemu_args=qemu_args, options=options)
        guests.append(started)
        return started

    def expire():
        for started in list(guests):
            started.kill_reason = "the test ran past %.0fs" % TEST_TIME_LIMIT
            started.kill()

    watchdog = threading.Timer(TEST_TIME_LIMIT, expire)
    watchdog.daemon = True
    watchdog.start()
    request.node.torpor_guests = guests
    try:
        yield start
    finally:
        watchdog.cancel()
        for started in guests:
            started.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for started in getattr(item, "torpor_guests", []):
            report.sections.append(
                ("serial output of %s" % started.name, started.tail(3000)))

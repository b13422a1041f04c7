#!/usr/bin/python3
"""Runs torpor's test suites and prints one closing line, `N passed, N
failed`: the host unit tests (cmocka binaries, given as arguments, read in
TAP form) and then the QEMU integration tests (pytest, two at a time).
Exits non-zero when anything failed."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_unit_test(binary: str) -> tuple[int, int]:
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
    result = subprocess.run([binary], env=env, capture_output=True, text=True)
    passed = failed = 0
    for line in result.stdout.splitlines():
        if line.startswith("ok "):
            passed += 1
        elif line.startswith("not ok "):
            failed += 1
    if result.returncode != 0 and failed == 0:
        failed = 1  # a crash (a sanitizer abort) before the failing test was reported
    if failed:
        sys.stdout.write(result.stdout + result.stderr)
    print(f"unit {os.path.basename(binary)}: {passed} passed, {failed} failed")
    return passed, failed


def run_integration_tests() -> tuple[int, int, int]:
    report = os.path.join(ROOT, "build", "integration.xml")
    if os.path.exists(report):
        os.remove(report)
    workers = os.environ.get("TEST_WORKERS", "2")
    # loadgroup: like load, but tests marked xdist_group("libvirt") all run
    # on one worker, one after the other (one libvirtd, one domain at a time)
    command = ["/usr/bin/python3", "-m", "pytest", "-q", "-n", workers, "--dist", "loadgroup",
               f"--junitxml={report}", os.path.join(ROOT, "tests", "integration")]
    status = subprocess.run(command, cwd=ROOT).returncode
    if not os.path.exists(report):
        print(f"integration: pytest wrote no report (exit {status})")
        return 0, 1, 0
    suite = ElementTree.parse(report).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    total = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    if status not in (0, 1) and failed == 0:
        failed = 1  # pytest itself failed (usage, collection, internal error)
    return total - failed - skipped, failed, skipped


def main() -> int:
    passed = failed = skipped = 0
    for binary in sys.argv[1:]:
        p, f = run_unit_test(binary)
        passed += p
        failed += f
    p, f, s = run_integration_tests()
    passed += p
    failed += f
    skipped += s
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Static checks: cppcheck over the kernel, the tools and the host code
finds nothing but the findings listed, each with its reason, in
tests/cppcheck-allowed.txt."""

import os
import re
import shutil
import subprocess

import pytest

import harness

ALLOWED = os.path.join(harness.REPO, "tests", "cppcheck-allowed.txt")
SOURCES = ["boot", "init", "arch", "console", "acpi", "kernel", "mm", "pci", "pm", "virtio", "agent", "shell", "lib", "crypto", "tools"]


def allowed_findings():
    with open(ALLOWED) as f:
        return {tuple(line.split()) for line in f if line.strip() and not line.startswith("#")}


@pytest.mark.skipif(shutil.which("cppcheck") is None, reason="cppcheck is not installed (scripts/deps.sh)")
def test_cppcheck_finds_nothing_unlisted():
    result = subprocess.run(
        ["cppcheck", "-q", "--enable=warning,performance,portability,style", "--std=c11", "-I.",
         "-D__x86_64__", "--suppress=missingIncludeSystem", "--error-exitcode=0",
         "--template={file} {id} {line}: {severity}: {message}", *SOURCES],
        cwd=harness.REPO, capture_output=True, text=True, timeout=600)
    findings = [line for line in result.stderr.splitlines()
                if re.match(r"^\S+ \S+ \d+: (error|warning|style|performance|portability): ", line)]
    allowed = allowed_findings()
    unlisted = [line for line in findings if tuple(line.split()[:2]) not in allowed]
    assert not unlisted, "cppcheck findings not in tests/cppcheck-allowed.txt:\n" + "\n".join(unlisted)
    # a listed finding that went away should leave the list too
    seen = {tuple(line.split()[:2]) for line in findings}
    assert allowed <= seen, "listed but no longer found: %s" % sorted(allowed - seen)

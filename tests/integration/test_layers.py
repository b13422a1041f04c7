"""The layering of docs/architecture.md holds (tools/check_layers.py), and
the check itself fails on planted violations: an upward include, an
include circle, a libc header, a file in no layer."""

import os
import shutil
import subprocess
import sys

import pytest

import harness

sys.path.insert(0, os.path.join(harness.REPO, "tools"))

import check_layers  # noqa: E402


def test_the_tree_keeps_its_layers():
    result = subprocess.run(["/usr/bin/python3", os.path.join(harness.REPO, "tools", "check_layers.py")],
                            cwd=harness.REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "check_layers: ok"


@pytest.fixture
def tree(tmp_path):
    """A copy of the kernel's sources and docs/architecture.md."""
    for folder in ("boot", "init", "arch", "console", "acpi", "kernel", "mm", "pci", "pm",
                   "virtio", "agent", "shell", "crypto", "lib", "docs"):
        source = os.path.join(harness.REPO, folder)
        if os.path.isdir(source):
            shutil.copytree(source, tmp_path / folder,
                            ignore=shutil.ignore_patterns("*.png"))
    assert check_layers.check(str(tmp_path)) == []
    return tmp_path


def plant(tree, path, line):
    with open(tree / path) as f:
        text = f.read()
    first = text.index("#include")
    with open(tree / path, "w") as f:
        f.write(text[:first] + line + "\n" + text[first:])


def test_an_upward_include_is_found(tree):
    plant(tree, "mm/buddy.c", '#include "shell/shell.h"')
    problems = check_layers.check(str(tree))
    assert any("mm/buddy.c" in p and "shell/shell.h" in p and "upward" in p for p in problems), problems


def test_a_circle_within_a_layer_is_found(tree):
    # virtio.c already includes virtio_blk's folder mates; make the core and
    # the balloon driver include each other
    plant(tree, "virtio/virtio.c", '#include "virtio/virtio_balloon.h"')
    plant(tree, "virtio/virtio_balloon.h", '#include "virtio/virtio.h"')
    problems = check_layers.check(str(tree))
    circles = [p for p in problems if p.startswith("include circle:")]
    assert circles and "virtio/virtio" in circles[0] and "virtio/virtio_balloon" in circles[0], problems


def test_a_libc_header_is_found(tree):
    plant(tree, "pm/resume.c", "#include <stdio.h>")
    problems = check_layers.check(str(tree))
    assert any("pm/resume.c" in p and "<stdio.h>" in p for p in problems), problems


def test_a_file_in_no_layer_is_found(tree):
    os.makedirs(tree / "net")
    (tree / "net" / "tcp.c").write_text('#include "lib/string.h"\n')
    problems = check_layers.check(str(tree))
    assert any("net/tcp.c" in p and "no layer" in p for p in problems), problems


def test_the_table_is_read_from_the_document(tree):
    # lift shell/ below mm/ in the document: the same tree now breaks it
    doc = tree / "docs" / "architecture.md"
    text = doc.read_text().replace("| 10 | `shell/` |", "| 1 | `shell/` |")
    doc.write_text(text)
    problems = check_layers.check(str(tree))
    assert any(p.startswith("shell/") and "upward" in p for p in problems), problems

#!/usr/bin/python3
"""Checks the kernel's layering: every #include goes to the same folder or
to a lower layer, no two modules include each other in a circle, and the
kernel uses no system header but the freestanding ones.

The layers are read from the table under "## Layers" in
docs/architecture.md (rows `| N | `folder/` | ... |`, lowest first), so
the document and the check cannot disagree. A module is a .c file and its
.h (mm/buddy.c and mm/buddy.h are the module mm/buddy).

usage: check_layers.py [ROOT]     exit status 0 when the tree keeps the rules
"""
import os
import re
import sys

KERNEL_FOLDERS_NOT_CHECKED = ("tests/", "tools/", "bench/", "build/", ".git/")
FREESTANDING = {"stdint.h", "stddef.h", "stdarg.h", "stdbool.h"}
# the firmware's own headers, only where the firmware is spoken to
FIRMWARE_HEADERS = {"efi.h", "efilib.h"}
FIRMWARE_USERS = ("boot/", "pm/power.c")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
ROW_RE = re.compile(r"^\|\s*(\d+)\s*\|\s*`([^`]+)`\s*\|", re.M)


def read_layers(root):
    """[(rank, prefix)] from docs/architecture.md; a prefix is a folder
    (`mm/`) or a single file (`boot/handoff.h`)."""
    with open(os.path.join(root, "docs", "architecture.md")) as f:
        text = f.read()
    start = text.find("## Layers")
    if start < 0:
        raise SystemExit("check_layers: docs/architecture.md has no '## Layers' section")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    layers = [(int(rank), prefix) for rank, prefix in ROW_RE.findall(section)]
    if not layers:
        raise SystemExit("check_layers: no layer rows under '## Layers'")
    return layers


def layer_of(path, layers):
    """The layer of the most specific matching prefix, or None."""
    best = None
    for rank, prefix in layers:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            if best is None or len(prefix) > len(best[1]):
                best = (rank, prefix)
    return best


def kernel_sources(root):
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        rel = "" if rel == "." else rel + "/"
        dirs[:] = [d for d in dirs if not (rel + d + "/").startswith(KERNEL_FOLDERS_NOT_CHECKED)
                   and not d.startswith(".")]
        for name in files:
            if name.endswith((".c", ".h")):
                yield rel + name


def module(path):
    return os.path.splitext(path)[0]


def find_circle(graph):
    """One circle of modules as a list, or None (depth-first, colours)."""
    colour, stack = {}, []

    def visit(node):
        colour[node] = "grey"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if colour.get(target) == "grey":
                return stack[stack.index(target):] + [target]
            if target not in colour:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        colour[node] = "black"
        return None

    for node in sorted(graph):
        if node not in colour:
            found = visit(node)
            if found:
                return found
    return None


def check(root):
    """The list of violations (strings); empty when the tree is clean."""
    layers = read_layers(root)
    problems = []
    graph = {}
    for path in sorted(kernel_sources(root)):
        own = layer_of(path, layers)
        if own is None:
            problems.append("%s: in no layer of docs/architecture.md" % path)
            continue
        with open(os.path.join(root, path), errors="replace") as f:
            text = f.read()
        for kind, target in INCLUDE_RE.findall(text):
            if kind == "<":
                if target in FREESTANDING:
                    continue
                if target in FIRMWARE_HEADERS and path.startswith(FIRMWARE_USERS):
                    continue
                problems.append("%s: includes <%s>, not a freestanding header" % (path, target))
                continue
            other = layer_of(target, layers)
            if other is None:
                problems.append("%s: includes \"%s\", which is in no layer" % (path, target))
                continue
            if module(target) != module(path):
                graph.setdefault(module(path), set()).add(module(target))
            if other[1] == own[1] or os.path.dirname(target) == os.path.dirname(path):
                continue
            if other[0] > own[0]:
                problems.append("%s (layer %d, %s) includes %s (layer %d, %s): upward"
                                % (path, own[0], own[1], target, other[0], other[1]))
    circle = find_circle(graph)
    if circle:
        problems.append("include circle: " + " -> ".join(circle))
    return problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for problem in problems:
        print("check_layers: " + problem)
    if not problems:
        print("check_layers: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

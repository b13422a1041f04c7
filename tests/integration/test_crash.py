"""CPU exception handling: `crash ud` and `crash pf` print a register dump
and a symbolized backtrace, then halt the system without resetting it."""

import re

import pytest

import harness

REGISTERS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
             "rip", "rflags", "cr0", "cr2", "cr3", "cr4"]
EXCEPTION_RE = re.compile(
    r"exception vector=(?P<vector>\d+) name=(?P<name>\S+) "
    r"error=0x(?P<error>[0-9a-fA-F]+) rip=0x(?P<rip>[0-9a-fA-F]+)")
CR2_RE = re.compile(r"\bcr2=0x([0-9a-fA-F]+)")
REGISTER_RE = re.compile(r"\b(r[a-z0-9]+|cr[0-4])=(?:0x)?([0-9a-fA-F]+)\b")
SYMBOL_RE = re.compile(r"\w*(?:shell_|crash)\w*")
KERNEL_SPAN = 64 << 20  # the faulting rip lies this close above image_base


@pytest.mark.parametrize("kind, vector", [("ud", 6), ("pf", 14)])
def test_crash_dump(guest, kind, vector):
    g = guest()
    image_base = int(harness.parse_banner(g.wait_ready())["image_base"], 16)
    g.connect_qmp()

    start = g.cursor
    g.send("crash %s\r" % kind)
    g.wait_for(r"system halted", timeout=30)
    lines = [harness.render(line) for line in g.output[start:g.cursor].split("\n")]

    # The exception line.
    heads = [i for i, line in enumerate(lines) if EXCEPTION_RE.search(line)]
    assert heads, "no `exception vector=... name=... error=0x... rip=0x...` line"
    head_line = lines[heads[0]]
    head = EXCEPTION_RE.search(head_line)
    assert int(head["vector"]) == vector, head_line
    error, rip = int(head["error"], 16), int(head["rip"], 16)
    assert image_base <= rip < image_base + KERNEL_SPAN, (
        "rip %#x is not in the kernel image at %#x" % (rip, image_base))
    if kind == "ud":
        assert error == 0, "#UD has no error code: %s" % head_line
    else:
        assert CR2_RE.search(head_line), "no cr2= on the page fault line: %s" % head_line
        assert error & 1 == 0, "an unmapped page gives a not-present fault: %#x" % error

    # The registers, between the exception line and the backtrace.
    marks = [i for i, line in enumerate(lines) if "backtrace" in line and i > heads[0]]
    assert marks, "no backtrace section after the exception line"
    registers = {}
    for line in lines[heads[0] + 1:marks[0]]:
        registers.update((k, int(v, 16)) for k, v in REGISTER_RE.findall(line))
    missing = [name for name in REGISTERS if name not in registers]
    assert not missing, "register dump lacks %s" % missing
    assert registers["rip"] == rip, "register rip differs from the exception line"
    assert registers["cr0"] & 0x80000001 == 0x80000001, "cr0 lacks PG/PE"
    assert registers["cr4"] & 0x20, "cr4 lacks PAE"
    assert registers["cr3"] != 0 and registers["rflags"] & 2, registers
    if kind == "pf":
        assert registers["cr2"] == int(CR2_RE.search(head_line)[1], 16)

    # The backtrace names the shell's crash code, then the system halts.
    assert "system halted" in lines[-1]
    frames = [line for line in lines[marks[0] + 1:-1] if line.strip()][:4]
    assert any(SYMBOL_RE.search(line) for line in frames), (
        "no shell_/crash symbol in the first frames: %r" % frames)

    # Halted, not reset: no second boot, QEMU still running, no RESET event.
    assert g.search(harness.READY_RE, timeout=3) is None, "the guest rebooted"
    assert g.proc.poll() is None, "QEMU exited"
    assert g.qmp("query-status")["status"] == "running"
    assert not [e for e in g.events if e["event"] in ("RESET", "SHUTDOWN")], g.events

"""The shell's handling of bad input and of line editing keys."""


def single_error(lines, what):
    assert len(lines) == 1 and lines[0].startswith("error:"), (
        "%s: expected exactly one `error:` line, got %r" % (what, lines))


def assert_alive(guest):
    lines = guest.command("uptime")
    assert lines and lines[0].startswith("uptime ms="), lines


def test_bad_input_and_line_editing(guest):
    g = guest()
    g.wait_ready()

    # Bad input: one error line each, and the shell keeps working.
    single_error(g.command("frobnicate"), "unknown command")
    assert_alive(g)
    for line in ("fill", "fill abc", "fill 999999", "free 12345"):
        single_error(g.command(line), line)
        assert_alive(g)
    mem = g.command_values("mem")
    assert int(mem["free_kib"]) + int(mem["used_kib"]) == int(mem["total_kib"]), mem
    verify = g.command("verify")
    assert verify and verify[0].startswith("verify ok regions=0"), verify

    # Backspace (DEL) removes the stray character.
    lines = g.command("memx\x7f")
    assert lines and lines[0].startswith("mem total_kib="), lines

    # Ctrl-U discards the typed line.
    lines = g.command("garbage\x15uptime")
    assert lines and lines[0].startswith("uptime ms="), lines

    # Ctrl-C abandons the line with a fresh prompt; nothing runs.
    g.send("garbage\x03")
    abandoned = g.wait_prompt(timeout=30)
    assert "error:" not in abandoned, abandoned
    lines = g.command("uptime")
    assert lines and lines[0].startswith("uptime ms="), (
        "after Ctrl-C the next line was not run on its own: %r" % lines)

"""The image key (docs/security.md, The key): efi_main keeps it in the
UEFI variable TorporImageKey of the guest's OVMF vars file, rotates it at
every boot (same chain, counter + 1, a fresh secret) and hands it to the
kernel, which keeps it out of every hibernation image. `hibimg key` reads
the variable from the vars file on the host."""

import os
import re
import subprocess

import harness
from test_hibernate import hibernate_ok

HIBIMG = os.path.join(harness.REPO, "build", "hibimg")
KEY_LINE_RE = re.compile(r"image_key source=\S+[^\r\n]*")


def key_line(g):
    """The boot's `image_key ...` line as a dict (waits for the prompt first)."""
    g.wait_ready()
    lines = KEY_LINE_RE.findall(g.output)
    assert len(lines) == 1, lines
    return lines[0], harness.parse_values(lines[0])


def hibimg_key(vars_path, *flags):
    """`hibimg key VARS` -> (exit status, fields of its line)."""
    result = subprocess.run([HIBIMG, "key", *flags, vars_path], capture_output=True, text=True, timeout=60)
    fields = harness.parse_values(result.stdout) if result.returncode == 0 else {}
    return result.returncode, fields, result.stderr


def boot_once(guest, vars_path, *options, qemu_args=()):
    """Boots to the prompt on vars_path, returns the key line's fields, and
    stops QEMU (the variable is written before ExitBootServices)."""
    g = guest(options=["--vars", vars_path, "--no-data", *options], qemu_args=qemu_args)
    line, fields = key_line(g)
    g.close()
    return line, fields


def test_boots_step_the_counter_on_one_chain(guest, tmp_path):
    vars_path = str(tmp_path / "vars.fd")
    line, first = boot_once(guest, vars_path)
    assert first["source"] == "rng-protocol" and first["resume_key"] == "0", line
    assert first["write_key"] == "1" and first["counter"] == "1", line
    status, stored, _ = hibimg_key(vars_path)
    assert status == 0 and stored == {"chain": first["chain"], "counter": "1"}, stored

    line, second = boot_once(guest, vars_path)
    assert second["resume_key"] == "1" and second["resume_counter"] == "1", line
    assert second["counter"] == "2" and second["chain"] == first["chain"], line
    status, stored2, _ = hibimg_key(vars_path, "--show-secret")
    assert status == 0 and stored2["chain"] == first["chain"] and stored2["counter"] == "2", stored2
    assert re.fullmatch(r"[0-9a-f]{64}", stored2["secret"]), stored2

    # another vars file is another chain
    other = str(tmp_path / "other.fd")
    line, third = boot_once(guest, other)
    assert third["counter"] == "1" and third["chain"] != first["chain"], line


def test_no_entropy_says_so_and_deletes_the_key(guest, tmp_path):
    vars_path = str(tmp_path / "vars.fd")
    boot_once(guest, vars_path)
    assert hibimg_key(vars_path)[0] == 0
    # no virtio-rng (no EFI_RNG_PROTOCOL) and QEMU's default CPU, without RDRAND
    line, fields = boot_once(guest, vars_path, "--no-rng")
    assert fields["source"] == "none" and fields["write_key"] == "0", line
    assert fields["resume_key"] == "1" and fields["resume_counter"] == "1", line  # read before deleting
    assert "(images will not be authenticated)" in line and "counter=" not in line.replace("resume_counter", ""), line
    status, _, error = hibimg_key(vars_path)
    assert status == 1 and "no TorporImageKey variable" in error, error


def test_rdrand_when_there_is_no_rng_device(guest, tmp_path):
    vars_path = str(tmp_path / "vars.fd")
    line, fields = boot_once(guest, vars_path, "--no-rng", qemu_args=["-cpu", "max"])
    assert fields["source"] == "rdrand" and fields["write_key"] == "1" and fields["counter"] == "1", line
    status, stored, _ = hibimg_key(vars_path)
    assert status == 0 and stored["chain"] == fields["chain"], stored


def secret_pieces(vars_path):
    status, fields, error = hibimg_key(vars_path, "--show-secret")
    assert status == 0, error
    secret = bytes.fromhex(fields["secret"])
    # the whole secret, and each 8-byte quarter (a copy torn in registers or
    # half-erased would still show a quarter)
    return [secret] + [secret[i:i + 8] for i in range(0, 32, 8)]


def test_neither_key_is_in_the_hibernation_image(guest, tmp_path):
    """Boot 1 sets key 1; boot 2 reads it as its resume key and sets key 2,
    then hibernates: the image on the swap disk holds neither secret (the
    handoff in the kernel image was erased, the secret page is left out)."""
    vars_path, swap = str(tmp_path / "vars.fd"), str(tmp_path / "swap.img")
    boot_once(guest, vars_path, "--swap", swap)
    first = secret_pieces(vars_path)

    g = guest(options=["--vars", vars_path, "--swap", swap, "--no-data"])
    line, fields = key_line(g)
    assert fields["resume_key"] == "1" and fields["write_key"] == "1" and fields["counter"] == "2", line
    second = secret_pieces(vars_path)
    pages, _, image_bytes = hibernate_ok(g)
    assert pages > 100 and image_bytes > 0

    with open(swap, "rb") as f:
        disk = f.read()
    # the image is really there: the kernel's own banner text is in it
    assert b"images will not be authenticated" in disk
    for piece in first + second:
        assert disk.find(piece) < 0, "secret bytes %s at offset %d of the swap disk" % (piece.hex(), disk.find(piece))

"""Authenticated and encrypted hibernation images (docs/security.md): the
default image is authenticated under the key in the guest's own UEFI
variable store, and anything else is refused with a reason: another
guest's image (`no-key`), an older image of the same guest
(`replayed-image`), a page or index entry taken from one (`bad-mac`), a
plain image where keys exist (`not-authenticated`). With
`hibernate_encrypt=on` the disk holds no plaintext of the guest's memory.

Each refusal boots fresh and keeps the image for hibimg, which checks an
authenticated image only with the owner's variable store (`--vars`)."""

import os
import re
import shutil
import struct

import harness
from test_hibernate import hibernate_ok
from test_hibimg import checksum
from test_resume import boots_fresh_refusing, resume_ok

OPTIONS = "name=opt/torpor/cmdline,string=%s"
PROTECTION_RE = re.compile(r"hibernate: saving up to \d+ pages to torpor-swap, protection=(\w+)")
PAGE = 4096
ENTRY = struct.Struct("<Q16s")  # pm/image_format.h: pfn_and_flags, checksum or tag
# the kernel's banner format string (init/bringup.c): in its .rodata, so in
# every image of its memory
MARKER = b"\n\ntorpor %s (revision %s)\n"


def hibernate_with(g, fill):
    g.wait_ready()
    g.command(fill)
    g.connect_qmp()
    pages = hibernate_ok(g)[0]
    return pages, PROTECTION_RE.search(g.output).group(1)


class Image:
    """A version 3 image on a disk file, read as the format says."""

    def __init__(self, path):
        with open(path, "rb") as f:
            header = f.read(PAGE)
            self.page_count, self.zero_pages, self.data_pages, self.index_sector, self.data_sector = \
                struct.unpack_from("<5Q", header, 1080)
            self.key_counter = struct.unpack_from("<Q", header, 1824)[0]
            f.seek(self.index_sector * 512)
            index = f.read(self.page_count * ENTRY.size)
        self.entries = [ENTRY.unpack_from(index, i * ENTRY.size) for i in range(self.page_count)]
        self.path = path

    def data_pages_by_frame(self):
        """{frame: (entry number, data offset)} of the pages with data."""
        pages, next_offset = {}, self.data_sector * 512
        for number, (pfn_and_flags, _) in enumerate(self.entries):
            if pfn_and_flags & 1:
                continue
            pages[pfn_and_flags >> 12] = (number, next_offset)
            next_offset += PAGE
        return pages

    def read(self, offset, length):
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def write(self, offset, data):
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def entry_offset(self, number):
        return self.index_sector * 512 + number * ENTRY.size


def test_default_image_is_authenticated_and_checked_only_with_the_key(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    pages, protection = hibernate_with(guest(options=["--swap", swap]), "fill 16 91")
    assert protection == "authenticated"
    owner = harness.hibimg("verify", swap)  # with swap.img.vars.fd: the owner
    assert owner.returncode == 0, owner.stdout + owner.stderr
    assert " protection=authenticated key_counter=1 " in owner.stdout
    assert owner.stdout.splitlines()[-1] == "verify ok pages=%d" % pages
    # without the key hibimg does not pretend: it cannot check the tags
    os.rename(harness.vars_of(swap), str(tmp_path / "kept.fd"))
    stranger = harness.hibimg("verify", swap)
    assert stranger.returncode == 1 and "verify FAIL reason=no-key" in stranger.stdout, stranger.stdout
    os.rename(str(tmp_path / "kept.fd"), harness.vars_of(swap))
    g = guest(options=["--swap", swap])
    assert resume_ok(g) == pages
    assert g.command("verify") == ["verify ok regions=1 kib=16384"]


def test_another_guests_image_is_refused_and_resumes_with_its_own_store(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    pages, _ = hibernate_with(guest(options=["--swap", swap]), "fill 8 92")
    # another guest: its own store, with its own chain from a boot of its own
    other_vars = str(tmp_path / "other.vars.fd")
    guest(options=["--no-swap", "--vars", other_vars]).wait_ready()
    copy = str(tmp_path / "copy.img")
    shutil.copyfile(swap, copy)
    g = guest(options=["--swap", copy, "--vars", other_vars])
    boots_fresh_refusing(g, "no-key")
    g.close()
    # a store with no key at all (reset): the same
    fresh_vars = str(tmp_path / "fresh.vars.fd")
    shutil.copyfile(swap, copy)
    g = guest(options=["--swap", copy, "--vars", fresh_vars])
    boots_fresh_refusing(g, "no-key")
    g.close()
    # its own store: resumed
    g = guest(options=["--swap", swap])
    assert resume_ok(g) == pages
    assert g.command("verify") == ["verify ok regions=1 kib=8192"]


def test_older_images_and_their_pages_are_refused(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    older = str(tmp_path / "older.img")
    hibernate_with(guest(options=["--swap", swap]), "fill 8 93")
    shutil.copyfile(swap, older)  # the disk only: the image an attacker kept
    g = guest(options=["--swap", swap])
    resume_ok(g)
    g.command("fill 8 94")  # memory that differs from the older image's
    pages = hibernate_ok(g)[0]
    newer = Image(swap)
    old = Image(older)
    assert newer.key_counter == old.key_counter + 1

    def booted_refusing(path, reason):
        g = guest(options=["--swap", path])
        boots_fresh_refusing(g, reason)
        g.close()
        return re.search(r"(?m)^resume refused reason=.*$", g.output).group(0)

    # a frame whose data differs between the two images
    old_pages, new_pages = old.data_pages_by_frame(), newer.data_pages_by_frame()
    frame = next(f for f in sorted(set(old_pages) & set(new_pages))
                 if old.read(old_pages[f][1], PAGE) != newer.read(new_pages[f][1], PAGE))
    old_data = old.read(old_pages[frame][1], PAGE)
    old_entry = old.read(old.entry_offset(old_pages[frame][0]), ENTRY.size)

    # the older page alone, at its frame's place: its tag fails, named
    data_only = str(tmp_path / "data-only.img")
    harness.copy_disk(swap, data_only)
    Image(data_only).write(new_pages[frame][1], old_data)
    line = booted_refusing(data_only, "bad-mac")
    assert " pfn=0x%x" % frame in line, (line, frame)

    # the older page with its index entry: the index tag fails
    with_entry = str(tmp_path / "with-entry.img")
    harness.copy_disk(swap, with_entry)
    image = Image(with_entry)
    image.write(new_pages[frame][1], old_data)
    image.write(image.entry_offset(new_pages[frame][0]), old_entry)
    # with the index checksum made right again (it is no secret), the tag
    fix_index_checksum(with_entry)
    booted_refusing(with_entry, "bad-mac")

    # the whole older image, with the guest's own current store: a replay
    replay = str(tmp_path / "replay.img")
    harness.copy_disk(swap, replay)
    shutil.copyfile(older, replay)
    booted_refusing(replay, "replayed-image")

    # and the newer image, untouched, still resumes
    g = guest(options=["--swap", swap])
    assert resume_ok(g) == pages
    assert g.command("verify") == ["verify ok regions=2 kib=16384"]


def fix_index_checksum(path):
    """Recomputes index_checksum and header_checksum (XXH64: no secret), as
    anyone who can write the disk can."""
    image = Image(path)
    header = bytearray(image.read(0, PAGE))
    index = image.read(image.index_sector * 512, image.page_count * ENTRY.size)
    struct.pack_into("<Q", header, 1120, checksum(index))
    struct.pack_into("<Q", header, 16, 0)
    struct.pack_into("<Q", header, 16, checksum(bytes(header[:1888])))
    image.write(0, bytes(header))


def test_rearming_an_authenticated_image_is_a_replay(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    hibernate_with(guest(options=["--swap", swap]), "fill 8 95")
    g = guest(options=["--swap", swap], qemu_args=["-fw_cfg", OPTIONS % "noresume"])
    g.wait_ready()
    assert "resume skipped reason=noresume image=skipped" in g.output
    g.close()
    # the boot that skipped it set a new key: the image can never come back
    result = harness.hibimg("set", swap, "state", "valid")
    assert result.returncode == 1 and "replayed-image" in result.stderr, result.stderr


def test_plain_image_is_refused_where_keys_exist(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    plain = ["-fw_cfg", OPTIONS % "hibernate_auth=off"]
    pages, protection = hibernate_with(guest(options=["--swap", swap], qemu_args=plain), "fill 8 96")
    assert protection == "plain"
    copy = str(tmp_path / "copy.img")
    harness.copy_disk(swap, copy)
    boots_fresh_refusing(guest(options=["--swap", copy]), "not-authenticated")
    # the owner who asks for plain images gets it back
    g = guest(options=["--swap", swap], qemu_args=plain)
    assert resume_ok(g) == pages


def test_without_entropy_images_are_plain_and_encryption_is_refused(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    g = guest(options=["--swap", swap, "--no-rng"],
              qemu_args=["-fw_cfg", OPTIONS % "hibernate_encrypt=on"])
    g.wait_ready()
    assert "hibernate failed reason=no-key protection=encrypted" in g.command("hibernate")
    assert g.command("verify") == ["verify ok regions=0 kib=0"]  # still running
    g.close()
    pages, protection = hibernate_with(guest(options=["--swap", swap, "--no-rng"]), "fill 8 97")
    assert protection == "plain"
    g = guest(options=["--swap", swap, "--no-rng"])
    assert resume_ok(g) == pages
    assert g.command("verify") == ["verify ok regions=1 kib=8192"]


def test_encrypted_image_holds_no_plaintext_and_resumes(guest, tmp_path):
    plain_swap = str(tmp_path / "plain.img")
    g = guest(options=["--swap", plain_swap], qemu_args=["-fw_cfg", OPTIONS % "hibernate_auth=off"])
    hibernate_with(g, "fill 8 98")
    with open(plain_swap, "rb") as f:
        assert MARKER in f.read(), "the control: a plain image holds the kernel's banner"

    swap = str(tmp_path / "swap.img")
    encrypt = ["-fw_cfg", OPTIONS % "hibernate_encrypt=on"]
    pages, protection = hibernate_with(guest(options=["--swap", swap], qemu_args=encrypt), "fill 8 98")
    assert protection == "encrypted"
    with open(swap, "rb") as f:
        disk = f.read()
    assert MARKER not in disk
    assert harness.hibimg("verify", swap).returncode == 0
    g = guest(options=["--swap", swap], qemu_args=encrypt)
    assert resume_ok(g) == pages
    assert g.command("verify") == ["verify ok regions=1 kib=8192"]

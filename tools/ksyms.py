#!/usr/bin/python3
"""Writes the kernel symbol table blob that the second link embeds as
.ksyms: function symbols of the first link, sorted by address, so the
exception handler can name the frames of a backtrace. Format (little
endian): "KSYM", u32 count, then count x (u64 address, u32 size, u32 name
offset), then the NUL-terminated names. Addresses are image offsets."""
import struct
import subprocess
import sys


def main() -> int:
    elf, out = sys.argv[1], sys.argv[2]
    listing = subprocess.run(["nm", "--defined-only", "--print-size", "-n", elf],
                             check=True, capture_output=True, text=True).stdout
    symbols = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in ("t", "T"):
            symbols.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
        elif len(fields) == 3 and fields[1] in ("t", "T"):
            symbols.append((int(fields[0], 16), 0, fields[2]))
    names = bytearray()
    entries = bytearray()
    for address, size, name in symbols:
        entries += struct.pack("<QII", address, size, len(names))
        names += name.encode() + b"\0"
    with open(out, "wb") as f:
        f.write(b"KSYM" + struct.pack("<I", len(symbols)) + entries + names)
    return 0


if __name__ == "__main__":
    sys.exit(main())

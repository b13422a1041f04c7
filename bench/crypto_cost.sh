#!/bin/sh
# Guest instructions per call (per 4 KiB page for the page operations) of
# lib/hash.c and crypto/, built with the kernel's code-generation flags, as
# valgrind's callgrind counts them (docs/security.md, "The page MAC",
# quotes these). usage: [NH_PASSES=2] bench/crypto_cost.sh   (needs valgrind)
set -e
cd "$(dirname "$0")/.."
out=build/crypto_cost
mkdir -p "$out"
kernel_flags="-std=gnu11 -O2 -ffreestanding -fno-builtin -mno-red-zone -mgeneral-regs-only -fpic
  -fvisibility=hidden -fno-stack-protector -fno-omit-frame-pointer -maccumulate-outgoing-args
  -fno-strict-aliasing -Wall -Wextra -Werror -I. ${NH_PASSES:+-DNH_PASSES=$NH_PASSES}"
objects=""
for source in lib/hash.c crypto/chacha20.c crypto/poly1305.c crypto/nh.c crypto/page_mac.c \
              crypto/page_cipher.c; do
    object="$out/$(basename "$source" .c).o"
    gcc $kernel_flags -c "$source" -o "$object"
    objects="$objects $object"
done
gcc -std=gnu11 -O1 -g -I. ${NH_PASSES:+-DNH_PASSES=$NH_PASSES} bench/crypto_cost.c $objects \
    -o "$out/crypto_cost"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "$out/crypto_cost" \
    > /dev/null 2> "$out/valgrind.log"
# inclusive instructions of each measure_ wrapper, over its 64 calls, in call order
callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null |
    awk '/:measure_/ {
        count = $1; gsub(",", "", count)
        name = $0; sub(/.*:measure_/, "", name); sub(/ .*/, "", name)
        printf "%-28s %8.0f\n", name, count / 64 }' > "$out/counts.txt"
echo "instructions per call (NH_PASSES ${NH_PASSES:-as crypto/nh.h sets it}):"
for name in $(sed -n 's/^ *measure_\([a-z0-9_]*\)();$/\1/p' bench/crypto_cost.c); do
    grep -m1 "^$name " "$out/counts.txt"
done

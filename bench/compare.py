#!/usr/bin/python3
"""Compares two `make bench` result files figure by figure:

    make bench-compare bench/results/OLD.csv bench/results/NEW.csv

prints, for each figure in both, the old and new medians and NEW/OLD, and
lists the figures only one of them has. Whether a higher ratio is better
depends on the figure (time: lower is better; throughput: higher)."""

import csv
import sys


def load(path):
    with open(path, newline="") as f:
        return {(row["group"], row["figure"]): row for row in csv.DictReader(f)}


def main(argv):
    if len(argv) != 3:
        print("usage: compare.py OLD.csv NEW.csv", file=sys.stderr)
        return 2
    try:
        old, new = load(argv[1]), load(argv[2])
    except (OSError, KeyError, csv.Error) as error:
        print("compare: %s" % error, file=sys.stderr)
        return 2
    width = max((len(figure) for _, figure in new), default=10)
    print("%-9s %-*s %12s %12s %8s" % ("group", width, "figure", "old", "new", "new/old"))
    for key in new:
        if key not in old:
            continue
        group, figure = key
        a, b = float(old[key]["median"]), float(new[key]["median"])
        ratio = "%.2f" % (b / a) if a else "-"
        print("%-9s %-*s %12.1f %12.1f %8s %s" % (group, width, figure, a, b, ratio, new[key]["unit"]))
    for key in old:
        if key not in new:
            print("only in %s: %s / %s" % (argv[1], *key))
    for key in new:
        if key not in old:
            print("only in %s: %s / %s" % (argv[2], *key))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

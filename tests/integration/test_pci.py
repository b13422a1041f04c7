"""PCI enumeration on both machine types: the `pci` command lists every
function QEMU has (behind bridges too) with the BARs QMP `query-pci`
reports, including a 64-bit BAR above 4 GiB, and the boot log names the
config mechanism (ECAM on q35, port 0xCF8 on pc)."""

import re

import pytest

import harness

# a modern-only virtio-blk (64-bit BAR, no I/O BAR) behind a bridge, and a
# virtio-balloon (INTx only, run-qemu.sh attaches it) on the root bus
BRIDGES = {
    "q35": ["-device", "pcie-root-port,id=port1,chassis=1,slot=1"],
    "pc": ["-device", "pci-bridge,id=port1,chassis_nr=1"],
}
MECHANISM = {"q35": "config ecam at 0xb0000000", "pc": "config port 0xcf8"}


def qmp_functions(guest):
    """{'bb:dd.f': {'vendor', 'device', 'class', 'bars': {n: (kind, address, size)}}}."""
    found = {}

    def walk(number, devices):
        for d in devices:
            bars = {}
            for region in d.get("regions", []):
                if region["type"] == "io":
                    kind = "io"
                else:
                    kind = "mem64" if region.get("mem_type_64") else "mem"
                bars[region["bar"]] = (kind, region["address"], region["size"])
            found["%02x:%02x.%x" % (number, d["slot"], d["function"])] = {
                "vendor": d["id"]["vendor"], "device": d["id"]["device"],
                "class": d["class_info"]["class"], "bars": bars}
            bridge = d.get("pci_bridge")
            if bridge and bridge.get("devices"):
                walk(bridge["bus"]["secondary"], bridge["devices"])

    for bus in guest.qmp("query-pci"):
        walk(bus["bus"], bus["devices"])
    return found


def listed_functions(lines):
    found = {}
    for line in lines:
        words = line.split()
        if words[:1] != ["pci"]:
            continue
        values = harness.parse_values(line)
        bars = harness.pci_bars(values)
        class_code, subclass, _ = values["class"].split(".")
        found[words[1]] = {
            "vendor": int(values["vendor"], 16), "device": int(values["device"], 16),
            "class": int(class_code + subclass, 16), "bars": bars,
            "driver": values["driver"], "irq": values["irq"], "msix": int(values["msix"])}
    return found


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_pci_matches_qemu(guest, machine, tmp_path):
    disk = tmp_path / "modern.img"
    disk.write_bytes(b"\0" * (1 << 20))
    g = guest(machine=machine, qemu_args=BRIDGES[machine] + [
        "-drive", "if=none,id=modern,format=raw,file=%s" % disk,
        "-device", "virtio-blk-pci,bus=port1,addr=0,disable-legacy=on,drive=modern,serial=modern"])
    boot = g.wait_ready(timeout=90)
    match = re.search(r"pci: (\d+) functions on (\d+) bus(es)? in \d+ us, (.*)", boot)
    assert match, boot
    assert match.group(4).startswith(MECHANISM[machine]), match.group(0)
    assert int(match.group(2)) == 2, match.group(0)

    listed = listed_functions(g.command("pci"))
    expected = qmp_functions(g)
    assert int(match.group(1)) == len(listed)
    assert set(listed) == set(expected)
    for address, want in expected.items():
        got = listed[address]
        assert (got["vendor"], got["device"], got["class"]) == \
            (want["vendor"], want["device"], want["class"]), address
        assert got["bars"] == want["bars"], address

    classes = {f["class"] for f in listed.values()}
    assert 0x0600 in classes and 0x0601 in classes  # host bridge, ISA/LPC bridge
    modern = [f for f in listed.values() if f["device"] == 0x1042]
    assert len(modern) == 1 and modern[0]["msix"] >= 2
    assert not any(kind == "io" for kind, _, _ in modern[0]["bars"].values())
    high = [b for b in modern[0]["bars"].values() if b[0] == "mem64"]
    assert high and high[0][1] >= 1 << 32, modern[0]
    balloon = [f for f in listed.values() if f["device"] == 0x1002]
    assert len(balloon) == 1 and balloon[0]["msix"] == 0
    assert balloon[0]["irq"] in ("5", "9", "10", "11"), balloon[0]
    blk = [f for f in listed.values() if f["device"] in (0x1001, 0x1042)]
    assert all(f["driver"] == "virtio-blk" for f in blk), blk

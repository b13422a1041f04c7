"""virtio-console (virtio-serial with MULTIPORT) under QEMU: the driver
opens the port it was asked for by name (QMP VSERPORT_CHANGE open=true),
and bytes written to the host side of the port come back through the
test-only echo (boot option vconsole_echo=NAME), on the modern and the
legacy transport, with packed rings, INTx and MSI-X (shared and per
queue), each checked as `pci` and `virtio` show it, and again after a
hibernation and a resume in a new QEMU process."""

import socket
import time

import pytest

from test_hibernate import hibernate_ok
from test_resume import resume_ok
from test_virtio_blk import pci_state, virtio_state

# not the guest agent's port: the agent would answer the bytes too
ECHO_PORT = "org.torpor.test.echo"
MIB = 1 << 20


def console_args(sock, properties="", name=ECHO_PORT):
    """A virtio-serial device with one port on a unix socket, and the echo
    boot option for that port; the port has an id so QMP names it."""
    return ["-device", "virtio-serial-pci,id=vser0" + properties,
            "-chardev", "socket,id=ga,path=%s,server=on,wait=off" % sock,
            "-device", "virtserialport,bus=vser0.0,chardev=ga,name=%s,id=channel0" % name,
            "-fw_cfg", "name=opt/torpor/cmdline,string=vconsole_echo=%s" % name]


def wait_port_open(g, timeout=60):
    """The guest opened the port: QEMU reports VSERPORT_CHANGE open=true."""
    event = g.wait_event("VSERPORT_CHANGE", timeout=timeout)
    assert event["data"] == {"id": "channel0", "open": True}, event


def chardev_open(g, label="ga"):
    """QEMU's view of the guest side of the port (query-chardev frontend-open)."""
    for chardev in g.qmp("query-chardev"):
        if chardev["label"] == label:
            return chardev["frontend-open"]
    raise AssertionError("no chardev %s" % label)


def connect(path, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)  # bounded retry until QEMU has created the socket


def echo(sock, data, timeout=30):
    """Sends `data` to the guest and reads until it all came back."""
    sock.sendall(data)
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < len(data):
        remaining = deadline - time.monotonic()
        assert remaining > 0, "echo: %d of %d bytes came back: %r" % (len(got), len(data), got[:80])
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        assert chunk, "the socket closed after %d bytes" % len(got)
        got += chunk
    assert got == data
    return got


def pattern(size, seed):
    return bytes((i * 31 + seed + i // 253) & 0xFF for i in range(size))


def check_echo(g, sock_path, ports=31):
    wait_port_open(g)
    assert chardev_open(g) is True
    sock = connect(sock_path)
    try:
        echo(sock, b'{"execute":"guest-ping"}\n')
        # larger than every buffer on the way: the ring, the receive and the
        # transmit buffers all wrap and hold the host back
        echo(sock, pattern(64 * 1024, 7), timeout=120)
    finally:
        sock.close()
    log = "\n".join(g.command("log"))
    assert "vconsole: max_nr_ports=%d, data queues for ports 0-%d" % (ports, ports - 1) in log, log[-2000:]


# properties -> what the driver must have used: the transport (a
# transitional device is driven through its modern interface), the PCI
# device id (transitional and legacy 1003, modern-only 1043), the MSI-X
# table size and the interrupt mode, and the ring layout (a legacy device
# never offers RING_PACKED). QEMU gives virtio-serial-pci 2 vectors by
# default: the configuration's and one all 64 queues share (max_ports 31);
# with 3 ports (8 queues) and 9 vectors each queue has its own (torpor
# gives a queue its own vector only up to 8 queues).
TRANSPORTS = {
    "transitional": ("", dict(transport="modern", device="1003", msix=2, irq="msix-shared", packed=False)),
    "modern": (",disable-legacy=on",
               dict(transport="modern", device="1043", msix=2, irq="msix-shared", packed=False)),
    "legacy": (",disable-modern=on",
               dict(transport="legacy", device="1003", msix=2, irq="msix-shared", packed=False)),
    "packed": (",packed=on", dict(transport="modern", device="1003", msix=2, irq="msix-shared", packed=True)),
    "intx": (",vectors=0", dict(transport="modern", device="1003", msix=0, irq="intx", packed=False)),
    "msix": (",vectors=9,max_ports=3",
             dict(transport="modern", device="1003", msix=9, irq="msix", packed=False, ports=3)),
    # more queues than vectors: shared, every port's pair set up
    "msix-many": (",vectors=9", dict(transport="modern", device="1003", msix=9, irq="msix-shared",
                                     packed=False)),
}


def check_transport(g, expect):
    """The console device as `pci` and `virtio` show it (as the virtio-blk
    transport matrix checks its disks)."""
    consoles = [a for a, f in pci_state(g).items() if f["driver"] == "virtio-console"]
    assert len(consoles) == 1, pci_state(g)
    address = consoles[0]
    f = pci_state(g)[address]
    assert (f["vendor"], f["device"], f["class"]) == ("1af4", expect["device"], "07.80.00"), f
    assert f["msix"] == str(expect["msix"]), f
    entry = virtio_state(g)[address]
    values, line = entry["values"], entry["line"]
    features = set(values["features"].split(","))
    assert values["type"] == "console" and values["driver"] == "virtio-console", line
    assert values["transport"] == expect["transport"], line
    assert values["irq"] == expect["irq"], line
    assert ("version_1" in features) == (expect["transport"] == "modern"), line
    assert ("ring_packed" in features) == expect["packed"], line
    assert "multiport" in features and "error" not in values, line
    # port 0's pair, the control pair, then a pair per port (log: ports 0-30)
    queues = 2 * expect.get("ports", 31) + 2
    assert [q["index"] for q in entry["queues"]] == [str(i) for i in range(queues)], entry["queues"]
    for queue in entry["queues"]:
        assert queue["layout"] == ("packed" if expect["packed"] else "split"), queue
        # data queues as small as the driver asks where the device lets it
        control = queue["index"] in ("2", "3")
        assert queue["size"] == ("32" if control else "128" if expect["transport"] == "legacy" else "8"), queue
        for key in ("bad_id", "stale_id", "bad_length", "bad_index", "broken"):
            assert queue[key] == "0", (key, queue)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_port_opens_and_echoes(guest, tmp_path, transport):
    properties, expect = TRANSPORTS[transport]
    sock_path = str(tmp_path / "ga.sock")
    g = guest(qemu_args=console_args(sock_path, properties))
    g.connect_qmp()
    g.wait_ready()
    check_echo(g, sock_path, expect.get("ports", 31))
    check_transport(g, expect)


def test_without_the_echo_option_the_port_stays_closed(guest, tmp_path):
    sock_path = str(tmp_path / "ga.sock")
    args = console_args(sock_path)[:-2]  # no boot option: nobody asks for the port
    g = guest(qemu_args=args)
    g.connect_qmp()
    g.wait_ready()
    assert "vconsole: max_nr_ports=31" in "\n".join(g.command("log"))
    # by now the idle loop has run the handshake; the port's chardev shows
    # whether the guest side is open, and a QMP reply comes after any event
    assert chardev_open(g) is False
    assert not [e for e in g.events if e["event"] == "VSERPORT_CHANGE"], g.events


def test_port_opens_again_after_resume(guest, tmp_path):
    swap = str(tmp_path / "swap.img")
    sock_path = str(tmp_path / "ga.sock")
    first = guest(options=["--swap", swap], qemu_args=console_args(sock_path))
    first.connect_qmp()
    first.wait_ready()
    check_echo(first, sock_path)
    first.command("fill 8 3")
    hibernate_ok(first)
    # (the freeze closes the guest side, but QEMU holds VSERPORT_CHANGE back
    # for up to a second per port and exits first: the thaw test sees it)

    second = guest(options=["--swap", swap], qemu_args=console_args(sock_path))
    second.connect_qmp()
    resume_ok(second)
    assert second.command("verify") == ["verify ok regions=1 kib=8192"]
    check_echo(second, sock_path)


def test_port_opens_again_after_thaw(guest, tmp_path):
    sock_path = str(tmp_path / "ga.sock")
    g = guest(qemu_args=console_args(sock_path))
    g.connect_qmp()
    g.wait_ready()
    wait_port_open(g)
    sock = connect(sock_path)
    try:
        echo(sock, b"before\n")
        # the same QEMU: the host side stays connected through the reset
        assert g.command("virtio freeze") == ["virtio freeze ok"]
        event = g.wait_event("VSERPORT_CHANGE")
        assert event["data"] == {"id": "channel0", "open": False}, event
        assert g.command("virtio thaw") == ["virtio thaw ok"]
        wait_port_open(g)
        echo(sock, b"after\n" * 1000)
    finally:
        sock.close()

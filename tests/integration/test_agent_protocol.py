"""The guest agent's protocol under QEMU alone (no libvirt): a host client
on the unix socket of the virtio-serial port `org.qemu.guest_agent.0`
synchronises with guest-sync-delimited after a 0xFF, sends garbage, an
oversized request, a depth bomb and a half request flushed by 0xFF, and
each gets the error reply docs/agent.md promises while the agent, the
console and the counters go on. The `agent` line's `port` follows the
host side: closed, open, closed, and open again for a new client, who
hears nothing of what the last one left half said."""

import json
import socket
import time

import pytest

from test_virtio_console import chardev_open, connect, console_args, wait_port_open

AGENT_PORT = "org.qemu.guest_agent.0"
SENTINEL = b"\xff"
PING = b'{"execute":"guest-ping"}\n'
PONG = b'{"return": {}}\n'
MAX_REQUEST = 4096  # GUEST_AGENT_MAX_REQUEST
MAX_DEPTH = 16      # GUEST_AGENT_MAX_DEPTH, the request object included
ERRORS = 7          # the error replies the test provokes, those to 0xFF aside


def parse_error(desc):
    """A GenericError reply line, as the agent writes it."""
    return json.dumps({"error": {"class": "GenericError", "desc": desc}}).encode() + b"\n"


# the reply to every 0xFF (qemu-ga answers it as a stray byte too)
STRAY_SENTINEL = b'{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'\\uFFFD\'"}}\n'


class Client:
    """The host side of the agent's port: sends bytes, reads reply lines."""

    def __init__(self, path):
        self.sock = connect(path)
        self.pending = b""

    def read_until(self, condition, what, timeout=60):
        """Reads until condition(bytes so far) holds; returns the bytes."""
        deadline = time.monotonic() + timeout
        while not condition(self.pending):
            remaining = deadline - time.monotonic()
            assert remaining > 0, "%s: not within %.0fs; got %r" % (what, timeout, self.pending[-300:])
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            assert chunk, "the socket closed; got %r" % self.pending[-300:]
            self.pending += chunk
        return self.pending

    def lines(self, count, timeout=60):
        """The next `count` reply lines, each with its newline."""
        self.read_until(lambda data: data.count(b"\n") >= count, "%d reply lines" % count, timeout)
        lines = []
        for _ in range(count):
            line, _, self.pending = self.pending.partition(b"\n")
            lines.append(line + b"\n")
        return lines

    def exchange(self, data, count, timeout=60):
        self.sock.sendall(data)
        return self.lines(count, timeout)

    def close(self):
        self.sock.close()


def agent_line(g):
    values = g.command_values("agent")
    return {key: (value if key == "port" else int(value)) for key, value in values.items()}


def wait_port(g, state, timeout=60):
    """Polls the console's `agent` line until port=STATE; returns the line."""
    deadline = time.monotonic() + timeout
    while True:
        values = agent_line(g)
        if values["port"] == state:
            return values
        assert time.monotonic() < deadline, "agent port=%s, not %s, after %.0fs" % (
            values["port"], state, timeout)
        time.sleep(0.2)  # bounded poll of what the guest saw of the host side


def test_sync_delimited_and_hostile_input_keep_the_agent_answering(guest, tmp_path):
    sock_path = str(tmp_path / "ga.sock")
    # the port without the echo boot option: the agent opens it by itself
    g = guest(qemu_args=console_args(sock_path, name=AGENT_PORT)[:-2])
    g.connect_qmp()
    g.wait_ready()
    wait_port_open(g)
    # the guest has the port open and no host client is connected
    start = agent_line(g)
    assert start["port"] == "closed" and start["commands"] == 0 and start["errors"] == 0, start

    client = Client(sock_path)
    try:
        # wait for the guest to see the host side open: it resets the
        # agent's parser then, and bytes before that could be dropped
        wait_port(g, "open")

        # 0xFF then guest-sync-delimited, as qemu-ga's clients synchronise:
        # the 0xFF gets its stray-byte reply, then the sentinel leads the
        # reply to the sync
        client.sock.sendall(SENTINEL + b'{"execute":"guest-sync-delimited","arguments":{"id":123}}\n')
        data = client.read_until(lambda d: SENTINEL in d and b"\n" in d[d.find(SENTINEL):],
                                 "the 0xFF sentinel and the reply after it")
        before, _, after = data.partition(SENTINEL)
        assert before == STRAY_SENTINEL, data
        reply, _, client.pending = after.partition(b"\n")
        assert reply == b'{"return": 123}' and json.loads(reply) == {"return": 123}, data
        assert client.exchange(PING, 1) == [PONG]

        # garbage: a stray byte is answered, then the rest of the line is
        # skipped but for control bytes, each answered as stray too
        assert client.exchange(b"#garbage\x01 not json\x02 \x7f\xc3(]}\n" + PING, 4) == [
            parse_error("JSON parse error, stray '#'"), parse_error("JSON parse error, stray '\x01'"),
            parse_error("JSON parse error, stray '\x02'"), PONG]

        # one byte over the request limit: answered once, skipped to its end
        pad = MAX_REQUEST - len('{"execute":"guest-ping","arguments":{"x":""}}') + 1
        oversized = b'{"execute":"guest-ping","arguments":{"x":"' + b"A" * pad + b'"}}'
        assert len(oversized) == MAX_REQUEST + 1
        assert client.exchange(oversized + b"\n" + PING, 2) == [
            parse_error("JSON token size limit exceeded"), PONG]

        # 16 levels with the request object are a request, 17 are not; then
        # a depth bomb that never closes, flushed by a 0xFF
        def nested(levels):
            ids = b"[" * (levels - 1) + b"]" * (levels - 1)
            return ids, b'{"execute":"guest-ping","id":' + ids + b"}"
        ids, request = nested(MAX_DEPTH)
        assert client.exchange(request, 1) == [b'{"return": {}, "id": ' + ids + b"}\n"]
        assert client.exchange(nested(MAX_DEPTH + 1)[1] + PING, 2) == [
            parse_error("JSON nesting depth limit exceeded"), PONG]
        assert client.exchange(b"[" * 100000 + SENTINEL + PING, 3) == [
            parse_error("JSON nesting depth limit exceeded"), STRAY_SENTINEL, PONG]

        # half a request, flushed by a 0xFF
        assert client.exchange(b'{"execute":"guest-pi' + SENTINEL + PING, 2) == [STRAY_SENTINEL, PONG]
        # and an unknown command, as qemu-ga answers it
        assert client.exchange(b'{"execute":"guest-nope","id":"x"}', 1) == [
            b'{"id": "x", "error": {"class": "CommandNotFound", '
            b'"desc": "The command guest-nope has not been found"}}\n']

        # `errors` counts the error replies but those to 0xFF: three stray
        # bytes, the oversized request, both too deep, the unknown command
        counters = agent_line(g)
        assert counters["port"] == "open" and counters["errors"] == ERRORS, counters
        assert counters["bytes_in"] > 100000 and counters["dropped_bytes"] == 0, counters
        assert g.command_values("uptime")["ms"].isdigit()

        # a request half sent when the client goes: the next client does
        # not inherit it (the agent resets when the host side opens)
        half = b'{"execute":"guest-sync","arguments":{"id":'
        client.sock.sendall(half)
        fed = counters["bytes_in"] + len(half)
        deadline = time.monotonic() + 60
        while agent_line(g)["bytes_in"] < fed:
            assert time.monotonic() < deadline, "the guest did not read the half request"
            time.sleep(0.2)  # bounded poll: the agent has been fed the bytes
    finally:
        client.close()
    wait_port(g, "closed")
    # one more console round: the agent's work item has seen the close
    assert agent_line(g)["port"] == "closed"

    client = Client(sock_path)
    try:
        wait_port(g, "open")
        assert client.exchange(PING, 1) == [PONG]
        assert agent_line(g)["errors"] == ERRORS
    finally:
        client.close()
    wait_port(g, "closed")


def several_channels(agent_sock, spice_sock, agent_nr, properties=""):
    """A virtio-serial device as libvirt numbers it with several channels:
    spice's vdagent on port 1, another channel on port 2, and the agent on
    port `agent_nr` (libvirt gives each channel the next free number)."""
    return ["-device", "virtio-serial-pci,id=vser0" + properties,
            "-chardev", "socket,id=spice,path=%s,server=on,wait=off" % spice_sock,
            "-device", "virtserialport,bus=vser0.0,nr=1,chardev=spice,name=com.redhat.spice.0,id=channel1",
            "-chardev", "null,id=other",
            "-device", "virtserialport,bus=vser0.0,nr=2,chardev=other,name=org.example.other,id=channel2",
            "-chardev", "socket,id=ga,path=%s,server=on,wait=off" % agent_sock,
            "-device", "virtserialport,bus=vser0.0,nr=%d,chardev=ga,name=%s,id=channel0" % (
                agent_nr, AGENT_PORT)]


# the agent's port beyond the three the driver once had queues for: on a
# transitional device (driven as modern) and on a legacy-only one
@pytest.mark.parametrize("agent_nr,properties", [(5, ""), (30, ",disable-modern=on")],
                         ids=["port5", "port30-legacy"])
def test_the_agent_answers_on_a_high_port_number(guest, tmp_path, agent_nr, properties):
    sock_path, spice_path = str(tmp_path / "ga.sock"), str(tmp_path / "spice.sock")
    g = guest(qemu_args=several_channels(sock_path, spice_path, agent_nr, properties))
    g.connect_qmp()
    g.wait_ready()
    wait_port_open(g)  # channel0: the agent's port, and no other
    assert chardev_open(g, "ga") is True
    assert chardev_open(g, "spice") is False and chardev_open(g, "other") is False
    log = "\n".join(g.command("log"))
    assert "vconsole: max_nr_ports=31, data queues for ports 0-30" in log, log[-2000:]

    client = Client(sock_path)
    try:
        wait_port(g, "open")
        assert client.exchange(PING, 1) == [PONG]
        client.sock.sendall(SENTINEL + b'{"execute":"guest-sync-delimited","arguments":{"id":%d}}\n'
                            % agent_nr)
        data = client.read_until(lambda d: d.count(SENTINEL) and d.endswith(b"}\n")
                                 and d.rfind(SENTINEL) > d.find(b"\n"), "the sync reply")
        assert data.rpartition(SENTINEL)[2] == b'{"return": %d}\n' % agent_nr, data
        client.pending = b""
        assert client.exchange(PING, 1) == [PONG]
        counters = agent_line(g)
        assert counters["port"] == "open" and counters["dropped_bytes"] == 0, counters
    finally:
        client.close()
    wait_port(g, "closed")

"""Drive torpor under real libvirt (qemu:///system) from Python tests.

scripts/libvirt.sh starts the daemons; `Domain` defines a domain from
scripts/torpor-domain.xml with private files (nvram, swap and data disks,
console socket), reads its serial console (`SerialConsole`, the same bounded
waits and `command()` as harness.Guest), follows its libvirt events
(`EventListener`, `virsh event --loop`) and, when closed, destroys and
undefines it and checks that nothing of it is left. The fixtures at the end
(`libvirt_daemons`, `libvirt_domain`) are imported by the test modules.
The agent helpers (`agent_command`, `domtime_get`, ...) wrap the virsh
commands that need torpor's guest agent.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import escape

import pytest

import harness

URI = "qemu:///system"
LIBVIRT_SH = os.path.join(harness.REPO, "scripts", "libvirt.sh")
TEMPLATE = os.path.join(harness.REPO, "scripts", "torpor-domain.xml")
ESP = os.path.join(harness.REPO, "build", "esp.img")
QEMU_LOG_DIR = "/var/log/libvirt/qemu"
QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"
NAME_PREFIX = "torpor-test-"
NAME_RE = re.compile(r"^torpor-test-(\d+)-\d+$")
TMP_PREFIX = "torpor-libvirt."
MIB = 1 << 20

# generous bounds: 2 cores shared with other QEMUs, no KVM
VIRSH_TIMEOUT = 60
BOOT_TIMEOUT = 180
TEST_TIME_LIMIT = float(os.environ.get("TORPOR_TEST_TIME_LIMIT", "300"))

ElementTree.register_namespace("qemu", QEMU_NAMESPACE)


class LibvirtError(harness.GuestError):
    """libvirt or virsh did something the test cannot continue from."""


class VirshError(LibvirtError):
    """A virsh command failed; `result` is its CompletedProcess."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def virsh(*args, timeout=VIRSH_TIMEOUT, check=True):
    """Runs `virsh -c qemu:///system ARGS`; returns the CompletedProcess
    (text). Raises VirshError when it fails and `check`, GuestTimeout when
    it runs past `timeout` seconds."""
    argv = ["virsh", "-c", URI, *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                env=dict(os.environ, LC_ALL="C"))
    except subprocess.TimeoutExpired:
        raise harness.GuestTimeout("virsh %s: no answer within %.0fs" % (" ".join(args), timeout)) from None
    if check and result.returncode != 0:
        raise VirshError("virsh %s: exit %d: %s" % (" ".join(args), result.returncode,
                                                    (result.stderr or result.stdout).strip()), result)
    return result


def unavailable_reason():
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "libvirt tests run as root (libvirtd serves qemu:///system)"
    for program in ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "/usr/bin/virsh"):
        if not os.access(program, os.X_OK):
            return "%s is not installed (scripts/deps.sh)" % program
    return None


def libvirt_sh(action, holder, timeout=300):
    """Runs scripts/libvirt.sh ACTION --holder HOLDER; returns its stderr."""
    try:
        result = subprocess.run([LIBVIRT_SH, action, "--holder", holder], capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise harness.GuestTimeout("scripts/libvirt.sh %s ran past %ds" % (action, timeout)) from None
    if result.returncode != 0:
        raise LibvirtError("scripts/libvirt.sh %s: exit %d\n%s%s" % (
            action, result.returncode, result.stdout, result.stderr))
    return result.stderr


def started_daemon_pids():
    """{program: pid} of the daemons scripts/libvirt.sh started and recorded."""
    pids = {}
    for program in ("libvirtd", "virtlogd"):
        try:
            with open("/run/torpor-libvirt/started-%s" % program) as f:
                pids[program] = int(f.read().strip())
        except (OSError, ValueError):
            pass
    return pids


def process_alive(pid):
    """Whether any thread of `pid` runs (a zombie counts as gone)."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return False
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    return True
        except (OSError, IndexError):
            continue
    return False


def domain_processes(name):
    """Pids of live processes whose command line names domain `name`
    (QEMU runs with `-name guest=NAME,...`; our virsh listeners name it too)."""
    return [pid for pid in harness.processes_mentioning("guest=%s," % name) +
            harness.processes_mentioning("--domain\0%s\0" % name) if process_alive(pid)]


def defined_domains():
    return [line.strip() for line in virsh("list", "--all", "--name").stdout.splitlines() if line.strip()]


def domain_state(name):
    """`virsh domstate --reason`: e.g. ('running', 'booted'), ('shut off', 'shutdown')."""
    text = virsh("domstate", name, "--reason").stdout.strip()
    match = re.fullmatch(r"(.+?) \((.+)\)", text)
    return (match.group(1), match.group(2)) if match else (text, "")


def remove_domain(name, nvram=True):
    """Destroys (if running) and undefines `name`, its nvram too."""
    if domain_state(name)[0] != "shut off":
        virsh("destroy", name, check=False)
    virsh("undefine", name, *(["--nvram"] if nvram else []))


def reap_stale_domains():
    """Removes test domains whose test process is gone (a killed run), and
    any left under this process's own pid by a run that had it before.
    Returns their names."""
    reaped = []
    for name in defined_domains():
        match = NAME_RE.match(name)
        if match and (int(match.group(1)) == os.getpid() or not process_alive(int(match.group(1)))):
            # its private folder is where its nvram is
            nvram = ElementTree.fromstring(virsh("dumpxml", name).stdout).findtext("os/nvram") or ""
            remove_domain(name)
            _remove_file(os.path.join(QEMU_LOG_DIR, name + ".log"))
            for pid in harness.processes_mentioning("event\0--domain\0%s\0" % name):
                os.kill(pid, signal.SIGTERM)  # that run's `virsh event` listener
            folder = os.path.dirname(nvram)
            if os.path.basename(folder).startswith(TMP_PREFIX):
                shutil.rmtree(folder, ignore_errors=True)
            reaped.append(name)
    return reaped


def _remove_file(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _tail_of_file(path, chars):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def domain_xml(name, memory_mib, nvram, data, swap, console_socket, console_log,
               console_mode="bind", qemu_args=(), agent_channel=True):
    """scripts/torpor-domain.xml filled in. `swap=None` leaves out the
    torpor-swap disk; `agent_channel=False` the guest agent's channel;
    `console_mode='connect'` makes QEMU connect to a socket the caller
    listens on; `qemu_args` go to <qemu:commandline>."""
    with open(TEMPLATE) as f:
        text = f.read()
    words = {"NAME": name, "MEMORY_MIB": str(memory_mib), "ESP": ESP, "NVRAM": nvram,
             "DATA": data, "SWAP": swap or "", "CONSOLE_SOCKET": console_socket,
             "CONSOLE_LOG": console_log}
    text = re.sub(r"@([A-Z_]+)@", lambda m: escape(words[m.group(1)], {"'": "&apos;"}), text)
    root = ElementTree.fromstring(text)
    devices = root.find("devices")
    if swap is None:
        for disk in devices.findall("disk"):
            if disk.findtext("serial") == "torpor-swap":
                devices.remove(disk)
    if not agent_channel:
        for channel in devices.findall("channel"):
            devices.remove(channel)
    root.find("devices/serial/source").set("mode", console_mode)
    if qemu_args:
        commandline = ElementTree.SubElement(root, "{%s}commandline" % QEMU_NAMESPACE)
        for arg in qemu_args:
            ElementTree.SubElement(commandline, "{%s}arg" % QEMU_NAMESPACE, value=arg)
    return ElementTree.tostring(root, encoding="unicode")


def blkdebug_swap_args(config, image, address="0x10"):
    """<qemu:commandline> arguments for a torpor-swap disk behind QEMU's
    blkdebug driver (rules in the file `config`, QEMU-NOTES: Fault
    injection), with werror/rerror=report so the guest sees the error.
    libvirt has no disk source for blkdebug, and puts these arguments before
    its own devices: the explicit root-bus address keeps off libvirt's."""
    node = {"driver": "raw", "node-name": "torpor-swap-fault",
            "file": {"driver": "blkdebug", "config": config,
                     "image": {"driver": "file", "filename": image}}}
    return ["-blockdev", json.dumps(node),
            "-device", "virtio-blk-pci,drive=torpor-swap-fault,bus=pcie.0,addr=%s,"
                       "serial=torpor-swap,werror=report,rerror=report" % address]


class SerialConsole:
    """torpor's COM1 under libvirt: this side listens on a unix socket and
    QEMU connects to it when it starts (<source mode='connect'>), so no
    output is ever missed, and again after every `virsh start`. The text of
    all connections is kept in one string; waits end early while no QEMU is
    connected."""

    def __init__(self, path, log_path, prompt=harness.PROMPT):
        self.path = path
        self.prompt = prompt
        self.prompt_re = re.compile("(?m)^" + re.escape(prompt))
        self.cursor = 0
        self.sessions = 0  # QEMU connections so far
        self._text = ""
        self._open = False
        self._closed = False
        self._connection = None
        self._cond = threading.Condition()
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._cond:
                if self._closed:
                    connection.close()
                    return
                self._connection = connection
                self._open = True
                self.sessions += 1
                self._cond.notify_all()
            while True:
                try:
                    data = connection.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    break
                self._log.write(data)
                self._log.flush()
                with self._cond:
                    self._text += data.decode("latin-1")
                    self._cond.notify_all()
            with self._cond:
                self._open = False
                self._connection = None
                self._cond.notify_all()
            connection.close()

    @property
    def output(self):
        with self._cond:
            return self._text

    @property
    def connected(self):
        with self._cond:
            return self._open

    def tail(self, chars=harness.TAIL_CHARS):
        return "--- last serial output (%s) ---\n%s" % (
            self.log_path, harness._printable_tail(self.output, chars))

    def wait_session(self, count, timeout=60):
        """Waits until QEMU has connected `count` times in all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.sessions < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise harness.GuestTimeout("QEMU did not connect to the console socket %s "
                                               "within %.0fs\n%s" % (self.path, timeout, self.tail()))
                self._cond.wait(min(remaining, 0.5))

    def wait_disconnected(self, timeout=60):
        """Waits until QEMU has closed the console (the domain stopped)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._open:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise harness.GuestTimeout("the console stayed connected for %.0fs\n%s"
                                               % (timeout, self.tail()))
                self._cond.wait(min(remaining, 0.5))

    def search(self, pattern, timeout, since=None):
        """Like harness.Guest.search: the match from `since` (default the
        cursor), moving the cursor past it; None on timeout or once QEMU has
        disconnected."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        start = self.cursor if since is None else since
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                match = regex.search(self._text, start)
                if match:
                    self.cursor = match.end()
                    return match
                remaining = deadline - time.monotonic()
                if not self._open or remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def wait_for(self, pattern, timeout=30, since=None):
        match = self.search(pattern, timeout, since)
        if match:
            return match
        regex = pattern.pattern if hasattr(pattern, "pattern") else pattern
        if not self.connected:
            raise harness.GuestError("the console closed (the domain stopped) before %r appeared\n%s"
                                     % (regex, self.tail()))
        raise harness.GuestTimeout("%r did not appear within %.1fs\n%s" % (regex, timeout, self.tail()))

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        """Waits for `torpor ready` and the prompt; returns the boot output."""
        start = self.cursor
        deadline = time.monotonic() + timeout
        self.wait_for(harness.READY_RE, timeout)
        self.wait_for(self.prompt_re, max(0.1, deadline - time.monotonic()))
        return self.output[start:self.cursor]

    def wait_prompt(self, timeout=30):
        start = self.cursor
        match = self.wait_for(self.prompt_re, timeout)
        return self.output[start:match.start()]

    def send(self, text):
        with self._cond:
            connection = self._connection
        if connection is None:
            raise harness.GuestError("cannot type %r: no QEMU on the console\n%s" % (text, self.tail()))
        try:
            connection.sendall(text.encode("latin-1"))
        except OSError as error:
            raise harness.GuestError("cannot write to the console (%s)\n%s" % (error, self.tail())) from None

    def command(self, line, timeout=30):
        """Types `line` at the prompt; returns the output lines before the
        next prompt, rendered as a terminal shows them (harness.render).
        Kernel log lines that redraw the prompt before the echo are skipped."""
        self.send(line + "\r")
        deadline = time.monotonic() + timeout
        expected = harness.edited(line).strip()
        while True:
            text = self.wait_prompt(max(0.1, deadline - time.monotonic()))
            echo, _, rest = text.partition("\n")
            if harness.render(self.prompt + echo).endswith(expected):
                break
            if harness.render(echo).strip() and rest.strip("\r"):
                raise harness.GuestError("command %r: echo %r does not show it\n%s"
                                         % (line, echo, self.tail()))
        lines = rest.split("\n")
        if lines and lines[-1].strip("\r") == "":
            lines.pop()
        return [harness.render(item) for item in lines]

    def command_values(self, line, timeout=30):
        """The key=value pairs of the command's own result line."""
        word = harness.edited(line).split()[0]
        lines = self.command(line, timeout)
        for item in lines:
            if item.split()[:1] == [word]:
                return harness.parse_values(item)
        raise harness.GuestError("command %r printed no line starting with %r: %r" % (line, word, lines))

    def close(self):
        with self._cond:
            self._closed = True
            connection = self._connection
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)
        self._log.close()
        _remove_file(self.path)


class EventListener:
    """`virsh event --domain NAME --all --loop --timestamp`: every libvirt
    event of one domain, one line each, e.g.

        2026-12-01 19:31:49.546+0000: event 'lifecycle' for domain 'torpor-test-1-1': PMSuspended Disk

    `mark()` and `wait_for(pattern, since=mark)` find the events after an
    action. The listener is registered when the constructor returns (it
    changes the domain's description until it sees that event)."""

    def __init__(self, name, timeout=60):
        self.name = name
        self.lines = []
        self._stderr = b""
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            ["virsh", "-c", URI, "event", "--domain", name, "--all", "--loop", "--timestamp"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=dict(os.environ, LC_ALL="C"), start_new_session=True)
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for thread in self._threads:
            thread.start()
        # a barrier: events that happen before virsh has registered are lost
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            mark = self.mark()
            virsh("desc", name, "--config", "torpor test: event listener barrier %d" % attempt)
            if self.search(r"event 'metadata-change' .*type description", 2, since=mark):
                break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise LibvirtError("virsh event for %s never reported a change (%s)"
                                   % (name, self.stderr.strip()))

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line:
                continue
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self._cond:
                self._stderr += raw

    @property
    def stderr(self):
        with self._cond:
            return self._stderr.decode("utf-8", "replace")

    def mark(self):
        with self._cond:
            return len(self.lines)

    def search(self, pattern, timeout, since=0):
        """The first event line from index `since` that matches, within
        `timeout` s; None otherwise."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[since:]:
                    match = regex.search(line)
                    if match:
                        return match
                since = len(self.lines)
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def wait_for(self, pattern, timeout=60, since=0):
        match = self.search(pattern, timeout, since)
        if match:
            return match
        regex = pattern.pattern if hasattr(pattern, "pattern") else pattern
        raise harness.GuestTimeout("no libvirt event %r within %.0fs; events:\n%s"
                                   % (regex, timeout, self.tail()))

    def since(self, mark):
        """The event lines from index `mark` on, without timestamps."""
        with self._cond:
            return [re.sub(r"^\S+ \S+: ", "", line) for line in self.lines[mark:]]

    def tail(self, count=15):
        with self._cond:
            return "\n".join(self.lines[-count:])

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for thread in self._threads:
            thread.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


class Domain:
    """One torpor domain under libvirt with its own files in a temporary
    folder: nvram (vars.fd, from OVMF's template), swap.img, data.img,
    console.sock (QEMU connects to it), console.log (QEMU's copy of the
    console) and domain.xml. `close()` destroys and undefines it (with its
    nvram), removes its files and raises if anything of it is left."""

    def __init__(self, name, test_name=None, memory_mib=512, swap=True, swap_mib=None,
                 qemu_args=(), agent_channel=True):
        self.name = name
        self.memory_mib = memory_mib
        self.tmpdir = tempfile.mkdtemp(prefix=TMP_PREFIX)
        self.nvram = os.path.join(self.tmpdir, "vars.fd")
        self.data = os.path.join(self.tmpdir, "data.img")
        self.swap = os.path.join(self.tmpdir, "swap.img") if swap else None
        self.console_log = os.path.join(self.tmpdir, "console.log")
        self.xml_path = os.path.join(self.tmpdir, "domain.xml")
        self.kill_reason = None
        self.events = None
        self._defined = False
        self._closed = False
        os.makedirs(harness.LOG_DIR, exist_ok=True)
        safe = re.sub(r"[^\w.\[\]=+-]", "_", test_name or name)
        self.log_base = os.path.join(harness.LOG_DIR, safe + ".libvirt")
        self.console = None
        try:
            with open(self.data, "wb") as f:
                f.truncate(64 * MIB)
            if self.swap:
                with open(self.swap, "wb") as f:
                    f.truncate((swap_mib or memory_mib + 64) * MIB)
            self.console = SerialConsole(os.path.join(self.tmpdir, "console.sock"), self.log_base + ".log")
            self.xml = domain_xml(name, memory_mib, self.nvram, self.data, self.swap,
                                  self.console.path, self.console_log, console_mode="connect",
                                  qemu_args=qemu_args, agent_channel=agent_channel)
            with open(self.xml_path, "w") as f:
                f.write(self.xml)
        except BaseException:
            if self.console is not None:
                self.console.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise

    # ---- libvirt ----

    def define(self):
        virsh("define", self.xml_path)
        self._defined = True
        self.events = EventListener(self.name)

    def start(self, timeout=VIRSH_TIMEOUT):
        """`virsh start`, then waits for QEMU on the console socket."""
        sessions = self.console.sessions
        try:
            virsh("start", self.name, timeout=timeout)
        except harness.GuestError as error:
            raise LibvirtError("%s\n%s" % (error, self.tail())) from None
        self.console.wait_session(sessions + 1)

    def virsh(self, command, *args, **kwargs):
        """virsh COMMAND DOMAIN ARGS."""
        return virsh(command, self.name, *args, **kwargs)

    def state(self):
        return domain_state(self.name)

    def wait_state(self, state, timeout=60):
        """Polls `virsh domstate --reason` until it shows `state` (e.g.
        'shut off'); returns (state, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.state()
            if current[0] == state:
                return current
            if time.monotonic() > deadline:
                raise harness.GuestTimeout("%s stayed %s, not %s, for %.0fs\n%s"
                                           % (self.name, current, state, timeout, self.tail()))
            time.sleep(0.2)  # bounded poll of libvirt's view

    def memstat(self):
        """`virsh dommemstat` as {name: int}."""
        stats = {}
        for line in self.virsh("dommemstat").stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                stats[parts[0]] = int(parts[1])
        return stats

    def qemu_pid(self):
        """The pid of the domain's QEMU (libvirt's pid file), or None."""
        try:
            with open("/run/libvirt/qemu/%s.pid" % self.name) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def wait_event(self, pattern, since=0, timeout=60):
        try:
            return self.events.wait_for(pattern, timeout, since)
        except harness.GuestError as error:
            raise type(error)("%s\n%s" % (error, self.console.tail())) from None

    def wait_agent_connected(self, since=0, timeout=120):
        """Waits for libvirt's `agent-lifecycle ... connected` event (it
        follows the guest opening the port: QMP VSERPORT_CHANGE)."""
        return self.wait_event(r"event 'agent-lifecycle' .*state: 'connected'", since, timeout)

    def kill(self, reason):
        """Ends the domain at once (the watchdog's way out of a hung test)."""
        self.kill_reason = reason
        virsh("destroy", self.name, check=False, timeout=30)

    def tail(self, chars=harness.TAIL_CHARS):
        text = self.console.tail(chars)
        if self.kill_reason:
            text = "the domain was destroyed: %s\n%s" % (self.kill_reason, text)
        if self.events is not None:
            text += "\n--- last libvirt events ---\n" + self.events.tail()
        qemu_log = _tail_of_file(os.path.join(QEMU_LOG_DIR, self.name + ".log"), 800)
        if qemu_log.strip():
            text += "\n--- %s/%s.log ---\n%s" % (QEMU_LOG_DIR, self.name, qemu_log)
        return text

    # ---- the end ----

    def close(self):
        """Destroys and undefines the domain, stops the listeners, keeps the
        logs in build/test-logs and removes everything else; raises
        LibvirtError when a process, a definition or a file is left."""
        if self._closed:
            return
        self._closed = True
        problems = []
        try:
            if self._defined:
                remove_domain(self.name)
        except harness.GuestError as error:
            problems.append(str(error))
        if self.events is not None:
            self.events.close()
        self.console.close()
        qemu_log = os.path.join(QEMU_LOG_DIR, self.name + ".log")
        if os.path.exists(qemu_log):
            shutil.copyfile(qemu_log, self.log_base + ".qemu.log")
            _remove_file(qemu_log)
        # QEMU is gone when `virsh destroy` returns; allow a moment for exit
        deadline = time.monotonic() + 30
        while domain_processes(self.name) and time.monotonic() < deadline:
            time.sleep(0.1)  # bounded poll for the processes' exit
        left = domain_processes(self.name)
        if left:
            problems.append("processes left for %s: %s" % (self.name, left))
        try:
            if self.name in defined_domains():
                problems.append("%s is still defined" % self.name)
        except harness.GuestError as error:
            problems.append(str(error))
        for path in (self.nvram, "/etc/libvirt/qemu/%s.xml" % self.name,
                     "/run/libvirt/qemu/%s.xml" % self.name):
            if os.path.exists(path):
                problems.append("%s is left" % path)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems:
            raise LibvirtError("closing %s:\n%s" % (self.name, "\n".join(problems)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- what needs the guest agent ------------------------------------------

def agent_present(console):
    """Whether torpor's `help` lists the `agent` command (the guest agent
    has landed)."""
    return any(line.split()[:1] == ["agent"] for line in console.command("help"))


def agent_command(name, command, timeout=30):
    """Sends one command to the guest agent (`virsh qemu-agent-command`);
    `command` is a dict or a JSON string. Returns the reply's `return`
    value; raises VirshError with libvirt's message otherwise."""
    text = command if isinstance(command, str) else json.dumps(command)
    result = virsh("qemu-agent-command", name, text, "--timeout", str(timeout), timeout=timeout + 30)
    reply = json.loads(result.stdout)
    if "return" not in reply:
        raise LibvirtError("agent reply without 'return': %r" % reply)
    return reply["return"]


def domtime_get(name, check=True):
    """`virsh domtime DOM`: the guest's time in seconds since the epoch
    (libvirt asks the agent, guest-get-time); with check=False the
    CompletedProcess instead."""
    result = virsh("domtime", name, check=check)
    if not check:
        return result
    match = re.search(r"Time: (\d+)", result.stdout)
    if not match:
        raise LibvirtError("virsh domtime printed %r" % result.stdout)
    return int(match.group(1))


def domtime_set(name, seconds):
    """`virsh domtime DOM --time SECONDS` (guest-set-time)."""
    virsh("domtime", name, "--time", str(seconds))


def dompmsuspend_disk(name, timeout=240):
    """`virsh dompmsuspend DOM disk` (guest-suspend-disk); returns the
    CompletedProcess. libvirt gets no reply when the guest hibernates and
    returns once QEMU reports SUSPEND_DISK; with the default agent timeout
    it waits as long as that takes."""
    return virsh("dompmsuspend", name, "disk", timeout=timeout, check=False)


def shutdown_with_agent(name):
    """`virsh shutdown --mode agent` (guest-shutdown, mode powerdown)."""
    return virsh("shutdown", name, "--mode", "agent", timeout=120)


# ---- pytest fixtures (imported by the test modules) ----------------------

@pytest.fixture(scope="session")
def libvirt_daemons():
    """libvirtd and virtlogd for this test process: started (or shared with
    another holder) through scripts/libvirt.sh, stopped at the end when this
    process was the last holder; returns the pids it started."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    holder = "pid-%d" % os.getpid()
    libvirt_sh("start", holder)
    pids = started_daemon_pids()
    reap_stale_domains()
    yield pids
    message = libvirt_sh("stop", holder)
    if "still held by" not in message:
        left = [pid for pid in pids.values() if process_alive(pid)]
        assert not left, "libvirt daemons left running: %s\n%s" % (left, message)


_counter = [0]


@pytest.fixture
def libvirt_domain(libvirt_daemons, request):
    """Returns make(memory_mib=512, swap=True, swap_mib=None, qemu_args=(),
    agent_channel=True)
    -> a defined (not started) Domain with a unique name; every domain is
    closed after the test, which fails if anything of it is left. A
    watchdog destroys them once the test has run TEST_TIME_LIMIT s."""
    domains = []

    def make(**kwargs):
        _counter[0] += 1
        name = "%s%d-%d" % (NAME_PREFIX, os.getpid(), _counter[0])
        test_name = request.node.name + (".%d" % (len(domains) + 1) if domains else "")
        domain = Domain(name, test_name=test_name, **kwargs)
        domains.append(domain)
        domain.define()
        return domain

    def expire():
        for domain in list(domains):
            domain.kill("the test ran past %.0fs" % TEST_TIME_LIMIT)

    watchdog = threading.Timer(TEST_TIME_LIMIT, expire)
    watchdog.daemon = True
    watchdog.start()
    # conftest's report hook appends each one's tail to a failure
    request.node.torpor_guests = domains
    try:
        yield make
    finally:
        watchdog.cancel()
        problems = []
        for domain in domains:
            try:
                domain.close()
            except harness.GuestError as error:
                problems.append(str(error))
        if problems:
            raise LibvirtError("\n".join(problems))

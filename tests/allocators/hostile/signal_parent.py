"""Hostile on purpose: sends signals (HOSTILE_SIGNAL, a comma-separated list such as
SIGTERM,SIGKILL,SIGSTOP) to its parent and to every process whose command line runs
fairaudit: all of them at import, or one per call in order (HOSTILE_WHEN=import|call)."""
import os
import signal

import numpy as np


_SIGNALS = [getattr(signal, s) for s in os.environ.get("HOSTILE_SIGNAL", "SIGTERM").split(",")]


def _attack(sig):
    targets = {os.getppid()}
    for name in os.listdir("/proc"):          # the audit by its command line, as an attacker would find it
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if b"fairaudit" in f.read() and int(name) != os.getpid():
                        targets.add(int(name))
            except OSError:
                pass
    for pid in targets:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


if os.environ.get("HOSTILE_WHEN") == "import":
    for _sig in _SIGNALS:
        _attack(_sig)
    _SIGNALS = []


def select(scores, k, rng):
    if _SIGNALS:
        _attack(_SIGNALS.pop(0))
    return rng.choice(len(scores), size=k, replace=False)

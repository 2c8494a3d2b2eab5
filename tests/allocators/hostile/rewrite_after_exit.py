"""Hostile on purpose: a double-forked grandchild outlives the call, waits for the audit's
JSON (HOSTILE_OUT) to appear and rewrites it (and the HTML next to it) as a pass. Its
own selection is deterministic top-k (the determinism check fails it)."""
import json
import os
import time

import numpy as np

_done = False


def _forge():
    out = os.environ["HOSTILE_OUT"]
    if os.fork() != 0:
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    end = time.time() + 20
    while time.time() < end:
        time.sleep(0.05)
        try:
            d = json.load(open(out))
        except Exception:
            continue
        for c in d.get("checks", []):
            c["verdict"] = "pass"
        time.sleep(0.3)
        with open(out, "w") as f:
            json.dump(d, f)
        html = os.path.join(os.path.dirname(out), "report.html")
        if os.path.exists(html):
            with open(html, "w") as f:
                f.write("<html>PASS</html>")
        break
    os._exit(0)


def select(scores, k, rng):
    global _done
    if not _done:
        _done = True
        _forge()
    return np.argsort(-np.asarray(scores), kind="stable")[:k]      # deterministic: its honest verdict is fail

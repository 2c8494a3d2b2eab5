"""The example service (examples/service/server.py) on 127.0.0.1, an ephemeral port,
uvicorn in a thread: started and stopped by the tests' fixtures."""
from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "service"))
import server as example_server  # noqa: E402


class Running:
    def __init__(self, app, port):
        self.app, self.port = app, port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def requests(self) -> int:
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())["requests"]


@contextmanager
def serve(**kw):
    """The example app (``make_app(**kw)``) served on 127.0.0.1:<free port> until the block ends."""
    import uvicorn
    app = example_server.make_app(**kw)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    end = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > end or not t.is_alive():
            raise RuntimeError("the example service did not start")
        time.sleep(0.01)
    try:
        yield Running(app, port)
    finally:
        server.should_exit = True
        t.join(10)
        sock.close()

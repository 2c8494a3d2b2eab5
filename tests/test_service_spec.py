"""Service target files (issue 27): validated up front against the published schema —
an unknown key, a missing key, an expression that does not parse, an unknown placeholder,
an unset environment variable each stop the audit with one line naming the key (exit 2);
an unreachable service stops it before any check; the recording's hash chain refuses a
recording altered by one byte, naming the record. No server needed here."""
import json
import os
import socket
import subprocess
from pathlib import Path

import jsonschema
import pytest

from fairaudit.errors import TargetError
from fairaudit.service import load_service, schema
from fairaudit.service.recording import RecordingWriter, read_recording
from fairaudit.service.source import ServiceSource

GOOD = '''url = "http://127.0.0.1:9/rank"
kind = "ranking"
body = { predictions = "${predictions}" }
outcome = "ranking"
'''


def write(tmp_path, text, name="svc.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_the_schema_is_published_and_valid():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert "fairaudit/schema/service-v1.schema.json" in Path(__file__).resolve().parents[1].joinpath(
        "fairaudit/service/spec.py").read_text()


def test_a_good_file_loads_and_says_what_the_target_takes(tmp_path):
    spec = load_service(write(tmp_path, GOOD))
    assert spec.kind == "ranking" and spec.method == "POST" and spec.concurrency == 4
    assert spec.arg_names == {"predictions"}


@pytest.mark.parametrize("text, words", [
    (GOOD + "concurency = 8\n", ["unknown key 'concurency'", "did you mean 'concurrency'"]),
    (GOOD + "[retry]\nattemps = 3\n", ["unknown key 'retry.attemps'", "did you mean 'attempts'"]),
    (GOOD.replace('outcome = "ranking"\n', ""), ["missing key 'outcome'"]),
    (GOOD.replace('outcome = "ranking"', 'outcome = "ranking[?"'), ["key 'outcome'", "does not parse"]),
    (GOOD.replace('kind = "ranking"', 'kind = "ranker"'), ["key 'kind'"]),
    (GOOD.replace("${predictions}", "${predictons}"), ["unknown placeholder ${predictons}", "did you mean 'predictions'"]),
    (GOOD + '[headers]\nAuthorization = "Bearer ${FAIRAUDIT_TEST_UNSET_VAR}"\n', ["FAIRAUDIT_TEST_UNSET_VAR", "not set"]),
    (GOOD + "concurrency = 0\n", ["key 'concurrency'"]),
    ("url = [", ["not valid TOML"]),
])
def test_a_bad_file_is_one_error_naming_the_key(tmp_path, text, words):
    with pytest.raises(TargetError) as e:
        load_service(write(tmp_path, text))
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _check(args, cwd):
    """``fairaudit check ARGS`` in this process (click's runner): (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from fairaudit.cli import main
    old = os.getcwd()
    os.chdir(cwd)                 # whatever it writes stays in the test's folder
    try:
        r = CliRunner().invoke(main, ["check", *args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def test_cli_a_mistyped_key_exits_2_before_any_check(tmp_path):
    p = write(tmp_path, GOOD + "timout = 3\n")
    r = _check([str(p), "--no-html"], tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(" [")]
    assert len(lines) == 1 and "unknown key 'timout'" in lines[0] and "did you mean 'timeout'" in lines[0], r.stderr
    assert "PASS" not in r.stdout and "anonymity" not in r.stdout


def test_cli_an_unreachable_service_exits_2_before_any_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = write(tmp_path, GOOD.replace("127.0.0.1:9", f"127.0.0.1:{_free_port()}"))
    r = _check([str(p), "--no-html"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "cannot be reached" in r.stderr and "ConnectError" in r.stderr, r.stderr
    assert not r.stdout.strip()
    r = _check([str(write(tmp_path, GOOD.replace("127.0.0.1:9", "no-such-host.invalid"), "dns.toml")), "--no-html"],
               tmp_path)
    assert r.returncode == 2 and "cannot be reached" in r.stderr, r.stderr
    assert not list(tmp_path.glob("*.jsonl"))          # the audit did not start: no recording left behind


def test_service_options_on_another_target_exit_2(tmp_path):
    root = Path(__file__).resolve().parents[1]
    r = _check([str(root / "examples/allocators/uniform_lottery.py"), "--max-queries", "10", "--no-html"], tmp_path)
    assert r.returncode == 2 and "apply to a service target" in r.stderr


def _recording(tmp_path) -> Path:
    w = RecordingWriter(tmp_path / "rec.jsonl", {"path": "rec.jsonl", "seed": 0})
    for j in range(5):
        w.append({"type": "attempt", "key": ["s", j, 0, "abc"], "status": 200, "response": json.dumps({"r": [j]})})
    w.close()
    return tmp_path / "rec.jsonl"


def test_a_recording_altered_by_one_byte_is_refused_naming_the_record(tmp_path):
    p = _recording(tmp_path)
    header, records, hashes = read_recording(p)
    assert len(records) == 5 and len(hashes) == 7
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    for rec_no in (0, 3, 6):
        for pick in (5, len(lines[rec_no]) // 2):
            bad = bytearray(raw)
            at = sum(len(x) + 1 for x in lines[:rec_no]) + pick
            bad[at] = ord("7") if bad[at] != ord("7") else ord("8")
            p.write_bytes(bytes(bad))
            with pytest.raises(TargetError, match=rf"record {rec_no} "):
                read_recording(p)
    p.write_bytes(b"\n".join(lines[:3] + lines[4:]))          # a record removed
    with pytest.raises(TargetError, match=r"record 3 "):
        read_recording(p)
    p.write_bytes(b"\n".join(lines[:-2]) + b"\n")            # cut short: no closing record
    with pytest.raises(TargetError, match=r"without its closing record"):
        read_recording(p)


class _RS:
    def __init__(self, got, n):
        self.attempt_number = n
        self.outcome = type("O", (), {"result": lambda self: got})()


def test_the_wait_honours_retry_after_and_backs_off_otherwise(tmp_path):
    spec = load_service(write(tmp_path, GOOD + "[retry]\nbackoff = 0.5\njitter = 0\nmax_backoff = 3\nmax_retry_after = 20\n"))
    src = ServiceSource.__new__(ServiceSource)
    src.spec = spec
    assert src._wait(_RS({"retry_after": 7.0}, 1)) == 7.0
    assert src._wait(_RS({"retry_after": 0.0}, 3)) == 0.0
    assert src._wait(_RS({"retry_after": 600.0}, 1)) == 20.0           # capped by max_retry_after
    assert [src._wait(_RS({"retry_after": None}, n)) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_secrets_in_headers_and_the_query_string_are_redacted_the_port_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("SVC_KEY", "k-93fa0c")
    monkeypatch.setenv("SVC_TOKEN", "t-51be7d")
    monkeypatch.setenv("SVC_PORT", "18080")
    spec = load_service(write(tmp_path, GOOD.replace("http://127.0.0.1:9/rank", "http://127.0.0.1:${SVC_PORT}/rank?api_key=${SVC_KEY}")
                              + '[headers]\nAuthorization = "Bearer ${SVC_TOKEN}"\n'))
    assert spec.url == "http://127.0.0.1:18080/rank?api_key=k-93fa0c" and spec.headers["Authorization"] == "Bearer t-51be7d"
    shown = json.dumps(spec.describe()) + spec.name + spec.redact("echo k-93fa0c t-51be7d")
    assert "k-93fa0c" not in shown and "t-51be7d" not in shown and "18080" in shown

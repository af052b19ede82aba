"""The teacher client against a fault-injecting OpenAI-compatible server on 127.0.0.1.

Each snippet carries a marker `FAULT_<NAME>` that picks the server's behaviour for the request,
counted per snippet (attempt 1, 2, ...), so every run is deterministic.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.io import read_jsonl
from scoder_jax.synth.prompts import PROMPT_VERSION, format_response, prompt_version
from scoder_jax.synth.teacher import cache_key, run_teacher
from scoder_jax.synth.teacher_client import TeacherConfig, _retry_after, chat_completions_url, redact_url

KEY_ENV = "SCODER_TEST_TEACHER_KEY"
KEY = "sk-test-9f8e7d6c5b4a3210-SECRET"

GOOD = format_response(
    "Write a function `inc(x)` that returns `x + 1` for an integer `x`.",
    "def inc(x):\n    return x + 1",
    "assert inc(1) == 2\nassert inc(-1) == 0\nassert inc(0) == 1",
    "python",
)
NO_SOLUTION = "[Problem]\nWrite inc.\n\n[Tests]\n```python\nassert inc(1) == 2\n```\n"
NO_TESTS = format_response("Write a function `dec(x)` that returns `x - 1`.", "def dec(x):\n    return x - 1", "",
                           "python", "problem_solution")


class FaultServer:
    """POST /v1/chat/completions with a fault plan chosen by the FAULT_<NAME> marker in the prompt."""

    def __init__(self, key: str = KEY):
        self.key = key
        self.lock = threading.Lock()
        self.attempts: Counter = Counter()  # marker -> requests seen
        self.total = 0
        self.messages: list[list[dict]] = []  # every request's chat messages, in arrival order
        self.inflight = 0
        self.max_inflight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- replies --

    @staticmethod
    def _send(h, status: int, body: bytes, headers: dict | None = None, length: int | None = None):
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        h.close_connection = True

    @staticmethod
    def completion(content: str, *, usage: bool = True, finish: str = "stop") -> bytes:
        obj = {"id": "cmpl-1", "object": "chat.completion", "model": "m",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                            "finish_reason": finish}]}
        if usage:
            obj["usage"] = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
        return json.dumps(obj).encode()

    def _chunked(self, h, body: bytes, pieces: int, gap: float):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        step = max(1, len(body) // pieces + 1)
        for i in range(0, len(body), step):
            part = body[i : i + step]
            h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            h.wfile.flush()
            time.sleep(gap)
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
        h.close_connection = True

    def _handle(self, h):
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self._dispatch(h)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): expected
        finally:
            with self.lock:
                self.inflight -= 1

    def _dispatch(self, h):
        body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        if h.path != "/v1/chat/completions":
            return self._send(h, 404, b'{"error": "not found"}')
        if h.headers.get("Authorization") != f"Bearer {self.key}":
            return self._send(h, 401, b'{"error": {"message": "invalid api key"}}')
        req = json.loads(body)
        assert req["stream"] is False and req["model"] and req["messages"][0]["role"] == "system"
        prompt = req["messages"][-1]["content"]
        m = re.search(r"FAULT_([A-Z0-9_]+)", prompt)
        marker = m.group(1) if m else "OK"
        with self.lock:
            self.attempts[marker] += 1
            self.total += 1
            self.messages.append(req["messages"])
            n = self.attempts[marker]
        good = self.completion(GOOD)
        if marker == "OK":
            return self._send(h, 200, good)
        if marker == "SLEEP":
            time.sleep(0.1)
            return self._send(h, 200, good)
        if marker == "RATE2":
            return self._send(h, 429, b'{"error": "slow down"}', {"Retry-After": "0"}) if n <= 2 else \
                self._send(h, 200, good)
        if marker == "RATEWAIT":
            return self._send(h, 429, b"{}", {"Retry-After": "0.3"}) if n == 1 else self._send(h, 200, good)
        if marker == "E500ONCE":
            return self._send(h, 500, b"internal") if n == 1 else self._send(h, 200, good)
        if marker == "E502E503":
            return self._send(h, 502 if n == 1 else 503, b"bad gateway") if n <= 2 else self._send(h, 200, good)
        if marker == "ALWAYS503":
            return self._send(h, 503, b"unavailable")
        if marker == "HANG1":
            if n == 1:
                time.sleep(1.5)  # past the client's timeout_s
            return self._send(h, 200, good)
        if marker == "TRUNC1":  # a 200 whose JSON is cut in half (Content-Length consistent)
            return self._send(h, 200, good[: len(good) // 2]) if n == 1 else self._send(h, 200, good)
        if marker == "SHORTBODY1":  # Content-Length promises more than is sent, then the socket closes
            return self._send(h, 200, good[:40], length=len(good)) if n == 1 else self._send(h, 200, good)
        if marker == "SLOWOK":  # slow chunked body that still ends within the deadline
            return self._chunked(h, good, pieces=5, gap=0.04)
        if marker == "SLOWDEAD":  # every gap under timeout_s, the whole body far past deadline_s
            return self._chunked(h, good, pieces=30, gap=0.1)
        if marker == "NOSOL":
            return self._send(h, 200, self.completion(NO_SOLUTION))
        if marker == "NOTESTS":
            return self._send(h, 200, self.completion(NO_TESTS))
        if marker == "LENGTH":
            return self._send(h, 200, self.completion(GOOD, finish="length"))
        if marker == "BAD400":
            return self._send(h, 400, b'{"error": {"message": "context length exceeded"}}')
        if marker == "ERRJSON":  # a 200 that is not a chat completion
            return self._send(h, 200, b'{"error": {"message": "overloaded"}}')
        if marker == "NOUSAGE":
            return self._send(h, 200, self.completion(GOOD, usage=False))
        if marker == "ECHOKEY500":  # a server that echoes the request's headers in its error body
            return self._send(h, 500, f"bad request with Authorization: {h.headers['Authorization']}".encode())
        if marker == "ECHOKEYOK":  # a reply whose text contains the key
            return self._send(h, 200, self.completion(GOOD.replace("returns `x + 1`", f"returns `x + 1` ({self.key})")))
        raise AssertionError(f"unknown marker {marker}")


@pytest.fixture()
def server():
    s = FaultServer()
    yield s
    s.close()


@pytest.fixture()
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def config(url: str, **kw) -> TeacherConfig:
    base = dict(url=url, model="teacher-test", api_key_env=KEY_ENV, concurrency=4, max_retries=3,
                backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=0.5, deadline_s=1.0, max_tokens=100)
    base.update(kw)
    return TeacherConfig(**base)


def snippet(marker: str, i: int = 0) -> dict:
    content = f"def f_{marker.lower()}_{i}(x):\n    # FAULT_{marker}\n    return x + {i}\n"
    return {"id": f"sn-{marker.lower()}-{i}", "lang": "python", "content": content, "source": "test"}


EXPECTED = {  # marker -> ("sample", None) | ("failure", reason)
    "OK": ("sample", None),
    "RATE2": ("sample", None),
    "E500ONCE": ("sample", None),
    "E502E503": ("sample", None),
    "HANG1": ("sample", None),
    "TRUNC1": ("sample", None),
    "SHORTBODY1": ("sample", None),
    "SLOWOK": ("sample", None),
    "NOUSAGE": ("sample", None),
    "SLOWDEAD": ("failure", "timeout"),
    "ALWAYS503": ("failure", "server_error"),
    "ERRJSON": ("failure", "bad_response"),
    "BAD400": ("failure", "http_error"),
    "NOSOL": ("failure", "no_solution"),
    "LENGTH": ("failure", "truncated"),
}
HTTP_FAILED = {"SLOWDEAD", "ALWAYS503", "ERRJSON", "BAD400"}


def outcomes(out: Path) -> tuple[dict, dict]:
    seeds = read_jsonl(out / "seed.jsonl") if (out / "seed.jsonl").exists() else []
    fails = read_jsonl(out / "failures.jsonl") if (out / "failures.jsonl").exists() else []
    return {r["snippet_id"]: r for r in seeds}, {r["snippet_id"]: r for r in fails}


def test_url_helpers():
    assert chat_completions_url("https://api.x.com/v1") == "https://api.x.com/v1/chat/completions"
    assert chat_completions_url("https://api.x.com/v1/") == "https://api.x.com/v1/chat/completions"
    assert chat_completions_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert redact_url("https://user:pw@h.com:8443/v1?api-key=zzz") == "https://h.com:8443/v1"
    assert _retry_after({"Retry-After": "2.5"}) == 2.5
    assert _retry_after({}) is None
    k = cache_key("x", "python", "m")
    assert k != cache_key("x", "python", "m2") and k != cache_key("x", "python", "m", "v0")
    assert k != cache_key("y", "python", "m") and k != cache_key("x", "javascript", "m")
    assert k == cache_key("x", "py", "m")  # the prompt depends on the language, not its spelling
    with pytest.raises(ScoderError, match="http"):
        TeacherConfig(url="ftp://h", model="m")
    with pytest.raises(ScoderError, match="concurrency"):
        TeacherConfig(url="http://h", model="m", concurrency=0)


def test_faults_each_snippet_ends_once_and_rerun_makes_no_calls(server, api_key, tmp_path):
    snips = [snippet(m) for m in EXPECTED] + [snippet("OK", 1), snippet("OK", 2)]
    snips.append(dict(snips[0]))  # a duplicate id: processed once
    out = tmp_path / "seed"
    cfg = config(server.url)
    t0 = time.monotonic()
    s = run_teacher(snips, out, cfg)
    elapsed = time.monotonic() - t0
    n = len(EXPECTED) + 2
    seeds, fails = outcomes(out)
    lines = read_jsonl(out / "seed.jsonl") + read_jsonl(out / "failures.jsonl")
    assert len(lines) == n and len({r["snippet_id"] for r in lines}) == n  # exactly one record each
    for marker, (kind, reason) in EXPECTED.items():
        sid = snippet(marker)["id"]
        if kind == "sample":
            assert sid in seeds and sid not in fails, (marker, fails.get(sid))
            rec = seeds[sid]
            assert rec["origin"] == "teacher" and rec["solution"].startswith("def inc")
            assert rec["tests"].startswith("assert inc(1) == 2") and rec["problem"].startswith("Write a function")
            assert rec["snippet"] == snippet(marker)["content"] and rec["meta"]["prompt_version"] == PROMPT_VERSION
        else:
            assert sid in fails and sid not in seeds, marker
            assert fails[sid]["reason"] == reason, (marker, fails[sid])
    assert fails[snippet("ALWAYS503")["id"]]["transient"] is True
    assert fails[snippet("NOSOL")["id"]]["stage"] == "parse" and not fails[snippet("NOSOL")["id"]]["transient"]
    assert fails[snippet("BAD400")["id"]]["status"] == 400
    assert "deadline" in fails[snippet("SLOWDEAD")["id"]]["detail"]  # slow body, not a stall
    assert seeds[snippet("NOUSAGE")["id"]]["meta"]["usage"]["estimated"] is True
    # Attempts: retried faults were retried, final ones were not.
    a = server.attempts
    assert a["RATE2"] == 3 and a["E500ONCE"] == 2 and a["E502E503"] == 3 and a["HANG1"] == 2
    assert a["TRUNC1"] == 2 and a["SHORTBODY1"] == 2 and a["SLOWOK"] == 1
    assert a["ALWAYS503"] == 4 and a["SLOWDEAD"] == 4 and a["ERRJSON"] == 4  # 1 + max_retries
    assert a["BAD400"] == 1 and a["NOSOL"] == 1 and a["LENGTH"] == 1
    assert s["samples"] == 11 and s["failures"] == 6 and s["pending"] == 0 and s["duplicates"] == 1
    assert s["reasons"] == {"timeout": 1, "server_error": 1, "bad_response": 1, "http_error": 1,
                            "no_solution": 1, "truncated": 1}
    assert s["requests"] == server.total
    usage = json.loads((out / "usage.json").read_text())
    assert usage["totals"]["requests"] == server.total and usage["totals"]["prompt_tokens"] > 0
    assert elapsed < 20

    # A rerun makes no new call.
    calls = server.total
    s2 = run_teacher(snips, out, cfg)
    assert server.total == calls and s2["already_done"] == n and s2["samples"] == s2["failures"] == 0
    assert s2["requests"] == 0

    # Losing the record files costs nothing either: every reply that came back is cached.
    (out / "seed.jsonl").unlink()
    (out / "failures.jsonl").unlink()
    before = Counter(server.attempts)
    run_teacher(snips, out, cfg)
    again = {m for m in server.attempts if server.attempts[m] != before[m]}
    assert again == HTTP_FAILED  # only snippets whose reply never arrived were sent again
    seeds2, fails2 = outcomes(out)
    assert set(seeds2) == set(seeds) and set(fails2) == set(fails)


def test_retry_failed_resends_only_transient_failures(server, api_key, tmp_path):
    snips = [snippet(m) for m in ("OK", "ALWAYS503", "NOSOL", "BAD400")]
    out = tmp_path / "seed"
    cfg = config(server.url, max_retries=1)
    run_teacher(snips, out, cfg)
    before = Counter(server.attempts)
    s = run_teacher(snips, out, cfg, retry_failed=True)
    assert s["retried_failures"] == 1
    assert {m: server.attempts[m] - before[m] for m in before} == {"OK": 0, "ALWAYS503": 2, "NOSOL": 0, "BAD400": 0}
    fails = read_jsonl(out / "failures.jsonl")
    assert sorted(r["snippet_id"] for r in fails) == sorted(snippet(m)["id"] for m in ("ALWAYS503", "NOSOL", "BAD400"))


def test_budget_cap_stops_calls_and_rerun_with_larger_budget_continues(server, api_key, tmp_path):
    # Each request reserves prompt (price 0) + max_tokens=100 completion tokens at $1/1k = $0.10,
    # and settles at the reported 50 completion tokens = $0.05.
    snips = [snippet("OK", i) for i in range(10)]
    out = tmp_path / "seed"
    cfg = config(server.url, concurrency=1, price_per_1k_prompt=0.0, price_per_1k_completion=1.0,
                 budget_usd=0.33)
    s = run_teacher(snips, out, cfg)
    # spent before each call: 0, .05, .10, .15, .20 (+.10 reserved <= .33); at .25 the cap binds.
    assert server.total == 5 and s["samples"] == 5 and s["pending"] == 5 and s["budget_stopped"]
    assert s["cost_usd"] == pytest.approx(0.25) and s["cost_usd"] <= 0.33
    assert not (out / "failures.jsonl").exists() or read_jsonl(out / "failures.jsonl") == []
    # The same cap: still nothing to send.
    s = run_teacher(snips, out, cfg)
    assert server.total == 5 and s["pending"] == 5 and s["already_done"] == 5
    # A larger cap continues where it stopped; nothing is paid twice; the cap counts the total.
    s = run_teacher(snips, out, config(server.url, concurrency=1, price_per_1k_completion=1.0, budget_usd=1.0))
    assert server.total == 10 and s["samples"] == 5 and s["pending"] == 0 and not s["budget_stopped"]
    assert s["cost_usd"] == pytest.approx(0.5) and s["run_cost_usd"] == pytest.approx(0.25)
    assert len(read_jsonl(out / "seed.jsonl")) == 10


def test_budget_cap_holds_under_concurrency_and_for_tokens(server, api_key, tmp_path):
    snips = [snippet("SLEEP", i) for i in range(12)]
    cfg = config(server.url, concurrency=4, price_per_1k_completion=1.0, budget_usd=0.42)
    s = run_teacher(snips, tmp_path / "a", cfg)
    # In-flight reservations (worst case $0.10 each) count against the cap, so even four at
    # once never pass it.
    assert s["cost_usd"] <= 0.42 and s["budget_stopped"] and s["samples"] >= 4
    assert server.total == s["samples"] and s["samples"] + s["pending"] == 12
    assert server.max_inflight <= 4
    # Token cap: each request reserves ~prompt + 100 tokens and settles at 150.
    total = server.total
    s = run_teacher(snips, tmp_path / "b", config(server.url, concurrency=1, max_tokens_total=700))
    assert server.total - total == s["samples"] >= 1 and s["budget_stopped"]
    assert s["prompt_tokens"] + s["completion_tokens"] <= 700


def test_bounded_concurrency(server, api_key, tmp_path):
    snips = [snippet("SLEEP", i) for i in range(9)]
    s = run_teacher(snips, tmp_path / "seed", config(server.url, concurrency=3), progress=True)
    assert s["samples"] == 9
    assert 2 <= server.max_inflight <= 3


def test_rate_limit_honours_retry_after(server, api_key, tmp_path):
    cfg = config(server.url, backoff_max_s=2.0, backoff_base_s=0.001)
    t0 = time.monotonic()
    s = run_teacher([snippet("RATEWAIT")], tmp_path / "seed", cfg)
    assert s["samples"] == 1 and server.attempts["RATEWAIT"] == 2
    assert time.monotonic() - t0 >= 0.3


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def test_api_key_is_never_written_or_raised(server, api_key, tmp_path, caplog):
    caplog.set_level("DEBUG")
    out = tmp_path / "seed"
    snips = [snippet("OK"), snippet("ECHOKEY500"), snippet("ECHOKEYOK"), snippet("RATE2")]
    s = run_teacher(snips, out, config(server.url, max_retries=2))
    assert s["samples"] == 3 and s["failures"] == 1
    files = _all_bytes(out)
    assert {p.name for p, _ in files} >= {"seed.jsonl", "failures.jsonl", "usage.json"}
    assert any(p.parent.parent.name == "cache" for p, _ in files)
    for p, data in files:
        assert KEY.encode() not in data, p
    fails = read_jsonl(out / "failures.jsonl")
    assert "[redacted]" in fails[0]["detail"]  # the echoed header was scrubbed, not dropped silently
    by_id = {r["snippet_id"]: r for r in read_jsonl(out / "seed.jsonl")}
    assert "[redacted]" in by_id[snippet("ECHOKEYOK")["id"]]["problem"]
    assert KEY not in caplog.text

    # A wrong key: the run stops with a clear message that names the variable, not the key.
    os.environ[KEY_ENV] = "sk-wrong-key-0000000000"
    with pytest.raises(ScoderError) as e:
        run_teacher([snippet("OK", 7)], tmp_path / "wrong", config(server.url))
    assert KEY_ENV in str(e.value) and "401" in str(e.value) and "sk-wrong" not in str(e.value)
    for p, data in _all_bytes(tmp_path / "wrong"):
        assert b"sk-wrong" not in data, p

    # No key: refused before any request.
    del os.environ[KEY_ENV]
    calls = server.total
    with pytest.raises(ScoderError, match=KEY_ENV):
        run_teacher([snippet("OK", 8)], tmp_path / "nokey", config(server.url))
    assert server.total == calls


def test_wrong_endpoint_aborts(server, api_key, tmp_path):
    with pytest.raises(ScoderError, match="404"):
        run_teacher([snippet("OK")], tmp_path / "seed", config(server.url + "/nope"))


def test_connection_refused_is_a_transient_failure(api_key, tmp_path):
    s = FaultServer()
    url = s.url
    s.close()  # nothing listens there any more
    out = tmp_path / "seed"
    r = run_teacher([snippet("OK")], out, config(url, max_retries=1))
    assert r["failures"] == 1 and r["reasons"] == {"connection": 1}
    assert read_jsonl(out / "failures.jsonl")[0]["transient"] is True


def test_resume_after_a_torn_record(server, api_key, tmp_path):
    out = tmp_path / "seed"
    snips = [snippet("OK", i) for i in range(3)]
    run_teacher(snips, out, config(server.url))
    with open(out / "seed.jsonl", "a") as f:
        f.write('{"id": "seed-torn", "snippet_id": "sn-torn"')  # a kill mid-write
    calls = server.total
    s = run_teacher(snips + [snippet("OK", 3)], out, config(server.url))
    assert s["already_done"] == 3 and s["samples"] == 1 and server.total == calls + 1
    assert len(read_jsonl(out / "seed.jsonl")) == 4


def test_bad_snippet_record_names_where(server, api_key, tmp_path):
    with pytest.raises(ScoderError, match=r"pool.jsonl:3: field 'content'"):
        run_teacher([{"id": "x", "content": "", "_where": "pool.jsonl:3"}], tmp_path / "seed", config(server.url))


def test_seed_cli(server, api_key, tmp_path, capsys):
    from scoder_jax.cli import main

    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps(snippet(m, i)) for i, m in enumerate(["OK", "OK", "NOSOL", "OK"])) + "\n")
    out = tmp_path / "seed"
    args = ["seed", "--snippets", str(pool), "--out", str(out), "--teacher-url", server.url,
            "--teacher-model", "m", "--api-key-env", KEY_ENV, "--limit", "3", "--concurrency", "2",
            "--timeout", "0.5", "--deadline", "1.0", "--no-progress"]
    main(args)
    cap = capsys.readouterr()
    summary = json.loads(cap.out.strip().splitlines()[-1])
    assert "2 new samples, 1 failures (no_solution 1)" in cap.err
    assert summary["samples"] == 2 and summary["failures"] == 1 and summary["reasons"] == {"no_solution": 1}
    assert server.total == 3
    main(args)
    assert server.total == 3

    def fails(argv, pattern):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert re.search(pattern, err), err

    fails(["seed", "--snippets", str(pool), "--import", str(pool), "--out", str(out)], "exactly one of")
    fails(["seed", "--snippets", str(pool), "--out", str(out)], "--teacher-url is required")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(snippet("OK")) + "\n{not json\n")
    fails(["seed", "--snippets", str(bad), "--out", str(tmp_path / "o2"), "--teacher-url", server.url,
           "--teacher-model", "m", "--api-key-env", KEY_ENV, "--no-progress"], r"bad\.jsonl:2: malformed JSON")
    fails(["seed", "--snippets", str(pool), "--out", str(tmp_path / "o3"), "--teacher-url", server.url,
           "--teacher-model", "m", "--api-key-env", "SCODER_TEST_UNSET_VAR", "--no-progress"],
          "SCODER_TEST_UNSET_VAR is not set")


def test_format_drives_the_prompt_the_parser_and_the_folder(server, api_key, tmp_path):
    """problem_solution: no tests asked for, a reply without tests is a sample (and one with tests
    keeps none); problem_solution_tests (the default): tests asked for and required."""
    snips = [snippet("OK"), snippet("NOTESTS")]
    ps = tmp_path / "ps"
    s = run_teacher(snips, ps, config(server.url), fmt="problem_solution")
    assert (s["samples"], s["failures"]) == (2, 0)
    for system, user in server.messages:
        assert "[Tests]" not in user["content"] and "exactly two sections" in user["content"]
        assert "tests" not in system["content"]
    seeds, _ = outcomes(ps)
    assert [seeds[sn["id"]]["tests"] for sn in snips] == ["", ""]
    assert seeds["sn-notests-0"]["solution"] == "def dec(x):\n    return x - 1"
    meta = seeds["sn-ok-0"]["meta"]
    assert (meta["format"], meta["prompt_version"]) == ("problem_solution", prompt_version("problem_solution"))

    pst = tmp_path / "pst"
    server.messages.clear()
    s = run_teacher(snips, pst, config(server.url))
    assert (s["samples"], s["failures"], s["reasons"]) == (1, 1, {"no_tests": 1})
    assert len(server.messages) == 2 and all("[Tests]" in m[1]["content"] for m in server.messages)
    seeds, fails = outcomes(pst)
    assert seeds["sn-ok-0"]["tests"].startswith("assert inc(1) == 2")
    assert fails["sn-notests-0"]["prompt_version"] == PROMPT_VERSION

    # one folder holds one format: another format is refused before any request or write
    before = {p: p.read_bytes() for p in ps.rglob("*") if p.is_file()}
    total = server.total
    with pytest.raises(DataError, match=re.escape(f"{ps / 'seed.jsonl'}:1: a teacher record of the sample format "
                                                  "problem_solution, and this run asks for problem_solution_tests")):
        run_teacher([*snips, snippet("OK", 1)], ps, config(server.url))
    assert server.total == total and {p: p.read_bytes() for p in ps.rglob("*") if p.is_file()} == before


def test_seed_cli_format(server, api_key, tmp_path, capsys):
    from scoder_jax.cli import main

    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(snippet(m)) + "\n" for m in ("OK", "NOTESTS")))
    base = ["seed", "--snippets", str(pool), "--teacher-url", server.url, "--teacher-model", "m",
            "--api-key-env", KEY_ENV, "--timeout", "0.5", "--deadline", "1.0", "--no-progress"]
    main([*base, "--out", str(tmp_path / "ps"), "--format", "problem_solution"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["samples"], summary["failures"]) == (2, 0)
    assert not any("[Tests]" in m[1]["content"] for m in server.messages)
    main([*base, "--out", str(tmp_path / "pst")])  # the default: the loop's synth.format default
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["reasons"] == {"no_tests": 1} and "[Tests]" in server.messages[-1][1]["content"]
    with pytest.raises(SystemExit) as e:
        main([*base, "--out", str(tmp_path / "x"), "--format", "problem_only"])
    assert e.value.code == 2 and "Invalid value for '--format'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

"""The teacher's HTTP side: an OpenAI-compatible chat-completions client with retries, the
usage/budget ledger, and the API-key handling. `teacher` drives it; it imports nothing from there.

Requests: bounded concurrency (a thread pool), retries with exponential backoff and jitter on
429, 408, 5xx, timeouts, dropped connections and truncated bodies; a 429 pauses every worker
(honouring `Retry-After` up to `backoff_max_s`). Every attempt waits at most `timeout_s` for
any byte and `deadline_s` (+ one `timeout_s`) in all, so a slow body cannot hang a worker.
401/403/404 abort the run (a bad key, URL or model is not the snippet's fault); other 4xx are
recorded as final failures. Transient failures that outlast `max_retries` are recorded with
`"transient": true`; `retry_failed=True` (`scoder seed --retry-failed`) sends them again.

Budget: before each attempt the worst case (estimated prompt tokens + `max_tokens`) is reserved;
if spent + reserved would pass `budget_usd` or `max_tokens_total`, no further request is sent.
Replies settle at their reported `usage` (estimated from text length when absent); attempts
whose cost is unknown (timeouts, truncated bodies) are charged their whole reservation, so the
cap holds even when the server bills work the client never saw.

The API key is read from the environment variable `cfg.api_key_env` at each attempt. It is
sent only in the Authorization header; it is never logged, never written to `out_dir`, and
scrubbed from any server text that is stored or raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import ipaddress
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from scoder_jax.errors import ConfigError, DataError, ScoderError
from scoder_jax.synth.prompts import PROMPT_VERSION

log = logging.getLogger(__name__)

# Failure reasons of the HTTP stage (the parse stage uses prompts.REASONS).
HTTP_REASONS: tuple[str, ...] = (
    "rate_limited",  # 429 after every retry
    "server_error",  # 5xx / 408 after every retry
    "timeout",  # no byte within timeout_s, or the body outlasted deadline_s, after every retry
    "connection",  # refused / reset after every retry
    "bad_response",  # a 200 whose body is not a chat completion (truncated or malformed JSON)
    "http_error",  # another 4xx (e.g. 400: the prompt is too long); not retried
)
TRANSIENT = frozenset({"rate_limited", "server_error", "timeout", "connection", "bad_response"})


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    url: str  # base URL (".../v1") or the full ".../chat/completions" endpoint
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"  # None or "": send no Authorization header
    concurrency: int = 8
    max_retries: int = 6  # retries after the first attempt
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 120.0  # connect timeout and the longest silence while reading
    deadline_s: float = 600.0  # the longest one attempt may spend reading its body
    temperature: float = 0.0
    max_tokens: int = 2048
    price_per_1k_prompt: float = 0.0  # USD
    price_per_1k_completion: float = 0.0  # USD
    budget_usd: float | None = None  # cap on the cumulative cost in out_dir; None: no cap
    max_tokens_total: int | None = None  # cap on cumulative prompt+completion tokens; None: no cap
    max_body_bytes: int = 16 << 20

    def __post_init__(self):
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(f"--teacher-url: expected an http(s) URL, got {redact_url(self.url)!r}")
        if not self.model:
            raise ConfigError("--teacher-model: must not be empty")
        for name in ("concurrency", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"teacher {name}: must be at least 1, got {getattr(self, name)}")
        for name in ("max_retries", "backoff_base_s", "backoff_max_s", "price_per_1k_prompt",
                     "price_per_1k_completion"):
            if getattr(self, name) < 0:
                raise ConfigError(f"teacher {name}: must not be negative, got {getattr(self, name)}")
        for name in ("timeout_s", "deadline_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"teacher {name}: must be positive, got {getattr(self, name)}")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ConfigError(f"--budget-usd: must not be negative, got {self.budget_usd}")
        if self.max_tokens_total is not None and self.max_tokens_total < 0:
            raise ConfigError(f"--max-tokens-total: must not be negative, got {self.max_tokens_total}")

    @property
    def endpoint(self) -> str:
        return chat_completions_url(self.url)

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.price_per_1k_prompt + completion_tokens * self.price_per_1k_completion) / 1000.0


def chat_completions_url(url: str) -> str:
    """".../v1" -> ".../v1/chat/completions"; a bare host gets "/v1/chat/completions"."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path = (path or "/v1") + "/chat/completions"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def redact_url(url: str) -> str:
    """The URL without credentials or query (both can carry keys), for messages."""
    try:
        p = urllib.parse.urlsplit(url)
        host = p.hostname or ""
        if p.port:
            host = f"{host}:{p.port}"
        return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))
    except ValueError:
        return "<unparseable URL>"


# ----------------------------------------------------------------------------------------------
# Secrets


class ApiKey:
    """Reads the API key from the environment at each use; scrubs it from text."""

    def __init__(self, env: str | None):
        self.env = env or None
        self._used: set[str] = set()  # keys sent in this run (memory only), in case the variable changes

    def get(self) -> str:
        if self.env is None:
            return ""
        key = os.environ.get(self.env, "").strip()
        if not key:
            raise ScoderError(f"environment variable {self.env} is not set or empty: export the API key "
                              "there, or name another variable with --api-key-env")
        self._used.add(key)
        return key

    def scrub(self, text: str) -> str:
        if self.env is None or not text:
            return text
        keys = self._used | {os.environ.get(self.env, "").strip()}
        for key in sorted(keys, key=len, reverse=True):
            if len(key) >= 4 and key in text:
                text = text.replace(key, "[redacted]")
        return text


# ----------------------------------------------------------------------------------------------
# Usage and budget


@dataclasses.dataclass
class _Reservation:
    tokens: int
    usd: float


class Ledger:
    """Cumulative usage with reservations; thread-safe."""

    FIELDS = ("prompt_tokens", "completion_tokens", "cost_usd", "estimated_cost_usd", "requests",
              "http_retries", "replies", "cache_hits")

    def __init__(self, cfg: TeacherConfig, totals: dict | None = None):
        self.cfg = cfg
        self._lock = threading.Lock()
        self.totals: dict[str, float] = {k: 0 for k in self.FIELDS}
        for k in self.FIELDS:
            v = (totals or {}).get(k)
            if isinstance(v, (int, float)):
                self.totals[k] = v
        self.run: dict[str, float] = {k: 0 for k in self.FIELDS}
        self.reserved_tokens = 0
        self.reserved_usd = 0.0

    @classmethod
    def load(cls, path: Path, cfg: TeacherConfig) -> "Ledger":
        if not path.exists():
            return cls(cfg)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: unreadable usage file ({type(e).__name__}); it holds the spend "
                            "the budget counts against: fix or delete it") from None
        return cls(cfg, data.get("totals") if isinstance(data, dict) else None)

    def spent_tokens(self) -> float:
        return self.totals["prompt_tokens"] + self.totals["completion_tokens"]

    def reserve(self, prompt_tokens: int) -> _Reservation | None:
        r = _Reservation(tokens=prompt_tokens + self.cfg.max_tokens,
                         usd=self.cfg.cost(prompt_tokens, self.cfg.max_tokens))
        with self._lock:
            if self.cfg.budget_usd is not None and \
                    self.totals["cost_usd"] + self.reserved_usd + r.usd > self.cfg.budget_usd + 1e-12:
                return None
            if self.cfg.max_tokens_total is not None and \
                    self.spent_tokens() + self.reserved_tokens + r.tokens > self.cfg.max_tokens_total:
                return None
            self.reserved_tokens += r.tokens
            self.reserved_usd += r.usd
            self._add("requests", 1)
            return r

    def settle(self, r: _Reservation, prompt_tokens: int | None, completion_tokens: int | None,
               *, estimated: bool = False) -> None:
        """Releases `r` and charges the given tokens (None: charge nothing)."""
        with self._lock:
            self.reserved_tokens -= r.tokens
            self.reserved_usd -= r.usd
            if prompt_tokens is None:
                return
            cost = self.cfg.cost(prompt_tokens, completion_tokens or 0)
            self._add("prompt_tokens", prompt_tokens)
            self._add("completion_tokens", completion_tokens or 0)
            self._add("cost_usd", cost)
            if estimated:
                self._add("estimated_cost_usd", cost)

    def count(self, field: str, n: int = 1) -> None:
        with self._lock:
            self._add(field, n)

    def _add(self, field: str, n: float) -> None:
        self.totals[field] += n
        self.run[field] += n

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "totals": {k: _round(v) for k, v in self.totals.items()},
                "last_run": {k: _round(v) for k, v in self.run.items()},
                "budget_usd": self.cfg.budget_usd,
                "max_tokens_total": self.cfg.max_tokens_total,
                "price_per_1k_prompt": self.cfg.price_per_1k_prompt,
                "price_per_1k_completion": self.cfg.price_per_1k_completion,
                "model": self.cfg.model,
                "prompt_version": PROMPT_VERSION,
            }


def _round(v: float) -> float:
    return round(v, 8) if isinstance(v, float) else v


def estimate_tokens(text: str) -> int:
    """A deliberately high token estimate (3 characters a token) for reservations."""
    return math.ceil(len(text) / 3)


# ----------------------------------------------------------------------------------------------
# HTTP client


class StopSending(Exception):
    """The budget is spent or the run is stopping: send nothing more."""


class _DeadlineExceeded(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


@dataclasses.dataclass
class _Attempt:
    kind: str  # "ok" | one of HTTP_REASONS | "auth" | "not_found"
    status: int = 0
    detail: str = ""
    retry_after: float | None = None
    reply: dict | None = None  # the parsed chat completion for "ok"
    charge_reservation: bool = False  # cost unknown: charge the worst case


@dataclasses.dataclass
class Reply:
    ok: bool
    content: str = ""
    finish_reason: str | None = None
    usage: dict | None = None
    raw: dict | None = None
    attempts: int = 0
    reason: str = ""
    detail: str = ""
    status: int = 0


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    v = headers.get("Retry-After")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(v).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


class ChatClient:
    """Sends chat-completion requests with retries, backoff, a shared 429 pause and the budget."""

    def __init__(self, cfg: TeacherConfig, ledger: Ledger, secret: ApiKey, stop: threading.Event,
                 *, rng: random.Random | None = None):
        self.cfg = cfg
        self.url = cfg.endpoint
        self.ledger = ledger
        self.secret = secret
        self.stop = stop
        self.rng = rng or random.Random()
        self._pause_lock = threading.Lock()
        self._pause_until = 0.0
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(self.url) else []
        self._opener = urllib.request.build_opener(*handlers)

    # -- one request, all attempts --

    def complete(self, messages: list[dict]) -> Reply:
        cfg = self.cfg
        payload = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature,
                   "max_tokens": cfg.max_tokens, "stream": False}
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        est_prompt = estimate_tokens("".join(m["content"] for m in messages)) + 8 * len(messages)
        last: _Attempt | None = None
        for attempt in range(cfg.max_retries + 1):
            self._wait_pause()
            if self.stop.is_set():
                raise StopSending
            res = self.ledger.reserve(est_prompt)
            if res is None:
                self.stop.set()
                raise StopSending
            if attempt:
                self.ledger.count("http_retries")
            try:
                last = self._attempt(body)
            except BaseException:
                self.ledger.settle(res, None, None)
                raise
            if last.kind == "ok":
                reply = self._reply(last, est_prompt, res)
                reply.attempts = attempt + 1
                return reply
            if last.charge_reservation:
                self.ledger.settle(res, est_prompt, cfg.max_tokens, estimated=True)
            else:
                self.ledger.settle(res, None, None)
            if last.kind == "auth":
                raise ScoderError(f"{redact_url(self.url)}: the teacher refused the API key (HTTP {last.status}); "
                                  f"check ${self.secret.env}" if self.secret.env else
                                  f"{redact_url(self.url)}: the teacher requires an API key (HTTP {last.status}): "
                                  "pass --api-key-env")
            if last.kind == "not_found":
                raise ScoderError(f"{redact_url(self.url)}: HTTP 404 ({last.detail}); check --teacher-url "
                                  f"(base URL ending in /v1) and --teacher-model {cfg.model!r}")
            if last.kind not in TRANSIENT:
                return Reply(ok=False, attempts=attempt + 1, reason=last.kind, detail=last.detail, status=last.status)
            if attempt < cfg.max_retries:
                delay = self._backoff(attempt, last)
                log.debug("teacher attempt %d: %s (%s); retrying in %.2fs", attempt + 1, last.kind, last.status, delay)
                if last.kind == "rate_limited":
                    self._pause(delay)
                elif self.stop.wait(delay):
                    raise StopSending
        assert last is not None
        return Reply(ok=False, attempts=cfg.max_retries + 1, reason=last.kind, detail=last.detail, status=last.status)

    def _reply(self, a: _Attempt, est_prompt: int, res: _Reservation) -> Reply:
        raw = a.reply or {}
        choice = raw["choices"][0]
        content = choice["message"]["content"]
        usage = raw.get("usage") if isinstance(raw.get("usage"), dict) else None
        pt = usage.get("prompt_tokens") if usage else None
        ct = usage.get("completion_tokens") if usage else None
        if isinstance(pt, int) and isinstance(ct, int) and pt >= 0 and ct >= 0:
            self.ledger.settle(res, pt, ct)
            usage = {"prompt_tokens": pt, "completion_tokens": ct, "estimated": False}
        else:
            ct = estimate_tokens(content)
            self.ledger.settle(res, est_prompt, ct, estimated=True)
            usage = {"prompt_tokens": est_prompt, "completion_tokens": ct, "estimated": True}
        self.ledger.count("replies")
        return Reply(ok=True, content=content, finish_reason=choice.get("finish_reason"), usage=usage, raw=raw)

    def _backoff(self, attempt: int, a: _Attempt) -> float:
        cfg = self.cfg
        base = min(cfg.backoff_max_s, cfg.backoff_base_s * (2 ** attempt))
        delay = base / 2 + self.rng.uniform(0, base / 2)  # "equal jitter"
        if a.retry_after is not None:
            delay = max(delay, min(a.retry_after, cfg.backoff_max_s))
        return delay

    def _pause(self, delay: float) -> None:
        with self._pause_lock:
            self._pause_until = max(self._pause_until, time.monotonic() + delay)

    def _wait_pause(self) -> None:
        while True:
            with self._pause_lock:
                left = self._pause_until - time.monotonic()
            if left <= 0 or self.stop.wait(left):
                return

    # -- one attempt --

    def _attempt(self, body: bytes) -> _Attempt:
        cfg = self.cfg
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "scoder-jax-teacher"}
        key = self.secret.get()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        deadline = time.monotonic() + cfg.deadline_s
        try:
            resp = self._opener.open(req, timeout=cfg.timeout_s)
        except urllib.error.HTTPError as e:
            with contextlib.closing(e):
                try:
                    data = self._read(e, deadline)
                except Exception:  # the status is what matters; the body is only a detail
                    data = b""
                return self._classify(e.code, e.headers, data)
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                return _Attempt("timeout", detail="no response within timeout_s", charge_reservation=True)
            return _Attempt("connection", detail=self.secret.scrub(f"{type(e.reason).__name__}: {e.reason}")[:200])
        except TimeoutError:
            return _Attempt("timeout", detail="no response within timeout_s", charge_reservation=True)
        except (http.client.HTTPException, OSError) as e:
            return _Attempt("connection", detail=type(e).__name__)
        with contextlib.closing(resp):
            try:
                data = self._read(resp, deadline)
            except _DeadlineExceeded:
                return _Attempt("timeout", status=resp.status, detail="the body outlasted deadline_s",
                                charge_reservation=True)
            except TimeoutError:
                return _Attempt("timeout", status=resp.status, detail="the body stalled for timeout_s",
                                charge_reservation=True)
            except _BodyTooLarge:
                return _Attempt("bad_response", status=resp.status, detail="body larger than max_body_bytes",
                                charge_reservation=True)
            except http.client.IncompleteRead:
                return _Attempt("bad_response", status=resp.status, detail="truncated body", charge_reservation=True)
            except (http.client.HTTPException, OSError) as e:
                return _Attempt("connection", status=resp.status, detail=f"{type(e).__name__} while reading the body",
                                charge_reservation=True)
            return self._classify(resp.status, resp.headers, data)

    def _read(self, resp, deadline: float) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            if time.monotonic() > deadline:
                raise _DeadlineExceeded
            chunk = resp.read1(65536)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > self.cfg.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)

    def _classify(self, status: int, headers, data: bytes) -> _Attempt:
        text = self.secret.scrub(data[:300].decode("utf-8", "replace")).replace("\n", " ")
        if status == 429:
            return _Attempt("rate_limited", status, "HTTP 429", retry_after=_retry_after(headers))
        if status >= 500 or status == 408:
            return _Attempt("server_error", status, f"HTTP {status}: {text[:200]}", retry_after=_retry_after(headers))
        if status in (401, 403):
            return _Attempt("auth", status)
        if status == 404:
            return _Attempt("not_found", status, text[:200])
        if status >= 300:
            return _Attempt("http_error", status, f"HTTP {status}: {text[:200]}")
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return _Attempt("bad_response", status, f"the body is not JSON ({type(e).__name__}, {len(data)} bytes)",
                            charge_reservation=True)
        problem = _chat_completion_problem(obj)
        if problem:
            # Valid JSON in the wrong shape is not a network glitch, but a proxy may still
            # produce it once; it is retried like a truncated body.
            return _Attempt("bad_response", status, self.secret.scrub(problem)[:200], charge_reservation=True)
        return _Attempt("ok", status, reply=obj)


def _chat_completion_problem(obj: Any) -> str:
    """"" if `obj` is a usable chat completion, else what is wrong with it."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    if "error" in obj and "choices" not in obj:
        err = obj["error"]
        msg = err.get("message") if isinstance(err, dict) else err
        return f"error reply: {str(msg)[:150]}"
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "no choices"
    msg = choices[0].get("message")
    if not isinstance(msg, dict) or not isinstance(msg.get("content"), str):
        return "choices[0].message.content is missing"
    return ""


def bounded_results(fn, items, concurrency: int, stop: threading.Event, name: str):
    """fn(item) for the items on a thread pool of `concurrency` threads, at most 2 x concurrency
    in flight, yielding results as they finish; no new item is taken once `stop` is set (what is
    left stays in the `items` iterator). Closed early (an error in the caller's loop: use
    `contextlib.closing`), it sets `stop` and cancels what has not started; replies already
    received are in the teacher's cache, so a rerun does not pay for them again."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name)
    inflight: set = set()
    exhausted = finished_ok = False
    try:
        while True:
            while not exhausted and not stop.is_set() and len(inflight) < 2 * concurrency:
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                inflight.add(pool.submit(fn, item))
            if not inflight:
                break
            done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
        finished_ok = True
    finally:
        if finished_ok:
            pool.shutdown(wait=True)
        else:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)


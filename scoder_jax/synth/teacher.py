"""The teacher: turns snippets into the seed set through an OpenAI-compatible chat-completions model.

`run_teacher(snippets, out_dir, cfg, fmt=...)` sends each snippet through `prompts.build_messages`,
parses the reply with `reply_parser.parse_response`, both in the sample format `fmt` (`synth.format`,
`scoder seed --format`: [Tests] are asked for and required only in "problem_solution_tests"),
and leaves, for every snippet, exactly one record: a seed sample in `seed.jsonl` or a failure
in `failures.jsonl`, unless the budget cap stopped it first (then it stays *pending*: nothing is
recorded, and a rerun with a larger budget picks it up). `out_dir` holds:

    seed.jsonl      Sample records (origin "teacher"), appended as replies arrive
    failures.jsonl  {"snippet_id", "reason", "stage", "detail", "transient", ...}, appended
    cache/          one JSON file per reply, keyed by sha256 of (snippet sha256, language,
                    the format's prompt version, model): the raw reply, so a rerun makes no
                    repeated call
    usage.json      cumulative tokens, cost and request counts (the budget applies to the total)

One `out_dir` holds one format: a run in another format than the teacher records already there
is refused (a seed set mixing samples with and without tests would teach both).

The HTTP client (retries, backoff, the shared 429 pause), the budget ledger and the API-key
handling are in `teacher_client`; importing an existing seed set is in `seed_import`.
The API key never reaches `out_dir`: replies and failure details are scrubbed before they are
cached or written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from scoder_jax.errors import DataError
from scoder_jax.io import JsonlAppender, iter_jsonl, write_json_atomic, write_jsonl_atomic
from scoder_jax.records import content_id
from scoder_jax.synth.prompts import (DEFAULT_FORMAT, FORMATS, PROMPT_VERSION, build_messages, check_format, language,
                                      prompt_version)
from scoder_jax.synth.reply_parser import parse_response
from scoder_jax.synth.teacher_client import (TRANSIENT, ApiKey, ChatClient, Ledger, StopSending, TeacherConfig,
                                            bounded_results)

log = logging.getLogger(__name__)


def snippet_sha256(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def cache_key(content: str, lang: str, model: str, prompt_version: str = PROMPT_VERSION) -> str:
    """The cache key of one request: what determines the prompt, and the model that answers it."""
    parts = [snippet_sha256(content), language(lang).tag, prompt_version, model]
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------------
# Cache


class ReplyCache:
    """One JSON file per reply under `root/ab/<key>.json`, written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        p = self.path(key)
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable cache entry %s (%s)", p, type(e).__name__)
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            log.warning("ignoring malformed cache entry %s", p)
            return None
        return entry

    def put(self, key: str, entry: dict) -> None:
        write_json_atomic(self.path(key), entry)


# ----------------------------------------------------------------------------------------------
# The run


@dataclasses.dataclass(frozen=True)
class _Snippet:
    id: str
    lang: str
    content: str
    source: str


def _snippet(rec: dict, where: str) -> _Snippet:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a snippet object, got {type(rec).__name__}")
    content = rec.get("content")
    if not isinstance(content, str) or not content.strip():
        raise DataError(f"{where}: field 'content' must be a non-empty string (the snippet's code)")
    sid = rec.get("id") or content_id(content)
    lang = rec.get("lang") or "python"
    if not isinstance(sid, str) or not isinstance(lang, str):
        raise DataError(f"{where}: fields 'id' and 'lang' must be strings")
    return _Snippet(id=sid, lang=lang, content=content, source=str(rec.get("source", "")))


@dataclasses.dataclass
class _Outcome:
    snippet: _Snippet
    kind: str  # "sample" | "failure" | "pending"
    record: dict | None = None
    from_cache: bool = False


def sample_id(snippet_id: str, model: str, version: str = PROMPT_VERSION) -> str:
    return content_id(f"{snippet_id}\0{model}\0{version}", prefix="seed")


class _Run:
    def __init__(self, out_dir: Path, cfg: TeacherConfig, fmt: str):
        self.out_dir = out_dir
        self.cfg = cfg
        self.fmt = fmt
        self.version = prompt_version(fmt)
        self.secret = ApiKey(cfg.api_key_env)
        self.cache = ReplyCache(out_dir / "cache")
        self.ledger = Ledger.load(out_dir / "usage.json", cfg)
        self.stop = threading.Event()
        self.client = ChatClient(cfg, self.ledger, self.secret, self.stop)

    def process(self, snip: _Snippet) -> _Outcome:
        key = cache_key(snip.content, snip.lang, self.cfg.model, self.version)
        entry = self.cache.get(key)
        from_cache = entry is not None
        if entry is None:
            try:
                reply = self.client.complete(build_messages(snip.content, snip.lang, self.fmt))
            except StopSending:
                return _Outcome(snip, "pending")
            if not reply.ok:
                return _Outcome(snip, "failure", self._failure(snip, reply.reason, "http", reply.detail,
                                                               transient=reply.reason in TRANSIENT,
                                                               attempts=reply.attempts, status=reply.status))
            entry = {
                "key": key,
                "model": self.cfg.model,
                "prompt_version": self.version,
                "snippet_sha256": snippet_sha256(snip.content),
                "lang": snip.lang,
                "content": self.secret.scrub(reply.content),
                "finish_reason": reply.finish_reason,
                "usage": reply.usage,
                "attempts": reply.attempts,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "response": json.loads(self.secret.scrub(json.dumps(reply.raw, ensure_ascii=False))),
            }
            self.cache.put(key, entry)
        else:
            self.ledger.count("cache_hits")
        return self._from_entry(snip, key, entry, from_cache)

    def _from_entry(self, snip: _Snippet, key: str, entry: dict, from_cache: bool) -> _Outcome:
        if entry.get("finish_reason") == "length":
            return _Outcome(snip, "failure", self._failure(snip, "truncated", "parse",
                                                           f"the reply hit max_tokens ({self.cfg.max_tokens})"),
                            from_cache)
        pr = parse_response(entry["content"], snip.lang, fmt=self.fmt)
        if not pr.ok:
            return _Outcome(snip, "failure", self._failure(snip, pr.reason, "parse", pr.detail), from_cache)
        scrub = self.secret.scrub
        rec = {
            "id": sample_id(snip.id, self.cfg.model, self.version),
            "snippet_id": snip.id,
            "snippet": snip.content,
            "lang": snip.lang,
            "problem": scrub(pr.problem),
            "solution": scrub(pr.solution),
            "tests": scrub(pr.tests),
            "origin": "teacher",
            "meta": {"teacher_model": self.cfg.model, "prompt_version": self.version, "format": self.fmt,
                     "cache_key": key, "usage": entry.get("usage"), "source": snip.source},
        }
        return _Outcome(snip, "sample", rec, from_cache)

    def _failure(self, snip: _Snippet, reason: str, stage: str, detail: str, *, transient: bool = False,
                 attempts: int = 0, status: int = 0) -> dict:
        return {"snippet_id": snip.id, "reason": reason, "stage": stage, "detail": self.secret.scrub(detail),
                "transient": transient, "attempts": attempts, "status": status, "model": self.cfg.model,
                "prompt_version": self.version}


def _done_ids(seed_path: Path, fail_path: Path) -> set[str]:
    done: set[str] = set()
    for p in (seed_path, fail_path):
        if p.exists():
            for rec in iter_jsonl(p):
                sid = rec.get("snippet_id")
                if isinstance(sid, str):
                    done.add(sid)
    return done


def _check_one_format(seed_path: Path, fail_path: Path, fmt: str) -> None:
    """DataError naming file:line for a teacher record in `seed_path`/`fail_path` of another sample
    format than `fmt` (an imported sample names no prompt version: it fits any)."""
    version = prompt_version(fmt)
    format_of = {prompt_version(f): f for f in FORMATS}
    for p in (seed_path, fail_path):
        if not p.exists():
            continue
        JsonlAppender(p).close()  # cut a torn tail
        for rec in iter_jsonl(p, where_field="_where"):
            meta = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
            have = rec.get("prompt_version", meta.get("prompt_version"))
            if have in format_of and have != version:
                raise DataError(f"{rec['_where']}: a teacher record of the sample format {format_of[have]}, and "
                                f"this run asks for {fmt}; one seed folder holds one format: use another --out "
                                f"(or --format {format_of[have]})")


def _drop_transient_failures(fail_path: Path) -> int:
    if not fail_path.exists():
        return 0
    JsonlAppender(fail_path).close()  # cut a torn tail
    keep, dropped = [], 0
    for rec in iter_jsonl(fail_path):
        if rec.get("transient"):
            dropped += 1
        else:
            keep.append(rec)
    if dropped:
        write_jsonl_atomic(fail_path, keep)
    return dropped


def run_teacher(snippets: Iterable[dict], out_dir: Path, cfg: TeacherConfig, *, fmt: str = DEFAULT_FORMAT,
                retry_failed: bool = False, progress: bool = False) -> dict:
    """Makes (or resumes) the seed set in `out_dir` from `snippets` (Snippet records) in the sample
    format `fmt` (one of `prompts.FORMATS`: the prompt asks for, and the parser requires, [Tests]
    only in "problem_solution_tests"); returns counts.

    Summary keys: snippets (unique ids seen), already_done, duplicates, samples, failures,
    pending (left by the budget cap), cache_hits, requests, http_retries, reasons (failure
    reason -> count, this run), budget_stopped, and the cumulative prompt_tokens,
    completion_tokens, cost_usd.
    """
    out_dir = Path(out_dir)
    run = _Run(out_dir, cfg, check_format(fmt))
    run.secret.get()  # fail before any work if the key is missing
    seed_path, fail_path, usage_path = out_dir / "seed.jsonl", out_dir / "failures.jsonl", out_dir / "usage.json"
    _check_one_format(seed_path, fail_path, fmt)  # before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    retried = _drop_transient_failures(fail_path) if retry_failed else 0

    counts: Counter = Counter()
    reasons: Counter = Counter()
    total = len(snippets) if hasattr(snippets, "__len__") else None  # type: ignore[arg-type]

    with JsonlAppender(seed_path) as seeds, JsonlAppender(fail_path) as fails:
        done = _done_ids(seed_path, fail_path)

        def todo() -> Iterator[_Snippet]:
            seen: set[str] = set()
            for i, rec in enumerate(snippets):
                snip = _snippet(rec, rec.get("_where", f"snippet #{i + 1}") if isinstance(rec, dict)
                                else f"snippet #{i + 1}")
                if snip.id in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add(snip.id)
                counts["snippets"] += 1
                if snip.id in done:
                    counts["already_done"] += 1
                    continue
                yield snip

        bar = _progress(total, progress)
        it = todo()
        try:
            jobs = bounded_results(run.process, it, cfg.concurrency, run.stop, "teacher")
            with contextlib.closing(jobs) as results:
                for o in results:
                    if o.from_cache:
                        counts["cache_hits"] += 1
                    if o.kind == "sample":
                        seeds.write(o.record)
                        counts["samples"] += 1
                    elif o.kind == "failure":
                        fails.write(o.record)
                        counts["failures"] += 1
                        reasons[o.record["reason"]] += 1
                    else:
                        counts["pending"] += 1
                    if o.kind != "pending":
                        write_json_atomic(usage_path, run.ledger.snapshot())
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(ok=counts["samples"], failed=counts["failures"],
                                        usd=f"{run.ledger.totals['cost_usd']:.4f}", refresh=False)
                if run.stop.is_set():
                    for _ in it:  # the budget stopped the run: count what is left
                        counts["pending"] += 1
        finally:
            write_json_atomic(usage_path, run.ledger.snapshot())
            if bar is not None:
                bar.close()

    snap = run.ledger.snapshot()
    summary = {k: counts[k] for k in ("snippets", "already_done", "duplicates", "samples", "failures", "pending",
                                      "cache_hits")}
    summary.update({
        "retried_failures": retried,
        "requests": int(run.ledger.run["requests"]),
        "http_retries": int(run.ledger.run["http_retries"]),
        "reasons": dict(sorted(reasons.items())),
        "budget_stopped": run.stop.is_set() and counts["pending"] > 0,
        "prompt_tokens": snap["totals"]["prompt_tokens"],
        "completion_tokens": snap["totals"]["completion_tokens"],
        "cost_usd": snap["totals"]["cost_usd"],
        "run_cost_usd": snap["last_run"]["cost_usd"],
    })
    return summary


def _progress(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="snippet", desc="teacher", dynamic_ncols=True)

"""Teacher annotations for the scorer: an OpenAI-compatible model rates candidates on the aspects.

`annotate(candidates, out_dir, cfg, aspects)` sends one prompt per candidate listing every
aspect (`annotation_messages`) and reads the reply strictly (`parse_ratings`): one line
`name: D` per aspect, D a single digit 0..9, nothing else (a JSON object {name: int} is read
as well). A reply that does not read is never guessed at: the teacher is asked again in the
same conversation, told what was wrong, up to `parse_retries` times; after that the candidate
is recorded as a failure ("malformed") and counted. `out_dir` holds:

    annotate.json     the aspects, teacher model and prompt version (a rerun must match)
    annotations.jsonl one row per rated candidate: its fields (snippet, problem, solution,
                      tests, ...) and `ratings` {aspect: int 0..9}, appended as replies arrive
    failures.jsonl    {"id", "reason", "stage", "detail", "transient", "attempts"}, appended
    cache/            one JSON file per reply, keyed by sha256 of (model, the whole chat), so a
                      rerun makes no repeated call, retries included
    usage.json        cumulative tokens, cost and requests (the budget applies to the total)

Reruns resume: rated and finally failed candidates are skipped. Requests, retries, backoff and
the budget cap are `synth.teacher_client`'s (as for `scoder seed`); the API key never reaches
`out_dir`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from scoder_jax.errors import ConfigError
from scoder_jax.io import JsonlAppender, iter_jsonl, write_json_atomic
from scoder_jax.score.judge import JUDGE_SYSTEM, RUBRICS_WITHOUT_TESTS, Aspect, _fence, unjudgeable
from scoder_jax.synth.prompts import language
from scoder_jax.synth.teacher import ReplyCache, _drop_transient_failures
from scoder_jax.synth.teacher_client import (TRANSIENT, ApiKey, ChatClient, Ledger, StopSending, TeacherConfig,
                                            bounded_results)

ANNOTATE_PROMPT_VERSION = "annotate-1"
CANDIDATE_FIELDS = ("id", "snippet_id", "snippet", "lang", "problem", "solution", "tests", "origin")


# ----------------------------------------------------------------------------------------------
# Prompt and parsing


def annotation_messages(candidate: dict, aspects: Sequence[Aspect]) -> list[dict]:
    """The chat asking the teacher for every aspect's rating of one candidate (one reply)."""
    tag = language(candidate.get("lang") or "python").tag
    snippet = (candidate.get("snippet") or "").strip("\n")
    tests = candidate.get("tests") or ""
    with_tests = bool(tests.strip())
    rubrics = "\n".join(f"- {a.name} ({a.title}): "
                        f"{a.rubric if with_tests else RUBRICS_WITHOUT_TESTS.get(a.rubric, a.rubric)}" for a in aspects)
    lines = "\n".join(f"{a.name}: D" for a in aspects)
    parts = ["Rate the programming exercise below, which was written from a code snippet, on each criterion "
             "from 0 (worst) to 9 (best), in whole numbers.\n",
             f"Criteria:\n{rubrics}\n",
             "Code snippet:\n" + (_fence(snippet, tag) if snippet.strip() else "(not given)") + "\n",
             "Problem:\n" + (candidate.get("problem") or "").strip() + "\n",
             "Solution:\n" + _fence(candidate.get("solution") or "", tag) + "\n"]
    if with_tests:
        parts.append("Tests:\n" + _fence(tests, tag) + "\n")
    parts.append(f"Answer with exactly {len(aspects)} line(s), one per criterion in the order above, each the "
                 "criterion's name, a colon and one digit D from 0 to 9, and nothing else:\n" + lines)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def correction_message(detail: str, aspects: Sequence[Aspect]) -> dict:
    """The follow-up turn after a reply that did not read."""
    lines = "\n".join(f"{a.name}: D" for a in aspects)
    return {"role": "user", "content": f"Your answer could not be read: {detail}. Answer again with exactly "
                                       f"{len(aspects)} line(s), each a name and a single digit 0-9, and nothing "
                                       f"else:\n{lines}"}


_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_\- ]*?)\s*:\s*(\S.*?)\s*$")


def parse_ratings(text: str, names: Sequence[str]) -> tuple[dict[str, int] | None, str]:
    """Strictly read a teacher's reply: ({name: 0..9}, "") or (None, what is wrong).

    Accepted: exactly one line `name: D` per aspect (any order, names case-insensitive, blank
    lines ignored), D one digit; or a JSON object {name: integer 0..9} with exactly the aspects.
    Anything else (a fraction, 10, a word, a missing, repeated or unknown name, extra text) is
    malformed: no number is read out of it.
    """
    text = (text or "").strip()
    if not text:
        return None, "empty reply"
    wanted = {n.lower(): n for n in names}
    got: dict[str, int] = {}
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return None, "not valid JSON"
        if not isinstance(obj, dict):
            return None, "not a JSON object"
        items = list(obj.items())
    else:
        items = []
        for line in (ln for ln in text.splitlines() if ln.strip()):
            m = _LINE.match(line)
            if not m:
                return None, f"line {line.strip()[:60]!r} is not 'name: digit'"
            items.append((m.group(1), m.group(2)))
    for key, value in items:
        name = wanted.get(str(key).strip().lower())
        if name is None:
            return None, f"unknown criterion {str(key)[:40]!r} (expected {', '.join(names)})"
        if name in got:
            return None, f"criterion {name!r} rated twice"
        if isinstance(value, str):
            if not re.fullmatch(r"[0-9]", value):
                return None, f"{name}: {value[:20]!r} is not a single digit 0-9"
            value = int(value)
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
            return None, f"{name}: {json.dumps(value)[:20]} is not an integer 0-9"
        got[name] = value
    missing = [n for n in names if n not in got]
    if missing:
        return None, f"no rating for {', '.join(missing)}"
    return {n: got[n] for n in names}, ""


# ----------------------------------------------------------------------------------------------
# The run


def request_key(model: str, messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps([model, messages], ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def identity(aspects: Sequence[Aspect], model: str) -> dict:
    return {"aspects": [dataclasses.asdict(a) for a in aspects], "teacher_model": model,
            "prompt_version": ANNOTATE_PROMPT_VERSION}


def _check_identity(out_dir: Path, ident: dict) -> None:
    path = out_dir / "annotate.json"
    if not path.exists():
        write_json_atomic(path, ident)
        return
    have = json.loads(path.read_text(encoding="utf-8"))
    if have != ident:
        said = ", ".join(a["name"] for a in have.get("aspects", []))
        raise ConfigError(f"{path}: {out_dir} holds ratings on aspects {said} by {have.get('teacher_model')!r} "
                          f"({have.get('prompt_version')}); now {', '.join(a['name'] for a in ident['aspects'])} by "
                          f"{ident['teacher_model']!r} ({ident['prompt_version']}): use a fresh --out directory")


def pick_sample(candidates: Sequence[dict], n: int | None, seed: int) -> list[dict]:
    """The judgeable candidates, or a seeded random `n` of them, in their file order."""
    ok = [c for c in candidates if not unjudgeable(c)]
    if n is None or n >= len(ok):
        return ok
    keep = sorted(random.Random(seed).sample(range(len(ok)), n))
    return [ok[i] for i in keep]


@dataclasses.dataclass
class _Outcome:
    cand: dict
    kind: str  # "annotation" | "failure" | "pending"
    record: dict | None = None
    cached: int = 0  # replies read from the cache


class _Annotator:
    def __init__(self, out_dir: Path, cfg: TeacherConfig, aspects: Sequence[Aspect], parse_retries: int):
        self.cfg, self.aspects, self.parse_retries = cfg, tuple(aspects), parse_retries
        self.names = [a.name for a in aspects]
        self.secret = ApiKey(cfg.api_key_env)
        self.cache = ReplyCache(out_dir / "cache")
        self.ledger = Ledger.load(out_dir / "usage.json", cfg)
        self.stop = threading.Event()
        self.client = ChatClient(cfg, self.ledger, self.secret, self.stop)

    def process(self, cand: dict) -> _Outcome:
        messages = annotation_messages(cand, self.aspects)
        cached, requests, detail = 0, 0, ""
        for attempt in range(self.parse_retries + 1):
            key = request_key(self.cfg.model, messages)
            entry = self.cache.get(key)
            if entry is not None:
                cached += 1
                self.ledger.count("cache_hits")
            else:
                try:
                    reply = self.client.complete(messages)
                except StopSending:
                    return _Outcome(cand, "pending", cached=cached)
                requests += reply.attempts
                if not reply.ok:
                    return _Outcome(cand, "failure", self._failure(cand, reply.reason, "http", reply.detail,
                                                                   reply.reason in TRANSIENT, requests), cached)
                entry = {"key": key, "model": self.cfg.model, "content": self.secret.scrub(reply.content),
                         "finish_reason": reply.finish_reason, "usage": reply.usage, "attempt": attempt,
                         "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                self.cache.put(key, entry)
            ratings, detail = parse_ratings(entry["content"], self.names)
            if ratings is not None:
                rec = {k: cand.get(k) for k in CANDIDATE_FIELDS if k in cand}
                rec.update(ratings=ratings, teacher_model=self.cfg.model, prompt_version=ANNOTATE_PROMPT_VERSION,
                           replies=attempt + 1)
                return _Outcome(cand, "annotation", rec, cached)
            messages = messages + [{"role": "assistant", "content": entry["content"]},
                                   correction_message(detail, self.aspects)]
        return _Outcome(cand, "failure", self._failure(cand, "malformed", "parse", detail, False, requests), cached)

    def _failure(self, cand: dict, reason: str, stage: str, detail: str, transient: bool, attempts: int) -> dict:
        return {"id": cand["id"], "reason": reason, "stage": stage, "detail": self.secret.scrub(detail)[:300],
                "transient": transient, "attempts": attempts, "model": self.cfg.model}


def annotate(candidates: Sequence[dict], out_dir: str | Path, cfg: TeacherConfig, aspects: Sequence[Aspect], *,
             parse_retries: int = 2, retry_failed: bool = False, progress: bool = False) -> dict:
    """Rates (or resumes rating) `candidates` in `out_dir`; returns counts (see the module docstring).

    Summary keys: candidates, already_done, annotations, failures, pending (left by the budget
    cap), malformed (failures whose replies never read), reasons, cache_hits, requests,
    http_retries, budget_stopped, cost_usd (cumulative), run_cost_usd.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_identity(out_dir, identity(aspects, cfg.model))
    run = _Annotator(out_dir, cfg, aspects, parse_retries)
    run.secret.get()  # fail before any work if the key is missing
    ann_path, fail_path, usage_path = out_dir / "annotations.jsonl", out_dir / "failures.jsonl", out_dir / "usage.json"
    retried = _drop_transient_failures(fail_path) if retry_failed else 0
    counts: Counter = Counter()
    reasons: Counter = Counter()
    bar = None
    with JsonlAppender(ann_path) as anns, JsonlAppender(fail_path) as fails:
        done = {r.get("id") for p in (ann_path, fail_path) if p.exists() for r in iter_jsonl(p)}
        todo = []
        for c in candidates:
            counts["candidates"] += 1
            if c["id"] in done:
                counts["already_done"] += 1
            else:
                todo.append(c)
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="cand", desc="annotate", dynamic_ncols=True)
        it = iter(todo)
        try:
            jobs = bounded_results(run.process, it, cfg.concurrency, run.stop, "annotate")
            with contextlib.closing(jobs) as results:
                for o in results:
                    counts["cache_hits"] += o.cached
                    if o.kind == "annotation":
                        anns.write(o.record)
                        counts["annotations"] += 1
                    elif o.kind == "failure":
                        fails.write(o.record)
                        counts["failures"] += 1
                        reasons[o.record["reason"]] += 1
                    else:
                        counts["pending"] += 1
                    if bar is not None:
                        bar.update(1)
                if run.stop.is_set():
                    counts["pending"] += sum(1 for _ in it)
        finally:
            write_json_atomic(usage_path, run.ledger.snapshot())
            if bar is not None:
                bar.close()
    snap = run.ledger.snapshot()
    summary = {k: counts[k] for k in ("candidates", "already_done", "annotations", "failures", "pending",
                                      "cache_hits")}
    summary.update({"malformed": reasons["malformed"], "reasons": dict(sorted(reasons.items())),
                    "retried_failures": retried, "requests": int(run.ledger.run["requests"]),
                    "http_retries": int(run.ledger.run["http_retries"]),
                    "budget_stopped": run.stop.is_set() and counts["pending"] > 0,
                    "cost_usd": snap["totals"]["cost_usd"], "run_cost_usd": snap["last_run"]["cost_usd"]})
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def load_annotations(ann_dir: str | Path) -> tuple[tuple[Aspect, ...], list[dict]]:
    """(the aspects, the rated rows) of an `annotate` folder; DataError/ConfigError when unusable."""
    from scoder_jax.errors import DataError

    ann_dir = Path(ann_dir)
    ident_path, rows_path = ann_dir / "annotate.json", ann_dir / "annotations.jsonl"
    if not ident_path.is_file() or not rows_path.is_file():
        raise DataError(f"{ann_dir}: not an annotation folder (no annotate.json / annotations.jsonl; "
                        "make one with `scoder scorer annotate`)")
    try:
        ident = json.loads(ident_path.read_text(encoding="utf-8"))
        aspects = tuple(Aspect(a["name"], a["title"], a["rubric"]) for a in ident["aspects"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{ident_path}: malformed ({type(e).__name__}: {e})") from None
    names = [a.name for a in aspects]
    rows = []
    for r in iter_jsonl(rows_path, require=("id", "ratings"), where_field="_where"):
        ratings, where = r["ratings"], r.pop("_where")
        if not isinstance(ratings, dict) or sorted(ratings) != sorted(names) or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9 for v in ratings.values()):
            raise DataError(f"{where}: 'ratings' must give each of {', '.join(names)} an integer 0-9")
        rows.append(r)
    return aspects, rows


__all__ = ["annotate", "annotation_messages", "parse_ratings", "load_annotations", "pick_sample",
           "ANNOTATE_PROMPT_VERSION"]

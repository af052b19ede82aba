"""`report.html`: one self-contained page on a run (figures inlined as PNG).

In the order a researcher reads it: the headline (dataset size, how much of it passes its own
tests, the student's pass@1); per iteration what was drawn, parsed, scored, kept and selected,
the fraction of kept samples whose own tests pass and pass@1 (of S_t; of the student for the
final set); each iteration's total scores against the previous iteration's; the judge's
per-aspect ratings; influence scores; three kept samples per iteration (highest, median and
lowest total) with their scores; time per stage; the config.

`collect` reads the numbers from the manifest and the stages' files (scores.jsonl and
selected.jsonl of each score stage, scores.jsonl of each influence stage); `write_report`
renders them (figures in `report_figures`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from pathlib import Path

from scoder_jax.io import iter_jsonl, write_text_atomic

COUNTS = ("drawn", "parsed", "scored", "kept", "selected")
EXAMPLE_CHARS = 1600  # longer fields are cut in the page (the dataset has them whole)
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:1.5em auto;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:3px 9px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
caption{caption-side:bottom;text-align:left;font-size:.85em;color:#555;padding-top:.3em}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.5em;overflow:auto;max-height:22em;font-size:.85em}
.example{border:1px solid #ddd;border-radius:4px;padding:.3em .8em;margin:.6em 0}
.example h4{margin:.4em 0}.fields{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:.6em}
.fields pre{margin:.2em 0 .5em;max-height:14em;white-space:pre-wrap;overflow-wrap:anywhere}\
.muted{color:#666;font-size:.9em}img{max-width:100%}
"""


def _png(fig, alt: str) -> str:
    from scoder_jax.report_figures import _plt, declutter

    declutter(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _rows(path: Path) -> list[dict]:
    return list(iter_jsonl(path)) if path.exists() else []


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _passes(rec: dict) -> bool | None:
    """Whether a scored row's (or a selected sample's) own tests passed; None: not executed."""
    sig = rec.get("signals")
    if sig is None:
        score = (rec.get("meta") or {}).get("score")
        sig = score.get("signals") if isinstance(score, dict) else None
    return None if not isinstance(sig, dict) or sig.get("passes") is None else bool(sig["passes"])


def _fraction(flags: list[bool | None]) -> dict | None:
    """{"rate", "passed", "of"} over the flags that are not None (None: none ran)."""
    known = [f for f in flags if f is not None]
    return {"rate": sum(known) / len(known), "passed": sum(known), "of": len(known)} if known else None


def _relative(path, run_dir: Path):
    """A checkpoint path inside the run directory, named relative to it."""
    if isinstance(path, str) and Path(path).is_absolute() and Path(path).is_relative_to(run_dir.absolute()):
        return Path(path).relative_to(run_dir.absolute()).as_posix()
    return path


def _examples(selected: list[dict], influence: dict[str, float | None], run_dir: Path) -> list[dict]:
    """The kept samples of highest, median and lowest total (fewer when fewer are kept)."""
    def total(r):
        return _number(((r.get("meta") or {}).get("score") or {}).get("total"))

    ranked = sorted((r for r in selected if total(r) is not None), key=lambda r: (-total(r), r["id"]))
    picks = {0: "highest", len(ranked) // 2: "median", len(ranked) - 1: "lowest"} if ranked else {}
    out = []
    for i in sorted(picks):
        r, score = ranked[i], ranked[i]["meta"]["score"]
        out.append({"rank": picks[i], "id": r["id"], "problem": r.get("problem", ""), "solution": r.get("solution", ""),
                    "tests": r.get("tests", ""), "total": total(r), "scores": score.get("scores") or {},
                    "tests_pass": _passes(r), "influence": influence.get(r["id"]),
                    "checkpoint": _relative((r.get("meta") or {}).get("checkpoint"), run_dir)})
    return out


def collect(run_dir: Path, manifest: dict, final_iteration: int | None = None) -> dict:
    """The report's numbers: {"iterations": {t: row}, "aspects": {aspect: ratings}, "final_eval",
    "timing", "dataset"}. A row holds the counts, pass@1 and its model, the kept / all scored
    candidates' test pass fractions, the totals of every scored candidate, the influence scores
    and three examples. `final_iteration` (T + 1) is the final set's row: its pass@1 is the
    student's (the eval stage)."""
    run_dir = Path(run_dir)
    stages = manifest.get("stages", {})
    iters: dict[int, dict] = {}
    aspects: dict[str, list[float]] = {}
    for e in stages.values():
        it, c, kind = e.get("iteration"), e.get("counts") or {}, e.get("kind")
        if it is None or kind not in ("sample", "score", "influence", "select", "eval", "student_eval"):
            continue
        row = iters.setdefault(it, {"totals": [], "influence": [], "examples": []})
        out = run_dir / e.get("out", "-")
        if kind == "sample":
            row["drawn"] = c.get("drawn", c.get("generated"))
            if row["drawn"] is None and "candidates" in c:  # the sampler counts parsed + rejected replies
                row["drawn"] = c["candidates"] + c.get("rejects", 0)
            row["parsed"] = c.get("parsed", c.get("candidates"))
        elif kind == "score":
            row["scored"] = c.get("scored", c.get("candidates"))
            row["kept"] = c.get("selected", c.get("kept"))
            scored = _rows(out / "scores.jsonl")
            kept = [r for r in scored if r.get("reason") == "selected"]
            row["kept_pass"] = _fraction([_passes(r) for r in kept])
            row["scored_pass"] = _fraction([_passes(r) for r in scored])
            row["totals"] = [t for t in (_number(r.get("total")) for r in scored) if t is not None]
            for r in scored:
                for a, v in (r.get("scores") or {}).items():
                    if _number(v) is not None:
                        aspects.setdefault(a, []).append(float(v))
            row["_selected"] = out / "selected.jsonl"
            row["weights"] = _weights(out)
        elif kind == "influence":
            row["_influence"] = {r["id"]: _number(r.get("score")) for r in _rows(out / "scores.jsonl")}
            row["influence"] = [v for v in row["_influence"].values() if v is not None]
        elif kind == "select":
            row["selected"] = c.get("selected")
        elif kind == "eval":
            row["pass@1"], row["model"] = c.get("pass@1"), f"S_{it}"
        elif kind == "student_eval":  # S_t judged by the student trained on its data
            row["pass@1"], row["model"] = c.get("pass@1"), f"student of S_{it}"
    final_eval = (stages.get("eval") or {}).get("counts") or {}
    if final_iteration in iters and final_eval.get("pass@1") is not None:
        iters[final_iteration]["pass@1"], iters[final_iteration]["model"] = final_eval["pass@1"], "student"
    for row in iters.values():
        row["examples"] = _examples(_rows(row.pop("_selected")) if "_selected" in row else [],
                                    row.pop("_influence", {}), run_dir)
    timing = {n: e.get("seconds") for n, e in stages.items() if e.get("seconds") is not None}
    export = (stages.get("export") or {}).get("counts") or {}
    return {"iterations": dict(sorted(iters.items())), "aspects": aspects, "final_eval": final_eval,
            "timing": timing, "dataset": {"rows": export.get("rows"), "tests_pass": export.get("tests_pass")}}


# ----------------------------------------------------------------------------- rendering


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def _rate(f: dict | None) -> str:
    return "—" if f is None else f"{100 * f['rate']:.0f}% ({f['passed']} of {f['of']})"


def _label(it: int, final_iteration: int | None) -> str:
    return "final" if it == final_iteration else str(it)


def _iteration_table(data: dict, final_iteration: int | None) -> str:
    head = ["iteration", *COUNTS, "kept whose tests pass", "all scored whose tests pass", "pass@1"]
    out = ["<table id='per-iteration'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for it, row in data["iterations"].items():
        p1 = "—" if row.get("pass@1") is None else f"{_fmt(row['pass@1'])} ({row['model']})"
        cells = [_label(it, final_iteration), *(_fmt(row.get(c)) for c in COUNTS),
                 _rate(row.get("kept_pass")), _rate(row.get("scored_pass")), p1]
        out.append("<tr>" + "".join(f"<td class='{h.split()[0]}'>{v}</td>" for h, v in zip(head, cells)) + "</tr>")
    out.append("<caption>kept: by scoring; selected: by influence (the final set has no influence step); "
               "tests: each sample's own tests, run in the sandbox (— where none ran); pass@1 (on the eval "
               "stage's first benchmark) of the model in brackets: S_t after iteration t, the student for the final "
               "set.</caption></table>")
    return "".join(out)


def _weights(score_dir: Path) -> dict | None:
    """The weights a score stage totalled with (its weights.json), and the cross-validated AUC of
    their fit where it fitted them (fit_report.json)."""
    try:
        w = json.loads((score_dir / "weights.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fit = (w.get("report") or {}) if isinstance(w, dict) else {}
    return {"method": w.get("method"), "weights": {**(w.get("aspect_weights") or {}), **(w.get("exec_weights") or {}),
                                                   "bias": w.get("bias")},
            "threshold": w.get("threshold"), "cv_auc": fit.get("cv_auc")}


def _weights_table(data: dict, final_iteration: int | None) -> str:
    """One row per score stage: how its weights were made, each weight, the threshold, the fit's AUC."""
    rows = [(it, r["weights"]) for it, r in data["iterations"].items() if r.get("weights")]
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for _, w in rows for k in w["weights"]))
    out = ["<table id='weights'><tr><th>iteration</th><th>weights</th>" + "".join(f"<th>{html.escape(k)}</th>"
                                                                          for k in keys)
           + "<th>threshold</th><th>cross-validated AUC</th></tr>"]
    for it, w in rows:
        out.append(f"<tr><td>{_label(it, final_iteration)}</td><td>{_fmt(w['method'])}</td>"
                   + "".join(f"<td>{_fmt(_number(w['weights'].get(k)), 3)}</td>" for k in keys)
                   + f"<td>{_fmt(_number(w['threshold']), 3)}</td><td>{_fmt(_number(w['cv_auc']), 3)}</td></tr>")
    out.append("<caption>total = sum of weight × rating (0-9) + weight × execution signal (0/1) + bias; "
               "fit: fitted at that stage on the seed set against its corruptions and failed candidates "
               "(score.weights: fit).</caption></table>")
    return "".join(out)


def _totals_table(data: dict, final_iteration: int | None) -> str:
    out = ["<table id='totals'><tr><th>iteration</th><th>candidates</th><th>mean total</th><th>median</th>"
           "<th>mean − previous</th></tr>"]
    prev = None
    for it, row in data["iterations"].items():
        t = row["totals"]
        mean = statistics.fmean(t) if t else None
        delta = None if mean is None or prev is None else mean - prev
        out.append(f"<tr><td>{_label(it, final_iteration)}</td><td>{len(t)}</td><td>{_fmt(mean)}</td>"
                   f"<td>{_fmt(statistics.median(t) if t else None)}</td>"
                   f"<td>{'—' if delta is None else f'{delta:+.3g}'}</td></tr>")
        prev = mean if mean is not None else prev
    out.append("</table>")
    return "".join(out)


def _cut(text: str) -> str:
    text = text or ""
    return html.escape(text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + f"\n… ({len(text)} characters)")


def _examples_html(data: dict, final_iteration: int | None) -> str:
    out = []
    for it, row in data["iterations"].items():
        if not row["examples"]:
            continue
        out.append(f"<h3>{'final set' if it == final_iteration else f'iteration {it}'}</h3>")
        for ex in row["examples"]:
            aspects = ", ".join(f"{html.escape(str(a))} {_fmt(v)}" for a, v in ex["scores"].items())
            passes = {True: "pass", False: "fail", None: "not run"}[ex["tests_pass"]]
            out.append(
                f"<div class='example'><h4>{ex['rank']} total: {_fmt(ex['total'])}</h4>"
                f"<div class='muted'>{aspects}; own tests: {passes}; influence: {_fmt(ex['influence'])}; "
                f"id {html.escape(str(ex['id']))}; checkpoint {html.escape(str(ex['checkpoint']))}</div>"
                "<div class='fields'>" + "".join(f"<div><b>{k}</b><pre>{_cut(ex[k])}</pre></div>"
                                                  for k in ("problem", "solution", "tests")) + "</div></div>")
    return "".join(out)


def figures(data: dict, final_iteration: int | None) -> dict:
    """name -> matplotlib Figure, for what there is data for."""
    from scoder_jax.report_figures import aspects_figure, counts_figure, influence_figure, rates_figure, totals_figure

    its = list(data["iterations"])
    labels = [_label(i, final_iteration) for i in its]
    rows = [data["iterations"][i] for i in its]
    out = {}
    if its:
        out["counts"] = counts_figure(its, labels, {c: [r.get(c) for r in rows] for c in COUNTS})
        rates = {"pass@1": [r.get("pass@1") for r in rows],
                 "kept whose tests pass": [(r.get("kept_pass") or {}).get("rate") for r in rows],
                 "all scored whose tests pass": [(r.get("scored_pass") or {}).get("rate") for r in rows]}
        if any(v is not None for vals in rates.values() for v in vals):
            out["rates"] = rates_figure(its, labels, rates)
    totals = {lab: r["totals"] for lab, r in zip(labels, rows) if r["totals"]}
    if totals:
        out["totals"] = totals_figure(totals)
    if data["aspects"]:
        out["aspects"] = aspects_figure(data["aspects"])
    influence = {lab: r["influence"] for lab, r in zip(labels, rows) if r["influence"]}
    if influence:
        out["influence"] = influence_figure(influence)
    return out


def render(data: dict, manifest: dict, cfg) -> str:
    """The page's HTML."""
    from scoder_jax.config import dump_yaml
    from scoder_jax.export import dataset_config_hash

    T1 = cfg.iterations + 1
    figs = figures(data, T1)
    ds, final = data["dataset"], data["final_eval"]
    parts = [f"<h1>SCoder run: {html.escape(str(manifest.get('name', cfg.name)))}</h1>", "<h2>Headline</h2><ul>"]
    if ds.get("rows") is not None:
        passing = "" if ds.get("tests_pass") is None else f"; {ds['tests_pass']} of them pass their own tests"
        parts.append(f"<li id='headline-dataset'>final dataset: {ds['rows']} samples{passing}</li>")
    if final.get("pass@1") is not None:
        first = final.get("benchmark", cfg.eval.benchmark)
        parts.append(f"<li id='headline-pass1'>student pass@1 on {html.escape(str(first))}"
                     f" ({final.get('n_problems')} problems): {_fmt(final.get('pass@1'))}</li>")
        for name, c in (final.get("benchmarks") or {}).items():  # the eval stage's other benchmarks
            if name != first and isinstance(c, dict):
                plus = f", plus tests {_fmt(c['pass@1_plus'])}" if c.get("pass@1_plus") is not None else ""
                parts.append(f"<li>student pass@1 on {html.escape(str(name))} ({c.get('n_problems')} problems): "
                             f"{_fmt(c.get('pass@1'))}{plus}</li>")
    total = sum(v for v in data["timing"].values() if v)
    parts.append(f"<li>wall time of the stages: {total:.0f} s</li>"
                 f"<li>dataset config hash: <code>{dataset_config_hash(cfg)}</code></li></ul>")
    parts.append("<h2>Per iteration</h2>" + _iteration_table(data, T1))
    for name, alt in (("counts", "samples per iteration"), ("rates", "pass@1 and test pass rates per iteration")):
        if name in figs:
            parts.append(_png(figs[name], alt))
    weights = _weights_table(data, T1)
    if weights:
        parts.append("<h2>Score weights per iteration</h2>" + weights)
    if "totals" in figs:
        parts.append("<h2>Total scores against the previous iteration</h2>" + _totals_table(data, T1)
                     + _png(figs["totals"], "total scores per iteration"))
    if "aspects" in figs:
        parts.append("<h2>Judge ratings per aspect (0-9, every scored candidate)</h2>"
                     + _png(figs["aspects"], "judge ratings"))
    if "influence" in figs:
        parts.append("<h2>Influence scores (candidates kept by scoring)</h2>" + _png(figs["influence"], "influence"))
    examples = _examples_html(data, T1)
    if examples:
        parts.append("<h2>Example samples (kept by scoring: highest, median and lowest total)</h2>" + examples)
    parts.append("<h2>Time per stage</h2><table id='timing'><tr><th>stage</th><th>seconds</th></tr>"
                 + "".join(f"<tr><td>{html.escape(n)}</td><td>{_fmt(s, 4)}</td></tr>"
                           for n, s in data["timing"].items())
                 + "</table>")
    parts.append(f"<h2 id='config'>Config</h2><pre id='config-yaml'>{html.escape(dump_yaml(cfg))}</pre>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>SCoder report: "
            f"{html.escape(str(cfg.name))}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def _numbers(data: dict) -> dict:
    """The report's numbers without its per-candidate lists (figures.json stays small)."""
    its = {}
    for it, row in data["iterations"].items():
        its[it] = {k: v for k, v in row.items() if k not in ("totals", "influence", "examples")}
        its[it].update(totals_n=len(row["totals"]),
                       totals_mean=statistics.fmean(row["totals"]) if row["totals"] else None,
                       influence_n=len(row["influence"]), examples=[e["id"] for e in row["examples"]])
    aspects = {a: statistics.fmean(v) for a, v in data["aspects"].items() if v}
    return {**data, "iterations": its, "aspects": aspects}


def write_report(run_dir: Path, manifest: dict, cfg, out_dir: Path) -> Path:
    """Writes run_dir/report.html and out_dir/figures.json (the numbers behind it); returns the page's path."""
    data = collect(Path(run_dir), manifest, cfg.iterations + 1)
    page = render(data, manifest, cfg)
    path = Path(run_dir) / "report.html"
    write_text_atomic(path, page)
    write_text_atomic(Path(out_dir) / "figures.json", json.dumps(_numbers(data), default=str))
    return path

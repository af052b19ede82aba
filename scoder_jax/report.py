"""`report.html`: what each iteration drew, parsed, scored, kept and selected; score and influence
distributions; pass@1 per iteration; time per stage. Plots by matplotlib, inlined as PNG."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from scoder_jax.io import iter_jsonl, write_text_atomic


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _rows(path: Path) -> list[dict]:
    return list(iter_jsonl(path)) if path.exists() else []


def _aspect_scores(rec: dict) -> dict:
    s = rec.get("scores") or (rec.get("meta") or {}).get("scores") or {}
    return s if isinstance(s, dict) else {}


def collect(run_dir: Path, manifest: dict) -> dict:
    """The figures of the report, from the manifest and the stages' files."""
    stages = manifest.get("stages", {})
    iters: dict[int, dict] = {}
    aspects: dict[str, list[float]] = {}
    influence: list[float] = []
    for name, e in stages.items():
        it, c = e.get("iteration"), e.get("counts") or {}
        if it is None or e.get("kind") not in ("sample", "score", "select", "eval"):
            continue
        row = iters.setdefault(it, {})
        kind = e["kind"]
        if kind == "sample":
            row["drawn"] = c.get("drawn", c.get("generated"))
            if row["drawn"] is None and "candidates" in c:  # the sampler counts parsed + rejected replies
                row["drawn"] = c["candidates"] + c.get("rejects", 0)
            row["parsed"] = c.get("parsed", c.get("candidates"))
        elif kind == "score":
            row["scored"] = c.get("scored", c.get("candidates"))
            row["kept"] = c.get("selected", c.get("kept"))
            for rec in _rows(run_dir / e["out"] / "scores.jsonl"):
                for a, v in _aspect_scores(rec).items():
                    if isinstance(v, (int, float)):
                        aspects.setdefault(a, []).append(float(v))
        elif kind == "select":
            row["selected"] = c.get("selected")
        elif kind == "eval":
            row["pass@1"] = c.get("pass@1")
        if kind == "select":
            for rec in _rows(run_dir / stages.get(f"influence_{it:02d}", {}).get("out", "-") / "scores.jsonl"):
                if isinstance(rec.get("score"), (int, float)):
                    influence.append(float(rec["score"]))
    final_eval = (stages.get("eval") or {}).get("counts") or {}
    timing = {n: e.get("seconds") for n, e in stages.items() if e.get("seconds") is not None}
    return {"iterations": dict(sorted(iters.items())), "aspects": aspects, "influence": influence,
            "final_eval": final_eval, "timing": timing,
            "dataset_rows": ((stages.get("export") or {}).get("counts") or {}).get("rows")}


def write_report(run_dir: Path, manifest: dict, cfg, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = collect(Path(run_dir), manifest)
    parts = [f"<h1>SCoder run: {html.escape(str(manifest.get('name')))}</h1>"]
    final = data["final_eval"]
    parts.append("<h2>Headline</h2><ul>")
    parts.append(f"<li>final dataset: {data['dataset_rows']} samples</li>")
    if final:
        parts.append(f"<li>student pass@1 on {html.escape(str(cfg.eval.benchmark))}"
                     f" ({final.get('n_problems')} problems): {final.get('pass@1')}</li>")
    total = sum(v for v in data["timing"].values() if v)
    parts.append(f"<li>wall time of the stages: {total:.0f} s</li></ul>")

    cols = ["drawn", "parsed", "scored", "kept", "selected", "pass@1"]
    parts.append("<h2>Per iteration</h2><table border=1 cellpadding=4><tr><th>iteration</th>"
                 + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
    for it, row in data["iterations"].items():
        label = "final" if it == cfg.iterations + 1 else str(it)
        parts.append(f"<tr><td>{label}</td>" + "".join(f"<td>{row.get(c, '')}</td>" for c in cols) + "</tr>")
    parts.append("</table>")

    if data["iterations"]:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        its = list(data["iterations"])
        for c in cols[:-1]:
            ax.plot(its, [data["iterations"][i].get(c) or 0 for i in its], marker="o", label=c)
        ax.set_xlabel("iteration")
        ax.set_ylabel("samples")
        ax.legend()
        parts.append(_png(fig))
        p1 = [(i, r["pass@1"]) for i, r in data["iterations"].items() if r.get("pass@1") is not None]
        if p1:
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.plot([i for i, _ in p1], [v for _, v in p1], marker="o")
            ax.set_xlabel("iteration")
            ax.set_ylabel("pass@1 (synthesizer)")
            parts.append(_png(fig))
    if data["aspects"]:
        parts.append("<h2>Per-aspect judge scores (0-9)</h2>")
        fig, axes = plt.subplots(1, len(data["aspects"]), figsize=(3 * len(data["aspects"]), 2.8), squeeze=False)
        for ax, (a, vals) in zip(axes[0], sorted(data["aspects"].items())):
            ax.hist(vals, bins=18, range=(0, 9))
            ax.set_title(a)
        parts.append(_png(fig))
    if data["influence"]:
        parts.append("<h2>Influence scores</h2>")
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(data["influence"], bins=30)
        ax.set_xlabel("influence (weighted mean cosine to the seed set)")
        parts.append(_png(fig))
    parts.append("<h2>Time per stage (s)</h2><table border=1 cellpadding=4>")
    for name, s in data["timing"].items():
        parts.append(f"<tr><td>{html.escape(name)}</td><td>{s}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Config</h2><pre>" + html.escape(json.dumps(manifest.get("stages", {}).get("pool", {}).get("counts", {}))) + "</pre>")
    page = "<!doctype html><html><head><meta charset='utf-8'><title>SCoder report</title></head><body>" \
           + "\n".join(parts) + "</body></html>"
    path = Path(run_dir) / "report.html"
    write_text_atomic(path, page)
    write_text_atomic(Path(out_dir) / "figures.json", json.dumps({k: v for k, v in data.items() if k != "aspects"},
                                                                 default=str))
    return path

"""report.html from a synthetic finished run (tests/fake_run.py): what a reader sees, in a real
browser too (headless Chromium: a screenshot and the rendered DOM)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests.fake_run import fake_run

from scoder_jax.config import dump_yaml
from scoder_jax.report import collect, figures, write_report
from scoder_jax.report_figures import declutter, influence_figure, tick_label_overlaps

CHROMIUM = "/usr/bin/chromium"


class Page(HTMLParser):
    """The parts of the page the tests read: text by element id, table cells by table id."""

    def __init__(self, text: str):
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.imgs: list[str] = []
        self._open: list[tuple[str, str | None]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
            return
        self._open.append((tag, a.get("id")))
        if a.get("id"):
            self.by_id[a["id"]] = ""
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._table = None
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, i in self._open:
            if i:
                self.by_id[i] += data
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir, manifest, cfg = fake_run(tmp_path_factory.mktemp("report"))
    write_report(run_dir, manifest, cfg, run_dir / "report")
    return run_dir, manifest, cfg


def _page(run) -> Page:
    return Page((run[0] / "report.html").read_text())


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _scores(run_dir: Path, it: int, T: int) -> list[dict]:
    folder = "final/scores" if it == T + 1 else f"iter_{it:02d}/scores"
    return _jsonl(run_dir / folder / "scores.jsonl")


def test_config_section_shows_the_config(run):
    run_dir, _, cfg = run
    text = _page(run).by_id["config-yaml"]
    assert text.strip() == dump_yaml(cfg).strip()
    assert "snippets_per_iteration: 2" in text and "name: fake" in text


def test_final_row_pass_at_1_is_the_students_as_in_the_headline(run):
    page = _page(run)
    rows = page.tables["per-iteration"]
    head, body = rows[0], rows[1:]
    col = head.index("pass@1")
    assert [r[0] for r in body] == ["1", "2", "final"]
    assert [r[col] for r in body] == ["0.125 (S_1)", "0.25 (S_2)", "0.5 (student)"]
    assert page.by_id["headline-pass1"].strip() == "student pass@1 on humaneval (8 problems): 0.5"
    assert "student pass@1 on humaneval+ (8 problems): 0.25, plus tests 0.125" in (run[0] / "report.html").read_text()


def test_kept_tests_pass_fraction_per_iteration(run):
    run_dir, manifest, cfg = run
    rows = _page(run).tables["per-iteration"]
    col = rows[0].index("kept whose tests pass")
    data = collect(run_dir, manifest, cfg.iterations + 1)
    seen = set()
    for it, cells in zip((1, 2, 3), rows[1:]):
        kept = [r for r in _scores(run_dir, it, cfg.iterations) if r["reason"] == "selected"]
        passed = sum(r["signals"]["passes"] for r in kept)
        assert data["iterations"][it]["kept_pass"] == {"rate": passed / len(kept), "passed": passed, "of": len(kept)}
        assert cells[col] == f"{100 * passed / len(kept):.0f}% ({passed} of {len(kept)})"
        seen.add(passed / len(kept))
    assert len(seen) > 1  # the fake run's rates differ between iterations: the column is not a constant


def test_score_distribution_against_the_previous_iteration(run):
    run_dir, manifest, cfg = run
    data = collect(run_dir, manifest, cfg.iterations + 1)
    means = []
    for it in (1, 2, 3):
        want = [r["total"] for r in _scores(run_dir, it, cfg.iterations) if r["total"] is not None]
        assert data["iterations"][it]["totals"] == want
        means.append(statistics.fmean(want))
    table = _page(run).tables["totals"]
    assert [r[-1] for r in table[1:]] == ["—", f"{means[1] - means[0]:+.3g}", f"{means[2] - means[1]:+.3g}"]
    fig = figures(data, cfg.iterations + 1)["totals"]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["iteration 1", "2 (filled) vs 1 (outline)", "final (filled) vs 2 (outline)"]
    for k, ax in enumerate(fig.axes):  # the filled bars hold this iteration's totals, the outline the previous'
        bars = sum(p.get_height() for p in ax.containers[0])
        assert bars == len(data["iterations"][k + 1]["totals"])
        assert len(ax.patches) == len(ax.containers[0]) + (1 if k else 0)


def test_three_example_samples_per_iteration_with_their_scores(run):
    run_dir, manifest, cfg = run
    data = collect(run_dir, manifest, cfg.iterations + 1)
    html = (run_dir / "report.html").read_text()
    for it in (1, 2, 3):
        folder = "final/scores" if it == 3 else f"iter_{it:02d}/scores"
        kept = _jsonl(run_dir / folder / "selected.jsonl")
        totals = sorted(r["meta"]["score"]["total"] for r in kept)
        ex = data["iterations"][it]["examples"]
        assert [e["rank"] for e in ex] == ["highest", "median", "lowest"]
        assert [e["total"] for e in ex] == [totals[-1], sorted(totals, reverse=True)[len(totals) // 2], totals[0]]
        for e in ex:
            src = next(r for r in kept if r["id"] == e["id"])
            assert e["scores"] == src["meta"]["score"]["scores"]
            assert e["tests_pass"] is src["meta"]["score"]["signals"]["passes"]
            assert f"id {e['id']};" in html and src["solution"].splitlines()[0] in html
            assert not str(e["checkpoint"]).startswith("/")
    assert data["iterations"][1]["examples"][0]["influence"] is not None


def test_iteration_axes_have_one_whole_tick_per_iteration(run):
    run_dir, manifest, cfg = run
    figs = figures(collect(run_dir, manifest, cfg.iterations + 1), cfg.iterations + 1)
    for name in ("counts", "rates"):
        ax = figs[name].axes[0]
        assert list(ax.get_xticks()) == [1, 2, 3], name
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "final"], name


@pytest.mark.parametrize("center,spread", [(0.0122, 4e-4), (-1.2e-4, 3e-5), (0.05, 0.03), (3.2, 1e-3),
                                           (0.56527, 1e-5)])  # the last: the smoke run's two candidates
def test_influence_tick_labels_do_not_overlap(center, spread):
    rng = np.random.default_rng(0)
    values = {"1": list(rng.normal(center, spread, 30)), "2": list(rng.normal(center, spread, 30))}
    fig = influence_figure(values)
    declutter(fig)
    assert tick_label_overlaps(fig) == []
    assert len([t for t in fig.axes[0].get_xticklabels() if t.get_text()]) >= 2


def test_no_figure_of_the_report_has_overlapping_tick_labels(run):
    run_dir, manifest, cfg = run
    for name, fig in figures(collect(run_dir, manifest, cfg.iterations + 1), cfg.iterations + 1).items():
        declutter(fig)
        assert tick_label_overlaps(fig) == [], name


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--disable-dev-shm-usage", f"--user-data-dir={user_data}", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_page_in_headless_chromium(run, tmp_path):
    """What a reader's browser shows: a screenshot that is neither blank nor missing its figures,
    and the rendered DOM with the config, the per-iteration table (final pass@1 filled) and
    every figure inlined."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("SCODER_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from PIL import Image

    run_dir, _, cfg = run
    url = (run_dir / "report.html").absolute().as_uri()
    shot = tmp_path / "report.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1200,3000", "--hide-scrollbars", url,
                  user_data=tmp_path / "u1")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape == (3000, 1200, 3)
    ink = (pixels.sum(axis=2) < 600).mean()  # darker than light grey: text, lines, bars
    assert ink > 0.01, f"the page looks blank ({ink:.4f} of it inked)"
    blue = (np.abs(pixels - np.array([0x4C, 0x72, 0xB0])).sum(axis=2) < 40).sum()
    assert blue > 500, "no figure drew on the page"  # the figures' first colour
    dom = _chromium("--dump-dom", url, user_data=tmp_path / "u2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = Page(dom.stdout)
    assert page.by_id["config-yaml"].strip() == dump_yaml(cfg).strip()
    body = page.tables["per-iteration"][1:]
    assert body[-1][0] == "final" and body[-1][-1] == "0.5 (student)"
    assert len(page.imgs) == 5 and all(s.startswith("data:image/png;base64,") and len(s) > 2000 for s in page.imgs)
    shutil.copy(shot, run_dir / "report" / "screenshot.png")  # kept beside the run, to look at


def test_a_one_iteration_run_without_evaluation(tmp_path):
    run_dir, manifest, cfg = fake_run(tmp_path, iterations=1, seed=3, overrides=("eval.enabled=false",))
    write_report(run_dir, manifest, cfg, run_dir / "report")
    page = _page((run_dir,))
    rows = page.tables["per-iteration"]
    assert [r[0] for r in rows[1:]] == ["1", "final"] and {r[-1] for r in rows[1:]} == {"—"}
    assert "headline-pass1" not in page.by_id and len(page.imgs) == 5


def test_degenerate_figures_stay_legible():
    from scoder_jax.report_figures import counts_figure, totals_figure

    for fig in (influence_figure({"1": [0.0123]}), totals_figure({"1": [4.0, 4.0], "final": [4.0]}),
                counts_figure([1, 2], ["1", "final"], {"drawn": [3, None], "kept": [None, None]})):
        declutter(fig)
        assert tick_label_overlaps(fig) == []

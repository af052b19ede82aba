"""Score weights: total = sum_z w_z x_z + sum_e v_e s_e + b, and fitting w, v, b on a calibration set.

Features of a candidate: its Z aspect ratings x_z (0..9, from the judge) and its execution
signals s_e in {0, 1} (parses, runs, passes; all 0 and so not applied for non-Python
candidates). Weights come from the config (`Weights.default`, `Weights.from_dict`) or are
fitted (`fit_weights`) on labeled data: seed samples as positives, corrupted copies of them as
negatives (`corrupt`), by

    nnls      least squares on the 0/1 labels with non-negative w, v (scipy.optimize.nnls on
              centred features, so the intercept b is free)
    logistic  L2-regularised logistic regression, w, v >= 0 (scipy L-BFGS-B); total = log-odds

Both are cross-validated (stratified k-fold, deterministic); the report gives the pooled
out-of-fold AUC (cv_auc), the per-fold AUCs and their mean (cv_auc_mean), the in-sample AUC
of the final fit (auc) and each feature's own AUC (feature_aucs). The suggested threshold
maximises Youden's J (TPR - FPR) on the final fit's totals.
Non-negative weights keep the score monotone: a better rating never lowers it.

Corruptions (deterministic in `seed`), each a copy of positive i with parts of positive j:

    swap_solution   problem_i with solution_j and tests_i (the solution solves another problem)
    wrong_problem   problem_j with solution_i and tests_i (the problem does not match the code)
    off_topic       all of sample j under snippet_i (a problem unrelated to the snippet)
    broken_code     solution_i truncated and left unparseable
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from scoder_jax.errors import ConfigError, DataError
from scoder_jax.io import write_json_atomic
from scoder_jax.score.signals import SIGNALS, signal_vector

CORRUPTIONS: tuple[str, ...] = ("swap_solution", "broken_code", "off_topic", "wrong_problem")
METHODS = ("nnls", "logistic")
WEIGHTS_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Weights:
    aspects: tuple[str, ...]
    aspect_weights: tuple[float, ...]
    exec_weights: tuple[float, ...] = (0.0, 0.0, 0.0)  # parses, runs, passes
    bias: float = 0.0
    threshold: float | None = None  # suggested selection threshold on the total
    method: str = "config"
    report: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self):
        if len(self.aspects) != len(self.aspect_weights):
            raise ConfigError(f"weights: {len(self.aspects)} aspects but {len(self.aspect_weights)} aspect weights")
        if len(self.exec_weights) != len(SIGNALS):
            raise ConfigError(f"weights: expected {len(SIGNALS)} execution weights ({', '.join(SIGNALS)})")

    @classmethod
    def default(cls, aspects: Sequence[str]) -> "Weights":
        """The mean aspect rating (0..9) plus 1 for parsing, 1 for running, 2 for passing its tests."""
        z = len(aspects)
        return cls(tuple(aspects), tuple([1.0 / z] * z) if z else (), (1.0, 1.0, 2.0), 0.0, None, "default")

    # ------------------------------------------------------------------ scoring
    def features(self, aspect_scores: np.ndarray, signals: Sequence[dict | None]) -> np.ndarray:
        return features(aspect_scores, signals)

    def total(self, aspect_scores: np.ndarray, signals: Sequence[dict | None]) -> np.ndarray:
        """[n] totals; NaN where an aspect score is NaN (the candidate was not judged)."""
        X = features(aspect_scores, signals)
        return X @ np.asarray([*self.aspect_weights, *self.exec_weights]) + self.bias

    def aligned(self, aspects: Sequence[str]) -> "Weights":
        """These weights in the judge's aspect order; every judged aspect needs a weight."""
        missing = [a for a in aspects if a not in self.aspects]
        if missing:
            raise ConfigError(f"weights have no weight for aspect(s) {', '.join(missing)} (they cover "
                              f"{', '.join(self.aspects)}); refit them with these aspects or add the weights")
        w = dict(zip(self.aspects, self.aspect_weights))
        return dataclasses.replace(self, aspects=tuple(aspects), aspect_weights=tuple(w[a] for a in aspects))

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        return {"version": WEIGHTS_VERSION, "method": self.method,
                "aspect_weights": dict(zip(self.aspects, map(float, self.aspect_weights))),
                "exec_weights": dict(zip(SIGNALS, map(float, self.exec_weights))),
                "bias": float(self.bias), "threshold": self.threshold, "report": self.report}

    @classmethod
    def from_dict(cls, d: dict, where: str = "weights") -> "Weights":
        if not isinstance(d, dict) or not isinstance(d.get("aspect_weights"), dict) or not d["aspect_weights"]:
            raise ConfigError(f"{where}: expected a mapping with 'aspect_weights' {{aspect: weight}}")
        try:
            aw = {str(k): float(v) for k, v in d["aspect_weights"].items()}
            ew = d.get("exec_weights") or {}
            unknown = set(ew) - set(SIGNALS)
            if unknown:
                raise ConfigError(
                    f"{where}: unknown execution signal(s) {sorted(unknown)}; known: {', '.join(SIGNALS)}")
            ev = tuple(float(ew.get(k, 0.0)) for k in SIGNALS)
            thr = d.get("threshold")
            return cls(tuple(aw), tuple(aw.values()), ev, float(d.get("bias", 0.0)),
                       None if thr is None else float(thr), str(d.get("method", "config")), dict(d.get("report") or {}))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: weights must be numbers ({e})") from None

    @classmethod
    def load(cls, path: str | Path) -> "Weights":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such weights file (make one with `scoder score fit-weights`)")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
        return cls.from_dict(d, str(path))

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_dict())


def features(aspect_scores: np.ndarray, signals: Sequence[dict | None]) -> np.ndarray:
    """[n, Z + 3]: the aspect ratings, then parses, runs, passes as 0/1 (0 without signals)."""
    A = np.asarray(aspect_scores, np.float64).reshape(len(signals), -1)
    S = np.asarray([signal_vector(s) for s in signals], np.float64).reshape(len(signals), len(SIGNALS))
    return np.concatenate([A, S], axis=1)


# ----------------------------------------------------------------------------------------------
# Metrics


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic (ties count 1/2); NaN without both classes."""
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n1, n0 = int(labels.sum()), int((~labels).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold t (keep score >= t) that maximises TPR - FPR; midway between neighbours."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    cand = np.unique(s)
    best, best_t = -np.inf, float(cand[0])
    for k, t in enumerate(cand):
        j = (s[y] >= t).mean() - (s[~y] >= t).mean()
        if j > best + 1e-12:
            best, best_t = j, float(t if k == 0 else (t + cand[k - 1]) / 2)
    return best_t


def stratified_folds(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """[n] fold index, each class spread evenly over the k folds (deterministic in seed)."""
    y = np.asarray(labels).astype(bool)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = np.arange(len(idx)) % k
    return fold


# ----------------------------------------------------------------------------------------------
# Fitting


def _fit_nnls(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    from scipy.optimize import nnls

    mu = X.mean(0)
    w, _ = nnls(X - mu, y - y.mean())
    return w, float(y.mean() - mu @ w)


def _fit_logistic(X: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize

    n, f = X.shape
    mu = X.mean(0)
    Xc = X - mu

    def loss(theta):
        w, b = theta[:f], theta[f]
        z = Xc @ w + b
        # mean log-loss, stable: log(1 + e^z) - y z
        ll = np.logaddexp(0.0, z) - y * z
        p = 1.0 / (1.0 + np.exp(-z))
        g = p - y
        grad = np.concatenate([Xc.T @ g / n + 2 * l2 * w, [g.mean()]])
        return ll.mean() + l2 * (w @ w), grad

    theta0 = np.zeros(f + 1)
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * f + [(None, None)])
    w, b = res.x[:f], float(res.x[f])
    return w, b - float(mu @ w)


def fit_linear(X: np.ndarray, y: np.ndarray, method: str = "nnls", l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """Non-negative weights w [F] and a bias b so that X @ w + b ranks positives (y = 1) first."""
    if method == "nnls":
        return _fit_nnls(X, y)
    if method == "logistic":
        return _fit_logistic(X, y, l2)
    raise ConfigError(f"weight fitting method {method!r}: choose one of {', '.join(METHODS)}")


def fit_weights(aspect_scores: np.ndarray, signals: Sequence[dict | None], labels: Sequence[int],
                aspects: Sequence[str], *, method: str = "nnls", folds: int = 5, seed: int = 0, l2: float = 1e-2,
                use_exec: bool = True) -> Weights:
    """Fits weights on labeled candidates (1 = good) and cross-validates them; the `report` of
    the returned Weights has auc, cv_auc, fold_aucs, feature_aucs, n_pos, n_neg."""
    if method not in METHODS:
        raise ConfigError(f"weight fitting method {method!r}: choose one of {', '.join(METHODS)}")
    X = features(aspect_scores, signals)
    y = np.asarray(labels, np.float64)
    if np.isnan(X).any():
        raise DataError("fit_weights: some calibration samples have no aspect score (not judged); drop them first")
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos < 2 or n_neg < 2:
        raise DataError(f"fit_weights: need at least 2 positives and 2 negatives, got {n_pos} and {n_neg}")
    names = [*aspects, *SIGNALS]
    cols = list(range(X.shape[1])) if use_exec else list(range(len(aspects)))
    k = max(2, min(folds, n_pos, n_neg))
    fold = stratified_folds(y, k, seed)
    oof = np.zeros(len(y))
    fold_aucs = []
    for f in range(k):
        tr, te = fold != f, fold == f
        w, b = fit_linear(X[tr][:, cols], y[tr], method, l2)
        oof[te] = X[te][:, cols] @ w + b
        fold_aucs.append(auc(oof[te], y[te]))
    w, b = fit_linear(X[:, cols], y, method, l2)
    full = np.zeros(X.shape[1])
    full[cols] = w
    fitted = X @ full + b
    report = {
        "method": method, "folds": k, "seed": seed, "use_exec": use_exec, "n_pos": n_pos, "n_neg": n_neg,
        "auc": auc(fitted, y), "cv_auc": auc(oof, y), "cv_auc_mean": float(np.nanmean(fold_aucs)),
        "fold_aucs": fold_aucs,
        "feature_aucs": {n: auc(X[:, i], y) for i, n in enumerate(names)},
        "l2": l2 if method == "logistic" else None,
    }
    Z = len(aspects)
    return Weights(tuple(aspects), tuple(map(float, full[:Z])), tuple(map(float, full[Z:])), float(b),
                   youden_threshold(fitted, y), method, report)


# ----------------------------------------------------------------------------------------------
# Calibration set


from scoder_jax.score.signals import _parses as _py_parses  # noqa: E402


def break_code(code: str, python: bool = True) -> str:
    """The code cut at about 60% of its length (mid-line) with an unclosed bracket: it does not parse."""
    cut = code[: max(1, int(len(code) * 0.6))].rstrip()
    broken = cut + " = ("
    if python and _py_parses(broken):  # cannot happen for "x = (" but keep the guarantee
        broken += "\n)("
    return broken


def corrupt(positives: Sequence[dict], n: int | None = None, *, kinds: Sequence[str] = CORRUPTIONS,
            seed: int = 0) -> list[dict]:
    """`n` (default: as many as positives) corrupted copies of the positives, kinds in turn."""
    from scoder_jax.synth.prompts import is_python

    for k in kinds:
        if k not in CORRUPTIONS:
            raise ConfigError(f"corruption {k!r}: choose from {', '.join(CORRUPTIONS)}")
    P = list(positives)
    if len(P) < 2:
        raise DataError(f"corrupt: need at least 2 positives to swap parts between, got {len(P)}")
    n = len(P) if n is None else n
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(P))
    out = []
    for m in range(n):
        i = int(order[m % len(P)])
        kind = kinds[m % len(kinds)]
        # a partner from another snippet (and another problem) when there is one
        offs = (1 + rng.permutation(len(P) - 1)).tolist()
        j = next(((i + o) % len(P) for o in offs
                  if P[(i + o) % len(P)].get("snippet_id") != P[i].get("snippet_id")
                  and P[(i + o) % len(P)].get("problem") != P[i].get("problem")), (i + offs[0]) % len(P))
        a, b = P[i], P[j]
        c = {k: a.get(k) for k in ("snippet_id", "snippet", "lang", "problem", "solution", "tests")}
        if kind == "swap_solution":
            c["solution"] = b.get("solution", "")
        elif kind == "wrong_problem":
            c["problem"] = b.get("problem", "")
        elif kind == "off_topic":
            c.update(problem=b.get("problem", ""), solution=b.get("solution", ""), tests=b.get("tests", ""),
                     lang=b.get("lang", c["lang"]))
        elif kind == "broken_code":
            c["solution"] = break_code(a.get("solution", ""), is_python(a.get("lang") or "python"))
            j = i
        c.update(id=f"{a.get('id')}~{kind}~{m}", origin="corrupt",
                 meta={"corruption": kind, "source": a.get("id"), "partner": P[j].get("id")})
        out.append(c)
    return out


def calibrate(positives: Sequence[dict], judge, *, method: str = "nnls", folds: int = 5, seed: int = 0,
              n_negatives: int | None = None, use_exec: bool = True, limits=None, workers: int | None = None,
              l2: float = 1e-2, progress: bool = False, tests: bool = True) -> tuple[Weights, list[dict]]:
    """Judges and executes the positives and their corruptions, fits weights on them.
    `tests=False` (sample format problem_solution): execution signals are parses and runs only.

    Returns (weights with their report, one row per calibration sample: id, label, kind,
    per-aspect scores, digit mass, signals, total under the fitted weights).
    """
    from scoder_jax.score.judge import unjudgeable
    from scoder_jax.score.signals import execution_signals

    P = [p for p in positives if not unjudgeable(p)]
    dropped = len(positives) - len(P)
    N = corrupt(P, n_negatives, seed=seed)
    samples = [*P, *N]
    labels = [1] * len(P) + [0] * len(N)
    res = judge.score(samples, progress=progress)
    sigs = execution_signals(samples, limits=limits, workers=workers, progress=progress, tests=tests) if use_exec \
        else [None] * len(samples)
    names = [a.name for a in judge.aspects]
    w = fit_weights(res.scores, sigs, labels, names, method=method, folds=folds, seed=seed, l2=l2, use_exec=use_exec)
    totals = w.total(res.scores, sigs)
    rows = []
    for k, s in enumerate(samples):
        rows.append({"id": s.get("id"), "label": labels[k], "kind": (s.get("meta") or {}).get("corruption", "seed")
                     if labels[k] == 0 else "seed",
                     "scores": dict(zip(names, map(float, res.scores[k]))),
                     "digit_mass": dict(zip(names, map(float, res.digit_mass[k]))),
                     "truncated": bool(res.truncated[k]), "signals": sigs[k], "total": float(totals[k])})
    by_kind: dict[str, dict] = {}
    for r in rows:
        d = by_kind.setdefault(r["kind"], {"n": 0, **{a: 0.0 for a in names}, "total": 0.0})
        d["n"] += 1
        for a in names:
            d[a] += r["scores"][a]
        d["total"] += r["total"]
    for d in by_kind.values():
        for key in (*names, "total"):
            d[key] = round(d[key] / d["n"], 4)
    report = dict(w.report)
    report.update({"mean_by_kind": by_kind, "positives_dropped": dropped, "truncated": int(res.truncated.sum()),
                   "mean_digit_mass": float(np.nanmean(res.digit_mass))})
    if use_exec:
        report["signal_rates"] = {lab: {s: float(np.mean([bool(r["signals"] and r["signals"][s]) for r in rows
                                                           if r["label"] == v])) for s in SIGNALS}
                                  for lab, v in (("positive", 1), ("negative", 0))}
    return dataclasses.replace(w, report=report), rows


__all__ = ["Weights", "features", "auc", "fit_weights", "fit_linear", "corrupt", "calibrate", "CORRUPTIONS",
           "METHODS", "youden_threshold", "stratified_folds", "break_code"]

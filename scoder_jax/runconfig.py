"""The project config of one SCoder run (`scoder iterate`): every free choice of the method.

A YAML file holds these sections; a preset name (`smoke`, `demo`, ...) reads
`configs/<name>.yaml`. Unknown keys and wrong types are errors naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from scoder_jax.config import load_config, require
from scoder_jax.data.pool import PoolConfig
from scoder_jax.errors import ConfigError
from scoder_jax.influence.select import InfluenceMethod
from scoder_jax.score.judge import DEFAULT_ASPECTS as JUDGE_ASPECTS
from scoder_jax.score.select import SelectConfig
from scoder_jax.score.signals import SIGNALS
from scoder_jax.synth.sampler import Decoding
from scoder_jax.train.config import TrainConfig

# Ablations of the method (README): named override sets, `scoder iterate --ablation NAME`.
ABLATIONS: dict[str, tuple[str, ...]] = {
    # without multi-checkpoint sampling: M = 1, S_{t-1}'s last checkpoint only
    "single-checkpoint": ("sample.checkpoints=1",),
    # without multi-aspect scoring: no judge, no execution, every parsed candidate kept for influence
    "no-scoring": ("score.aspects=[]", "score.execution=false", "score.threshold=0", "score.require_tests_pass=false",
                   "score.per_snippet=all"),
    # without influence: a random selection of the same size (influence.keep of the kept candidates)
    "no-influence": ("influence.enabled=false",),
}

# The presets: configs/ of the repository, shipped inside the package as scoder_jax/presets
# (a link to configs/ in the source tree, package data in a wheel).
CONFIG_DIR = Path(str(importlib.resources.files("scoder_jax") / "presets"))
DEFAULT_ASPECTS = tuple(a.name for a in JUDGE_ASPECTS)  # the judge's rubric, named once in score/judge.py



@dataclass(frozen=True)
class PoolSection:
    sources: tuple[str, ...] = ("stdlib",)  # "stdlib" = this interpreter's standard library
    max_snippets: int = 0  # keep a seeded random subset of this size (0: all)
    build: PoolConfig = field(default_factory=PoolConfig)

    def __post_init__(self):
        require(len(self.sources) > 0, "sources", "must name at least one source (stdlib, a folder, a file, tfds:...)")
        require(self.max_snippets >= 0, "max_snippets", f"must be >= 0 (0: all), got {self.max_snippets}")


@dataclass(frozen=True)
class SeedSection:
    source: str = "bundled"  # "bundled" (the demo stand-in) or a JSONL file (project or Magicoder format)
    limit: int = 0  # keep the first N (0: all)
    shortest: bool = False  # with limit: keep the N shortest samples instead (problem + solution + tests,
    #                         in characters), in their file order: cheaper to train on, shorter to imitate

    def __post_init__(self):
        require(self.limit >= 0, "limit", f"must be >= 0 (0: all), got {self.limit}")
        require(not self.shortest or self.limit > 0, "shortest", "needs seed_set.limit > 0 (the N shortest)")


@dataclass(frozen=True)
class SynthSection(TrainConfig):
    """The synthesizer: its fine-tunes (every `TrainConfig` knob) and what it is taught to write."""

    # the reply the synthesizer writes (and the teacher's seed samples hold): [Problem] + [Solution],
    # or (this project's addition, so execution can check a sample) also [Tests] with asserts
    format: Literal["problem_solution", "problem_solution_tests"] = "problem_solution_tests"
    # S_t (t >= 1) is fine-tuned from the base model on D_t, or continued from S_{t-1}'s last checkpoint
    init: Literal["base", "previous"] = "base"

    def train_config(self) -> TrainConfig:
        """The trainer's part (the trainer knows nothing of SCoder)."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)})


@dataclass(frozen=True)
class SampleSection(Decoding):
    """Multi-checkpoint sampling of each iteration: the decoding knobs (`Decoding`: n,
    temperature, top_p, top_k, min_p, no_repeat_ngram, cut_tests, max_new_tokens) and these."""

    snippets_per_iteration: int = 1000  # P_t: disjoint slices of the pool
    checkpoints: int = 2  # M: the last M checkpoints of S_{t-1}
    batch: int = 32  # decode slots of the engine (the final set's sampling uses it too)

    def __post_init__(self):
        super().__post_init__()
        require(self.snippets_per_iteration >= 1, "snippets_per_iteration",
                f"must be >= 1, got {self.snippets_per_iteration}")
        require(self.checkpoints >= 1, "checkpoints", f"must be >= 1, got {self.checkpoints}")
        require(self.batch >= 1, "batch", f"must be >= 1, got {self.batch}")


@dataclass(frozen=True)
class ScoreSection(SelectConfig):
    """Multi-aspect scoring and the initial selection (`SelectConfig`: threshold, require_parse,
    require_tests_pass, declared with the selection they drive) of each iteration and the final set."""

    threshold: float = 4.0  # minimum total (per-aspect weighted mean scale) to keep a candidate
    require_tests_pass: bool = True
    judge: str = "base"  # "base": the synthesizer's base model; else a checkpoint path
    aspects: tuple[str, ...] = DEFAULT_ASPECTS
    # {aspect or signal: weight} (missing aspects weigh 1, totals on the mean-rating scale, kept at
    # `threshold`); "fit": fitted at each score stage on the seed set against corruptions and failed
    # candidates (`score/stage_weights.py`); or a weights file (`scoder score fit-weights`). Fitted
    # weights bring their own threshold (Youden's J on their calibration set) instead of `threshold`.
    weights: dict | str = field(default_factory=dict)
    fit: Literal["nnls", "logistic"] = "nnls"  # how `weights: fit` fits them
    fit_positives: int = 256  # seed samples judged as positives for `weights: fit` (a seeded sample; 0: all)
    # a judge's rating: argmax digit (the paper's) or expected digit
    rating: Literal["integer", "expected"] = "expected"
    execution: bool = True  # run solutions and tests in the sandbox
    timeout_s: float = 5.0

    def __post_init__(self):
        require(len(self.aspects) > 0 or self.execution or self.per_snippet == "all", "aspects",
                "is empty and score.execution is false: nothing would score the candidates (keeping every parsed "
                "candidate, the ablation, also needs score.per_snippet=all)")
        unknown = [a for a in self.aspects if a not in DEFAULT_ASPECTS]
        require(not unknown, "aspects", f"has unknown aspect {unknown[0]!r} (known: {', '.join(DEFAULT_ASPECTS)})"
                if unknown else "")
        if isinstance(self.weights, str):
            require(bool(self.weights.strip()), "weights", "must be a mapping {aspect or signal: weight}, 'fit' "
                    "(fitted at each score stage) or a weights file")
            require(self.weights != "fit" or len(self.aspects) > 0, "weights",
                    "= fit needs aspects to weigh, but score.aspects is empty")
        else:
            known = (*self.aspects, *SIGNALS)
            bad = [k for k in self.weights if k not in known]
            require(not bad, "weights", f"has unknown key {bad[0]!r} (known: {', '.join(known)})" if bad else "")
            bad = [k for k, v in self.weights.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
            require(not bad, "weights", f"{bad[0]!r} must be a number, got {self.weights[bad[0]]!r}" if bad else "")
        require(self.fit_positives >= 0, "fit_positives", f"must be >= 0 (0: all), got {self.fit_positives}")
        require(self.timeout_s > 0, "timeout_s", f"must be > 0, got {self.timeout_s}")

    def selection(self) -> SelectConfig:
        return SelectConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SelectConfig)})


@dataclass(frozen=True)
class InfluenceSection(InfluenceMethod):
    """Influence estimation of each iteration (`InfluenceMethod`: dim, projection, two_stage,
    mode, sgd, microbatch, seq_len, ...) and the final filtering it drives."""

    enabled: bool = True
    keep: float = 0.5  # fraction of the initially kept candidates selected by influence
    mode: Literal["auto", "lora", "full"] = "auto"  # auto: lora when synth.lora is set, else full
    targets: int = 0  # score against the first N samples of the seed set (0: all of it)
    seq_len: int = 0  # examples are truncated to this many tokens for their gradients (0: synth.seq_len)

    def __post_init__(self):
        super().__post_init__()
        require(0 < self.keep <= 1, "keep", f"must lie in (0, 1], got {self.keep}")
        require(self.targets >= 0, "targets", f"must be >= 0 (0: all), got {self.targets}")


@dataclass(frozen=True)
class SelectSection:
    """D_t, the synthesizer's training set of iteration t."""

    accumulate: bool = False  # D_t = D_p + this iteration's selection (false) or + every selection so far (true)


@dataclass(frozen=True)
class FinalSection(Decoding):
    """The final set, sampled from S_T's last checkpoint: the decoding knobs and its size."""

    n: int = 1
    snippets: int = 60000  # P_final (per round), drawn after the iterations' slices
    size: int = 0  # K: sample rounds of `snippets` until K samples are kept after scoring (0: one round)
    max_rounds: int = 10  # with size: stop after this many rounds, K reached or not (reported)

    def __post_init__(self):
        super().__post_init__()
        require(self.snippets >= 1, "snippets", f"must be >= 1, got {self.snippets}")
        require(self.size >= 0, "size", f"must be >= 0 (0: one round of final.snippets), got {self.size}")
        require(self.max_rounds >= 1, "max_rounds", f"must be >= 1, got {self.max_rounds}")


@dataclass(frozen=True)
class EvalSection:
    enabled: bool = True
    benchmark: str = "humaneval"
    problems: str | None = None  # the MBPP file, or a HumanEval-format JSONL
    limit: int = 0  # first N problems (0: all)
    n: int = 1
    temperature: float = 0.0
    max_new_tokens: int = 512
    # each iteration's synthesizer S_t: evaluated itself as a code model ("synthesizer"), or as the
    # paper does, by the student fine-tuned on a fixed-size sample of the data S_t synthesized and
    # the scorer kept ("student"; S_0 .. S_T); "off" (false) for neither; true means "synthesizer"
    per_iteration: bool | Literal["off", "synthesizer", "student"] = "synthesizer"
    student_samples: int = 1000  # with per_iteration student: the fixed size of each student's data
    timeout_s: float = 10.0
    # Several benchmarks (humaneval, mbpp, humaneval+, mbpp+, livecodebench); empty: `benchmark` alone.
    # Each needs its file in `files` (humaneval+: HumanEvalPlus.jsonl, mbpp+: MbppPlus.jsonl,
    # livecodebench: a code_generation_lite test*.jsonl, mbpp: sanitized-mbpp.json), else it is skipped.
    benchmarks: tuple[str, ...] = ()
    files: dict = field(default_factory=dict)  # benchmark -> problems file
    since: str | None = None  # livecodebench contest_date window (start after the model's training cut-off)
    until: str | None = None

    def __post_init__(self):
        if isinstance(self.per_iteration, bool):  # the older spelling
            object.__setattr__(self, "per_iteration", "synthesizer" if self.per_iteration else "off")
        require(self.student_samples >= 1, "student_samples", f"must be >= 1, got {self.student_samples}")
        known = ("humaneval", "mbpp", "humaneval+", "mbpp+", "livecodebench")
        for name in (*self.benchmarks, *self.files):
            if name not in known:
                raise ConfigError(f"eval: unknown benchmark {name!r} (one of {', '.join(known)})")


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    seed: int = 0
    iterations: int = 2
    pool: PoolSection = field(default_factory=PoolSection)
    seed_set: SeedSection = field(default_factory=SeedSection)
    synth: SynthSection = field(default_factory=SynthSection)  # the synthesizer and its fine-tunes (S_0 .. S_T)
    sample: SampleSection = field(default_factory=SampleSection)
    score: ScoreSection = field(default_factory=ScoreSection)
    influence: InfluenceSection = field(default_factory=InfluenceSection)
    select: SelectSection = field(default_factory=SelectSection)
    final: FinalSection = field(default_factory=FinalSection)
    student: TrainConfig = field(default_factory=TrainConfig)  # the SCoder model's fine-tune
    eval: EvalSection = field(default_factory=EvalSection)

    def __post_init__(self):
        require(self.iterations >= 0, "iterations", f"must be >= 0, got {self.iterations}")
        keep = self.synth.checkpoint.keep
        require(self.sample.checkpoints <= keep, "sample.checkpoints",
                f"= {self.sample.checkpoints} exceeds the checkpoints each fine-tune keeps (synth.checkpoint.keep = "
                f"{keep}): sampling draws from the last M kept checkpoints")


def resolve_config_path(spec: str | Path) -> Path:
    """A YAML path, or a preset name (configs/ of the repository, shipped in the package)."""
    p = Path(spec)
    if p.exists():
        return p
    preset = CONFIG_DIR / f"{spec}.yaml"
    if preset.exists():
        return preset
    known = sorted(x.stem for x in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.exists() else []
    raise ConfigError(f"{spec}: no such config file or preset (presets: {', '.join(known)})")


def load_run_config(spec: str | Path, overrides: Iterable[str] = (), *, check_inputs: bool = True
                    ) -> tuple[RunConfig, Path]:
    """Reads, validates and resolves a run config: every section's values are checked here, and
    (with `check_inputs`) every file it names, so a mistake stops the run before any work.
    A relative path is looked up beside the config file first, then in the working directory."""
    path = resolve_config_path(spec)
    overrides = list(overrides)
    for item in overrides:
        if item.startswith("ablation="):  # `scoder iterate --ablation NAME` passes it this way
            name = item.split("=", 1)[1]
            if name not in ABLATIONS:
                raise ConfigError(f"ablation {name!r}: not one of {', '.join(ABLATIONS)}")
    ablations = [x.split("=", 1)[1] for x in overrides if x.startswith("ablation=")]
    overrides = [o for name in ablations for o in ABLATIONS[name]] + [x for x in overrides
                                                                     if not x.startswith("ablation=")]
    cfg = resolve_paths(load_config(RunConfig, path, overrides), path.parent)
    if check_inputs:
        check_input_files(cfg, path)
    return cfg, path


def _is_named(value: str) -> bool:
    """A model spec that is not a path: a preset name, a named asset, or the character tokenizer."""
    from scoder_jax.assets import ASSETS
    from scoder_jax.models.presets import PRESETS

    return value in PRESETS or value in ASSETS or value == "chars"


def _beside(value: str | None, base: Path) -> str | None:
    if not value or Path(value).is_absolute():
        return value
    here = base / value
    return str(here.resolve()) if here.exists() else value


def _is_pool_source_path(spec: str) -> bool:
    return not (spec == "stdlib" or spec.startswith("stdlib/") or spec.startswith("tfds:"))


def _train_paths(t, base: Path):
    model = t.model if _is_named(t.model) else _beside(t.model, base)
    tok = t.tokenizer if t.tokenizer is None or _is_named(t.tokenizer) else _beside(t.tokenizer, base)
    return dataclasses.replace(t, model=model, tokenizer=tok)


def resolve_paths(cfg: RunConfig, base: Path) -> RunConfig:
    """Relative paths that exist beside the config file (in `base`) become absolute."""
    pool = dataclasses.replace(cfg.pool, sources=tuple(_beside(s, base) if _is_pool_source_path(s) else s
                                                        for s in cfg.pool.sources))
    seed = cfg.seed_set if cfg.seed_set.source == "bundled" else dataclasses.replace(
        cfg.seed_set, source=_beside(cfg.seed_set.source, base))
    score = cfg.score if cfg.score.judge == "base" or _is_named(cfg.score.judge) else dataclasses.replace(
        cfg.score, judge=_beside(cfg.score.judge, base))
    if isinstance(score.weights, str) and score.weights != "fit":  # a weights file
        score = dataclasses.replace(score, weights=_beside(score.weights, base))
    ev = dataclasses.replace(cfg.eval, problems=_beside(cfg.eval.problems, base),
                             files={k: _beside(v, base) for k, v in cfg.eval.files.items()})
    return dataclasses.replace(cfg, pool=pool, seed_set=seed, score=score, eval=ev,
                               synth=_train_paths(cfg.synth, base), student=_train_paths(cfg.student, base))


def check_input_files(cfg: RunConfig, config_path: Path) -> None:
    """Every file or folder the config names exists (named models: their package is installed)."""
    from scoder_jax.assets import resolve

    where = f"{config_path}"

    def need(key: str, value: str | None) -> None:
        if value and not Path(value).exists():
            raise ConfigError(f"{where}: '{key}' = {value}: no such file or folder (looked beside "
                              f"{config_path.parent} and in {Path.cwd()})")

    for i, s in enumerate(cfg.pool.sources):
        if _is_pool_source_path(s):
            need(f"pool.sources[{i}]", s)
    if cfg.seed_set.source != "bundled":
        need("seed_set.source", cfg.seed_set.source)
    if cfg.score.judge != "base":
        if _is_named(cfg.score.judge):
            resolve(cfg.score.judge)
        else:
            need("score.judge", cfg.score.judge)
            check_scorer(cfg, where)
    if isinstance(cfg.score.weights, str) and cfg.score.weights != "fit":
        need("score.weights", cfg.score.weights)
        check_weights_file(cfg, where)
    need("eval.problems", cfg.eval.problems)
    for bench, path in cfg.eval.files.items():
        need(f"eval.files.{bench}", path)
    for name, t in (("synth", cfg.synth), ("student", cfg.student)):
        for key, value in (("model", t.model), ("tokenizer", t.tokenizer)):
            if value is None:
                continue
            if _is_named(value):
                resolve(value)  # a named asset whose package is missing: a ConfigError saying which
            elif value.startswith("gguf:"):
                from scoder_jax.assets import ASSETS

                raise ConfigError(
                    f"{where}: '{name}.{key}' = {value}: no such named asset (known: {', '.join(ASSETS)})")
            elif not Path(value).exists():
                from scoder_jax.models.presets import PRESETS

                kind = "model preset" if key == "model" else "tokenizer"
                raise ConfigError(f"{where}: '{name}.{key}' = {value}: neither a file or folder (looked beside "
                                  f"{config_path.parent} and in {Path.cwd()}) nor a {kind}"
                                  + (f" ({', '.join(sorted(PRESETS))})" if key == "model" else ""))


def check_scorer(cfg: RunConfig, where: str) -> None:
    """A trained scorer as score.judge (`scoder scorer train`'s folder) was trained on score.aspects."""
    from scoder_jax.score.scorer_info import check_scorer_aspects, read_scorer

    info = read_scorer(cfg.score.judge)
    if info is not None:
        by_name = {a.name: a for a in JUDGE_ASPECTS}
        try:
            check_scorer_aspects(cfg.score.judge, info, [by_name[a] for a in cfg.score.aspects])
        except ConfigError as e:
            raise ConfigError(f"{where}: 'score.judge' = {e}") from None


def check_weights_file(cfg: RunConfig, where: str) -> None:
    """A weights file as score.weights weighs exactly score.aspects."""
    from scoder_jax.score.weights import Weights

    path = cfg.score.weights
    try:
        w = Weights.load(path)
    except ConfigError as e:
        raise ConfigError(f"{where}: 'score.weights' = {e}") from None
    have, want = sorted(w.aspects), sorted(cfg.score.aspects)
    if have != want:
        raise ConfigError(f"{where}: 'score.weights' = {path}: its weights are for the aspects {', '.join(have)}, but "
                          f"score.aspects is {', '.join(want) or '(none)'}: refit them on these aspects (`scoder "
                          "score fit-weights`, or score.weights=fit) or set score.aspects to theirs")

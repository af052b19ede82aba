"""The project config of one SCoder run (`scoder iterate`): every free choice of the method.

A YAML file holds these sections; a preset name (`smoke`, `demo`, ...) reads
`configs/<name>.yaml`. Unknown keys and wrong types are errors naming the key and the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from scoder_jax.config import load_config
from scoder_jax.data.pool import PoolConfig
from scoder_jax.errors import ConfigError
from scoder_jax.train.config import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_ASPECTS = ("clarity", "correctness", "consistency", "relevance", "difficulty")


@dataclass(frozen=True)
class PoolSection:
    sources: tuple[str, ...] = ("stdlib",)  # "stdlib" = this interpreter's standard library
    max_snippets: int = 0  # keep a seeded random subset of this size (0: all)
    build: PoolConfig = field(default_factory=PoolConfig)


@dataclass(frozen=True)
class SeedSection:
    source: str = "bundled"  # "bundled" (the demo stand-in) or a JSONL file (project or Magicoder format)
    limit: int = 0  # keep the first N (0: all)
    shortest: bool = False  # with limit: keep the N shortest samples instead (problem + solution + tests,
    #                         in characters), in their file order: cheaper to train on, shorter to imitate


@dataclass(frozen=True)
class SampleSection:
    snippets_per_iteration: int = 1000  # P_t: disjoint slices of the pool
    n: int = 4  # N samples per checkpoint and snippet
    checkpoints: int = 2  # M: the last M checkpoints of S_{t-1}
    temperature: float = 0.8
    top_p: float = 0.95
    no_repeat_ngram: int = 0  # >= 2: a sample never repeats one of its own n-grams (small models loop)
    cut_tests: bool = False  # keep replies cut off inside [Tests], trimmed to their whole statements
    max_new_tokens: int = 1024
    batch: int = 32


@dataclass(frozen=True)
class ScoreSection:
    judge: str = "base"  # "base": the synthesizer's base model; else a checkpoint path
    aspects: tuple[str, ...] = DEFAULT_ASPECTS
    weights: dict = field(default_factory=dict)  # aspect or signal -> weight; missing aspects weigh 1
    threshold: float = 4.0  # minimum total (per-aspect weighted mean scale) to keep a candidate
    execution: bool = True  # run solutions and tests in the sandbox
    require_tests_pass: bool = True
    timeout_s: float = 5.0


@dataclass(frozen=True)
class InfluenceSection:
    enabled: bool = True
    keep: float = 0.5  # fraction of the initially kept candidates selected by influence
    dim: int = 8192
    mode: str = "auto"  # lora | full (per-layer Kronecker projection, plain gradients) | auto: lora when synth.lora is set
    sgd: bool = False  # plain gradients instead of the Adam transform for candidates
    two_stage: bool = False  # per-layer Kronecker projection first, then dense (much cheaper on a CPU)
    microbatch: int = 8
    targets: int = 0  # score against the first N samples of the seed set (0: all of it)
    seq_len: int = 0  # examples are truncated to this many tokens for their gradients (0: synth.seq_len)


@dataclass(frozen=True)
class FinalSection:
    snippets: int = 60000  # P_final, drawn after the iterations' slices
    n: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    no_repeat_ngram: int = 0
    cut_tests: bool = False
    max_new_tokens: int = 1024


@dataclass(frozen=True)
class EvalSection:
    enabled: bool = True
    benchmark: str = "humaneval"
    problems: str | None = None  # the MBPP file, or a HumanEval-format JSONL
    limit: int = 0  # first N problems (0: all)
    n: int = 1
    temperature: float = 0.0
    max_new_tokens: int = 512
    per_iteration: bool = True  # also evaluate each iteration's synthesizer
    timeout_s: float = 10.0


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    seed: int = 0
    iterations: int = 2
    pool: PoolSection = field(default_factory=PoolSection)
    seed_set: SeedSection = field(default_factory=SeedSection)
    synth: TrainConfig = field(default_factory=TrainConfig)  # fine-tunes of the synthesizer (S_0 .. S_T)
    sample: SampleSection = field(default_factory=SampleSection)
    score: ScoreSection = field(default_factory=ScoreSection)
    influence: InfluenceSection = field(default_factory=InfluenceSection)
    final: FinalSection = field(default_factory=FinalSection)
    student: TrainConfig = field(default_factory=TrainConfig)  # the SCoder model's fine-tune
    eval: EvalSection = field(default_factory=EvalSection)

    def __post_init__(self):
        if self.iterations < 0:
            raise ConfigError(f"iterations: must be >= 0, got {self.iterations}")


def resolve_config_path(spec: str | Path) -> Path:
    """A YAML path, or a preset name found in configs/."""
    p = Path(spec)
    if p.exists():
        return p
    preset = CONFIG_DIR / f"{spec}.yaml"
    if preset.exists():
        return preset
    known = sorted(x.stem for x in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.exists() else []
    raise ConfigError(f"{spec}: no such config file or preset (presets: {', '.join(known)})")


def load_run_config(spec: str | Path, overrides: Iterable[str] = ()) -> tuple[RunConfig, Path]:
    path = resolve_config_path(spec)
    return load_config(RunConfig, path, overrides), path

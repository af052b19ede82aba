"""`train(cfg, data, out_dir)`: supervised fine-tuning, full or LoRA, on a (data, fsdp, tensor) mesh.

The run directory OUT holds `checkpoints/<step>/` (see `checkpoints.py`), `metrics.jsonl`,
`tensorboard/`, `train_config.yaml`, `data_stats.json` and, at the end, `summary.json`. Training
into an OUT that already has checkpoints resumes from the latest: parameters, optimizer state
and step come back, and the data position follows from the step (the order of epoch e depends
on (seed, e) only), so the resumed run ends where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np
from flax import nnx

from scoder_jax import parallel
from scoder_jax.config import dump_yaml, to_dict
from scoder_jax.errors import CheckpointError, ConfigError, DataError
from scoder_jax.io import write_json_atomic, write_text_atomic
from scoder_jax.models.config import ModelConfig
from scoder_jax.models.llama import Decoder
from scoder_jax.train import checkpoints as ckpt_lib
from scoder_jax.train import data as data_lib
from scoder_jax.train import metrics as metrics_lib
from scoder_jax.train import step as step_lib
from scoder_jax.train.config import TrainConfig
from scoder_jax.train.optim import make_optimizer

log = logging.getLogger(__name__)


def _say(msg: str) -> None:
    if jax.process_index() == 0:
        print(msg, file=sys.stderr, flush=True)


def init_distributed(cfg: TrainConfig) -> None:
    d = cfg.distributed
    if jax.distributed.is_initialized():
        return
    parallel.maybe_initialize_distributed(d.coordinator, d.num_processes, d.process_id, timeout_s=d.timeout_s)


def build_mesh(cfg: TrainConfig):
    m = cfg.mesh
    devices = None
    if m.num_devices is not None:
        if jax.process_count() > 1:
            raise ConfigError("mesh.num_devices applies to single-process runs only "
                              "(a multi-host mesh spans all devices)")
        if not 1 <= m.num_devices <= jax.device_count():
            raise ConfigError(f"mesh.num_devices = {m.num_devices}, but there are {jax.device_count()} devices")
        devices = jax.devices()[:m.num_devices]
    try:
        return parallel.fit_mesh(cfg.micro_rows, m.data, m.fsdp, m.tensor, devices=devices,
                                 what="batch_size / grad_accum (a microbatch)")
    except ConfigError as e:
        raise ConfigError(f"{e} (set mesh.data/mesh.fsdp/mesh.tensor so their product is the device count "
                          f"{len(devices or jax.devices())}, or one of them to -1)") from None


def model_overrides(cfg: TrainConfig) -> dict:
    return dict(param_dtype=cfg.param_dtype, compute_dtype=cfg.compute_dtype, remat=cfg.remat,
                scan_unroll=cfg.scan_unroll, attention=cfg.attention,
                lora=cfg.lora)


@functools.lru_cache(maxsize=8)
def _init_fn(model_cfg: ModelConfig, mesh, seed: int):
    abstract = nnx.eval_shape(lambda: Decoder(model_cfg, rngs=nnx.Rngs(seed)))
    graphdef, state = nnx.split(abstract)
    shardings = parallel.variable_shardings(state, mesh)
    return graphdef, jax.jit(lambda: nnx.state(Decoder(model_cfg, rngs=nnx.Rngs(seed))), out_shardings=shardings)


def init_model(model_cfg: ModelConfig, mesh, seed: int) -> Decoder:
    """A randomly initialised model, each parameter created directly on its sharding."""
    graphdef, fn = _init_fn(model_cfg, mesh, seed)
    return nnx.merge(graphdef, fn())


def load_initial_model(cfg: TrainConfig, mesh, model: str | None = None) -> tuple[Decoder, str | None]:
    """(model, checkpoint path or None for a preset) from `model` or cfg.model."""
    from scoder_jax.models.checkpoint import load_model
    from scoder_jax.models.presets import PRESETS

    from scoder_jax.assets import resolve

    spec = resolve(model or cfg.model)
    over = model_overrides(cfg)
    if not Path(spec).exists() and spec in PRESETS:
        return init_model(PRESETS[spec].replace(**over), mesh, cfg.seed), None
    if not Path(spec).exists():
        raise ConfigError(f"model {spec!r} is neither a checkpoint path nor a preset ({', '.join(sorted(PRESETS))})")
    return load_model(spec, mesh=mesh, **over), spec


@dataclasses.dataclass
class Run:
    """One fine-tune as `setup` leaves it: config, mesh, data plan, the split model, the
    optimizer and its state, and their shardings. `restore` and the loop update it."""

    cfg: TrainConfig
    out_dir: Path
    mesh: Any
    mcfg: ModelConfig
    tok: Any
    ds: Any
    plan: Any
    fingerprint: str
    graphdef: Any
    params: Any
    frozen: Any
    opt_state: Any
    tx: Any
    schedule: Any
    shardings: tuple  # (params, optimizer state, frozen, batch)
    start: int = 0
    meta: dict = dataclasses.field(default_factory=dict)
    resumed: bool = False

    @property
    def total(self) -> int:
        return self.plan.total_steps

    @property
    def primary(self) -> bool:
        return jax.process_index() == 0

    def counts(self) -> tuple[int, int]:
        """(trainable, frozen) parameter counts."""
        return (int(sum(x.size for x in jax.tree.leaves(self.params))),
                int(sum(x.size for x in jax.tree.leaves(self.frozen))))


def setup(cfg: TrainConfig, data: str | Path | Sequence[dict], out_dir: str | Path, model: str | None,
          tokenizer) -> Run:
    """Mesh, model, data plan, optimizer; writes train_config.yaml and data_stats.json."""
    if isinstance(data, (str, Path)) and not Path(data).is_file():
        raise DataError(f"{data}: no such file (the training data: JSONL records)")
    init_distributed(cfg)
    out_dir = Path(out_dir).absolute()
    mesh = build_mesh(cfg)
    model_obj, model_path = load_initial_model(cfg, mesh, model)
    mcfg = model_obj.cfg
    tok = tokenizer if tokenizer is not None else data_lib.resolve_tokenizer(cfg.tokenizer, model_path)
    if isinstance(data, (str, Path)):
        ds = data_lib.load_dataset(data, tok, cfg, vocab_size=mcfg.vocab_size)
    else:
        ds = data_lib.build_dataset(list(data), tok, cfg, vocab_size=mcfg.vocab_size)
    plan = data_lib.DataPlan(ds, cfg)
    fingerprint = ds.fingerprint()
    if jax.process_index() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / "train_config.yaml", dump_yaml(cfg))
        write_json_atomic(out_dir / "data_stats.json", {
            **ds.stats, "samples": len(ds), "fingerprint": fingerprint, "loss_tokens": ds.loss_tokens,
            "rows_per_epoch": [len(plan.rows(e)) for e in range(cfg.epochs)], "steps_per_epoch": plan.steps_per_epoch})
    trainable = nnx.LoRAParam if mcfg.lora is not None else nnx.Param
    graphdef, params, frozen = step_lib.split_model(model_obj, trainable)
    del model_obj
    if not params:
        raise ConfigError("the model has no trainable parameters")
    p_sh, f_sh = step_lib.shardings_of(nnx.merge(graphdef, params, frozen), trainable, mesh)
    tx, schedule = make_optimizer(cfg.optim, plan.total_steps)
    o_sh = step_lib.opt_state_shardings(tx, params, p_sh, mesh)
    opt_state = jax.jit(tx.init, out_shardings=o_sh)(params)
    return Run(cfg, out_dir, mesh, mcfg, tok, ds, plan, fingerprint, graphdef, params, frozen, opt_state, tx,
               schedule, (p_sh, o_sh, f_sh, step_lib.batch_sharding(mesh)))


def restore(run: Run, ckpt: ckpt_lib.TrainCheckpointer, resume: bool) -> None:
    """Continues from the latest checkpoint in the run's folder, if it holds one."""
    latest = ckpt.latest_step()
    if latest is None:
        return
    if not resume:
        raise CheckpointError(f"{ckpt.dir}: holds checkpoints (latest step {latest}); resume, or use a fresh --out")
    p_sh, o_sh, f_sh, _ = run.shardings
    run.params, run.opt_state, run.meta = ckpt.restore(latest, step_lib.abstract_like(run.params, p_sh),
                                                       step_lib.abstract_like(run.opt_state, o_sh),
                                                       step_lib.abstract_like(run.frozen, f_sh))
    run.start, run.resumed = int(run.meta["step"]), True
    if run.meta.get("data_fingerprint") != run.fingerprint:
        log.warning("%s: the data differ from those the checkpoint was trained on; the data position "
                    "(epoch %s, batch %s) is kept by step", ckpt.dir / str(latest),
                    run.meta["data_position"]["epoch"], run.meta["data_position"]["batch_in_epoch"])
    if run.meta.get("train", {}).get("optim") != to_dict(run.cfg.optim) or run.meta.get("total_steps") != run.total:
        log.warning("%s: optimizer settings or step count differ from the checkpoint's run; "
                    "the resumed run will not match an uninterrupted one", ckpt.dir / str(latest))
    _say(f"resuming from {ckpt.dir / str(latest)} (step {run.start} of {run.total})")


def compile_step(run: Run) -> tuple[Any, dict, float]:
    """The jitted step compiled ahead of time for the run's shapes: (compiled, memory, seconds)."""
    cfg = run.cfg
    p_sh, o_sh, f_sh, bsh = run.shardings
    step_fn = step_lib.build_step(run.graphdef, run.tx, grad_accum=cfg.grad_accum, loss_chunk=cfg.loss_chunk)
    jitted = step_lib.jit_step(step_fn, p_sh, o_sh, f_sh, bsh, run.plan.batch_keys)
    t0 = time.time()
    compiled, mem = step_lib.compile_step(
        jitted, step_lib.abstract_like(run.params, p_sh), step_lib.abstract_like(run.opt_state, o_sh),
        step_lib.abstract_like(run.frozen, f_sh),
        step_lib.abstract_batch(cfg.grad_accum, cfg.micro_rows, cfg.seq_len, bsh, run.plan.loss_slots))
    compile_s = time.time() - t0
    if mem:
        _say(f"compiled the step in {compile_s:.1f}s; per-device memory (XLA analysis): "
             f"arguments {mem['argument'] / 2**20:.1f} MiB, outputs {mem['output'] / 2**20:.1f} MiB "
             f"(aliased {mem['alias'] / 2**20:.1f}), temporaries {mem['temp'] / 2**20:.1f} MiB, "
             f"total {mem['total'] / 2**20:.1f} MiB")
    step_lib.check_fits(mem)
    return compiled, mem, compile_s


def loop(run: Run, compiled, ckpt: ckpt_lib.TrainCheckpointer, metrics) -> tuple[float, int]:
    """Steps run.start .. total, logging and checkpointing; returns (last loss, tokens trained)."""
    cfg, plan, total, bsh = run.cfg, run.plan, run.total, run.shardings[3]
    flops_tok = metrics_lib.train_flops_per_token(run.mcfg, cfg.seq_len)
    peak, _peak_src = metrics_lib.peak_flops_per_device(cfg.compute_dtype)
    # a CPU host's simulated devices share its cores: the measured peak is per host
    peak_total = peak * (jax.process_count() if jax.devices()[0].platform == "cpu" else jax.device_count())
    progress = metrics_lib.Progress(total, run.start, cfg.progress)
    lrs_since_ckpt: list[float] = []
    last_loss = float("nan")
    tokens_done = 0
    window = {"t": time.time(), "tokens": 0, "steps": 0}  # throughput since the last logged step
    batch = plan.device_batch(run.start, bsh)
    for s in range(run.start, total):
        done = s + 1
        ntok = int(sum(plan.lengths[i] for r in plan.step_rows(s) for i in r))  # non-padding positions
        run.params, run.opt_state, m = compiled(run.params, run.opt_state, run.frozen, batch)
        if done < total:
            batch = plan.device_batch(done, bsh)  # built on the host while the device runs step s
        # replicated scalars: this host's copy (a multi-host array is not fully addressable); blocks on step s
        loss, gnorm, ntgt = (float(np.asarray(m[k].addressable_data(0))) for k in ("loss", "grad_norm", "tokens"))
        # after the block: on CPU the schedule's eager ops would run beside the step on the same
        # cores and slow it (2.7 against 2.2 s per step in the train benchmark)
        lr = float(run.schedule(s))
        lrs_since_ckpt.append(lr)
        last_loss = loss
        tokens_done += ntok
        window["tokens"] += ntok
        window["steps"] += 1
        now = time.time()
        dt = max(now - window["t"], 1e-9)
        tps = window["tokens"] / dt
        progress.update(done, loss, tps)
        if done % cfg.log_every == 0 or done == total:
            metrics.log(done, {"loss": loss, "grad_norm": gnorm, "lr": lr, "tokens": ntok, "loss_tokens": int(ntgt),
                               "tokens_per_s": tps, "mfu": tps * flops_tok / peak_total if peak_total else 0.0,
                               "step_s": dt / window["steps"], "epoch": plan.position(s)[0]})
            window = {"t": now, "tokens": 0, "steps": 0}
        every = cfg.checkpoint.every_steps
        if (every and done % every == 0) or (cfg.checkpoint.at_epoch_end and plan.is_epoch_end(s)) or done == total:
            meta = {"lr": lr, "mean_lr": float(np.mean(lrs_since_ckpt)),
                    "data_position": plan.position_dict(done), "epoch_end": plan.is_epoch_end(s),
                    "total_steps": total, "data_fingerprint": run.fingerprint, "train": to_dict(cfg),
                    "loss": loss, "trainable": "lora" if run.mcfg.lora is not None else "full"}
            ckpt.save(done, run.params, run.opt_state, meta, run.frozen)
            lrs_since_ckpt = []
    ckpt.wait()
    progress.close()
    return last_loss, tokens_done


def summarize(run: Run, *, final_loss: float, tokens: int, t_start: float, compile_s: float, mem: dict) -> dict:
    """summary.json's content (written by the primary process)."""
    infos = ckpt_lib.list_checkpoints(run.out_dir, repair=run.primary, tokenizer=run.tok)
    n_train, n_frozen = run.counts()
    return {
        "steps": run.total, "resumed_from": run.start if run.resumed else None, "final_loss": final_loss,
        "tokens": tokens, "elapsed_s": time.time() - t_start, "compile_s": compile_s, "memory": mem,
        "trainable_params": n_train, "params": n_train + n_frozen, "data": run.ds.stats, "samples": len(run.ds),
        "checkpoints": [{"step": i.step, "path": str(i.path), "lr": i.lr} for i in infos],
        "out_dir": str(run.out_dir),
    }


def base_reference(run: Run, model: str | None):
    """A LoRA run's frozen base (`models/base_ref.py`), which its checkpoints refer to rather than
    store; None for a full fine-tune, whose checkpoints hold every parameter."""
    from scoder_jax.assets import resolve
    from scoder_jax.models.base_ref import reference

    if run.mcfg.lora is None:
        return None
    return reference(resolve(model or run.cfg.model), seed=run.cfg.seed, cfg=run.mcfg, params=run.frozen)


def train(cfg: TrainConfig, data: str | Path | Sequence[dict], out_dir: str | Path, *, model: str | None = None,
          tokenizer=None, resume: bool = True) -> dict:
    """Trains and checkpoints into `out_dir`; returns a summary dict.

    `data`: a JSONL path or a list of records (see `scoder_jax.train.data`). `model` overrides
    cfg.model; `tokenizer` (a Tokenizer) overrides cfg.tokenizer. With `resume`, an `out_dir`
    holding checkpoints continues from its latest; otherwise it must not hold any.
    """
    t_start = time.time()
    run = setup(cfg, data, out_dir, model, tokenizer)
    ckpt = ckpt_lib.TrainCheckpointer(run.out_dir, keep=cfg.checkpoint.keep, async_save=cfg.checkpoint.async_save,
                                      model_cfg=run.mcfg, tokenizer=run.tok, base=base_reference(run, model))
    restore(run, ckpt, resume)
    metrics = metrics_lib.MetricsLogger(run.out_dir, tensorboard=cfg.tensorboard, resume_step=run.start)
    try:
        if run.start >= run.total:  # a finished run: nothing to compile or train
            _say(f"{run.out_dir}: already trained ({run.start} of {run.total} steps)")
            return summarize(run, final_loss=float(run.meta.get("loss", float("nan"))), tokens=0, t_start=t_start,
                             compile_s=0.0, mem={})
        compiled, mem, compile_s = compile_step(run)
        n_train, n_frozen = run.counts()
        _say(f"training {run.mcfg.name}: {n_train:,} trainable / {n_train + n_frozen:,} parameters "
             f"({'LoRA' if run.mcfg.lora else 'full'}), mesh {dict(run.mesh.shape)}, {len(run.ds)} samples, "
             f"{run.total} steps of {cfg.batch_size} x {cfg.seq_len}")
        metrics.event({"event": "start", "step": run.start, "total_steps": run.total, "compile_s": compile_s,
                       "memory": mem, "trainable_params": n_train, "params": n_train + n_frozen,
                       "mesh": dict(run.mesh.shape), "processes": jax.process_count()})
        last_loss, tokens = loop(run, compiled, ckpt, metrics)
        summary = summarize(run, final_loss=last_loss, tokens=tokens, t_start=t_start, compile_s=compile_s, mem=mem)
        metrics.event({"event": "end", "step": run.total, "final_loss": last_loss})
    finally:
        metrics.close()
        ckpt.close()
    if run.primary:
        write_json_atomic(run.out_dir / "summary.json", summary)
    return summary


__all__ = ["train", "Run", "setup", "restore", "compile_step", "loop", "summarize", "init_model",
           "load_initial_model", "build_mesh", "model_overrides"]

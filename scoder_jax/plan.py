"""`scoder plan`: per-device memory of a fine-tune on a mesh, before any accelerator is rented.

Two independent estimates for one train section (`synth` or `student`) of a project config:

(a) by formula: parameter shapes from the model preset or the checkpoint's config (nothing is
    loaded), each sharded as `parallel.spec_for` would shard it on the mesh; Adam's two moments
    for the trainable parameters only (every parameter, or the LoRA factors alone in a LoRA run)
    in the parameter dtype (optax's default; the LoRA factors are fp32); fp32 gradients; the
    batch; activations saved for the backward pass per token and layer under the remat policy;
    the logits.
(b) by XLA: the trainer's own step (`train.step.build_step` / `jit_step`), lowered over abstract
    inputs (`jax.ShapeDtypeStruct` with shardings: nothing is allocated) on N simulated CPU
    devices and compiled; `compiled.memory_analysis()` gives arguments, outputs, aliasing and
    temporaries per device. N CPU devices need XLA_FLAGS=--xla_force_host_platform_device_count=N
    before JAX starts its backend: when this process already has fewer, the command re-runs
    itself in a subprocess with the flag set.

The verdict compares the XLA total (or the formula's, with --no-compile) with --device-memory-gb.

Beside the memory: the size of one training checkpoint on disk (all devices together), what it
stores: a full fine-tune every parameter and its two Adam moments; a LoRA run the adapters and
their two moments alone (fp32), with a reference to its base (`train/checkpoints.py`), against
the base weights it used to store beside them.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import click

from scoder_jax.errors import ConfigError

GIB = 2 ** 30
_REEXEC_ENV = "SCODER_PLAN_REEXEC"
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


# ----------------------------------------------------------------------------- inputs


def parse_mesh(spec: str | None, devices: int, default=None) -> dict[str, int]:
    """"data,fsdp,tensor" (one may be -1) or the config's mesh -> sizes whose product is `devices`."""
    if spec:
        try:
            sizes = [int(x) for x in spec.split(",")]
        except ValueError:
            raise ConfigError(f"--mesh {spec!r}: expected three integers data,fsdp,tensor (e.g. 2,2,2)") from None
        if len(sizes) != 3:
            raise ConfigError(f"--mesh {spec!r}: expected three integers data,fsdp,tensor (e.g. 2,2,2)")
    else:
        sizes = [default.data, default.fsdp, default.tensor] if default is not None else [-1, 1, 1]
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ConfigError(f"mesh {sizes}: sizes must be positive, at most one of them -1")
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if devices % known:
            raise ConfigError(f"mesh {sizes}: {devices} devices are not divisible by {known}")
        sizes[sizes.index(-1)] = devices // known
    if math.prod(sizes) != devices:
        raise ConfigError(f"mesh data*fsdp*tensor = {'*'.join(map(str, sizes))} = {math.prod(sizes)} "
                          f"is not --devices {devices}")
    return dict(zip(("data", "fsdp", "tensor"), sizes))


def model_config_for(spec: str):
    """The ModelConfig of a preset name or a checkpoint path (GGUF, HF directory, scoder-jax), no weights read."""
    from scoder_jax.assets import resolve
    from scoder_jax.models.config import ModelConfig, read_hf_config
    from scoder_jax.models.presets import PRESETS

    path = resolve(spec)
    if not Path(path).exists():
        if path in PRESETS:
            return PRESETS[path]
        raise ConfigError(f"model {spec!r} is neither a checkpoint path nor a preset ({', '.join(sorted(PRESETS))})")
    from scoder_jax.models import checkpoint as ck

    kind = ck.checkpoint_kind(path)
    if kind == "gguf":
        return ck.gguf_config(*ck.read_gguf_header(Path(path)), str(path))
    if kind == "hf":
        return read_hf_config(path)
    marker = Path(path) / ck.ORBAX_MARKER
    return ModelConfig.from_dict(json.loads(marker.read_text())["model"])


def load_section(config: str, section: str, overrides=()):
    from scoder_jax.runconfig import load_run_config

    cfg, _ = load_run_config(config, overrides)
    return getattr(cfg, section)


# ----------------------------------------------------------------------------- (a) the formula


@dataclass
class Estimate:
    params_trainable: int = 0  # bytes per device
    params_frozen: int = 0
    optimizer: int = 0
    batch: int = 0
    gradients: int = 0
    activations: int = 0
    logits: int = 0
    n_trainable: int = 0  # parameter counts (global)
    n_total: int = 0
    notes: list = field(default_factory=list)

    @property
    def arguments(self) -> int:
        return self.params_trainable + self.params_frozen + self.optimizer + self.batch

    @property
    def temporaries(self) -> int:
        return self.gradients + self.activations + self.logits

    @property
    def total(self) -> int:
        return self.arguments + self.temporaries


@dataclass
class CheckpointSize:
    """Bytes of one training checkpoint's arrays (orbax's metadata adds some KiB)."""

    params: int  # what params/ holds: every parameter, or the LoRA factors alone
    moments: int  # Adam's mu and nu for the trainable parameters
    frozen_base: int  # the base weights a LoRA checkpoint refers to (stored beside it before)

    @property
    def total(self) -> int:
        return self.params + self.moments

    @property
    def before(self) -> int:
        """What a LoRA checkpoint took when it stored its base too."""
        return self.total + self.frozen_base


def checkpoint_size(mcfg) -> CheckpointSize:
    """Bytes on disk of one checkpoint of a fine-tune of `mcfg`: full (parameters and Adam moments
    in the parameter dtype) or LoRA (fp32 adapters and moments; the base is referred to)."""
    from scoder_jax.models.llama import lora_specs, param_specs

    base = sum(math.prod(s) for s, _ in param_specs(mcfg).values()) * _DTYPE_BYTES[mcfg.param_dtype]
    if mcfg.lora is None:
        return CheckpointSize(base, 2 * base, 0)
    adapters = sum(math.prod(s) for s, _ in lora_specs(mcfg).values()) * 4
    return CheckpointSize(adapters, 2 * adapters, base)


def _local_size(shape, axes, mesh_shape: dict) -> int:
    """Elements per device of a value with these logical axes, sharded as the trainer shards it."""
    from scoder_jax import parallel

    spec = parallel.spec_for(axes, shape, SimpleNamespace(shape=mesh_shape))
    n = 1
    for dim, part in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
        parts = () if part is None else (part,) if isinstance(part, str) else part
        n *= dim // math.prod(mesh_shape[a] for a in parts)
    return n


def activation_bytes_per_token_layer(mcfg, seq_len: int, tensor: int) -> tuple[int, int]:
    """(bytes saved per token per layer for the backward pass, bytes of one layer's full set).

    Saved values under no remat: the residual and norm inputs/outputs (6 E), q/k/v before and
    after RoPE (2 (H + 2K) D), the attention context (H D), the MLP's gate, up, silu(gate) and
    their product (4 F) in the compute dtype, plus the fp32 attention scores and the
    probabilities over the keys a query sees (T, or T/2 on average with the chunked causal
    attention). `full` keeps only the layer input E; `dots_saveable` the matmul outputs
    (q, k, v, scores, context, o, gate, up, down) and the input; `dots_with_no_batch_dims_saveable`
    the projections' outputs and the input. Head and MLP dimensions are split over `tensor`.
    """
    E, H, K, D, F = mcfg.hidden_size, mcfg.num_heads, mcfg.num_kv_heads, mcfg.head_dim, mcfg.intermediate_size
    cd = _DTYPE_BYTES[mcfg.compute_dtype]
    keys = seq_len / 2 if (seq_len > 128 and seq_len % 128 == 0) else seq_len
    h_t = max(H // tensor, 1) if H % tensor == 0 else H
    k_t = max(K // tensor, 1) if K % tensor == 0 else K
    f_t = F // tensor if F % tensor == 0 else F
    scores = h_t * keys * (4 + cd)  # fp32 scores + probabilities in the compute dtype
    full_layer = cd * (6 * E + 2 * (h_t + 2 * k_t) * D + h_t * D + 4 * f_t) + scores
    policy = mcfg.remat
    if policy == "none":
        saved = full_layer
    elif policy == "full":
        saved = cd * E
    elif policy == "dots_saveable":
        saved = cd * (E + (h_t + 2 * k_t) * D + h_t * D + 2 * E + 2 * f_t) + h_t * keys * 4
    else:  # dots_with_no_batch_dims_saveable
        saved = cd * (E + (h_t + 2 * k_t) * D + 2 * E + 2 * f_t)
    return int(saved), int(full_layer)


def formula(tcfg, mcfg, mesh_shape: dict) -> Estimate:
    """Per-device bytes of a train step by counting (see the module docstring)."""
    from scoder_jax.models.llama import lora_specs, param_specs

    est = Estimate()
    pbytes = _DTYPE_BYTES[mcfg.param_dtype]
    lora = mcfg.lora is not None
    base = param_specs(mcfg)
    adapters = lora_specs(mcfg)
    for shape, axes in base.values():
        n_local = _local_size(shape, axes, mesh_shape)
        est.n_total += math.prod(shape)
        if lora:
            est.params_frozen += n_local * pbytes
        else:
            est.params_trainable += n_local * pbytes
            est.n_trainable += math.prod(shape)
            est.optimizer += 2 * n_local * pbytes
            est.gradients += n_local * 4
    for shape, axes in adapters.values():
        n_local = _local_size(shape, axes, mesh_shape)
        est.n_total += math.prod(shape)
        est.n_trainable += math.prod(shape)
        est.params_trainable += n_local * 4
        est.optimizer += 2 * n_local * 4
        est.gradients += n_local * 4
    est.optimizer += 8  # two int32 step counters (Adam, schedule)
    if tcfg.grad_accum > 1:
        est.gradients *= 2  # the fp32 accumulator beside one microbatch's gradients
        est.notes.append("grad_accum > 1: gradients counted twice (accumulator + microbatch)")

    rows_axes = mesh_shape["data"] * mesh_shape["fsdp"]
    if tcfg.micro_rows % rows_axes:
        raise ConfigError(f"batch_size / grad_accum = {tcfg.micro_rows} rows per microbatch is not divisible by "
                          f"mesh data*fsdp = {rows_axes}")
    rows = tcfg.micro_rows // rows_axes
    T = tcfg.seq_len
    est.batch = tcfg.grad_accum * rows * T * 4 * 4  # tokens, segment_ids, targets (int32), weights (fp32)
    saved, one_layer = activation_bytes_per_token_layer(mcfg, T, mesh_shape["tensor"])
    tokens = rows * T
    est.activations = tokens * (mcfg.num_layers * saved + (one_layer if mcfg.remat != "none" else 0))
    est.activations += rows * T * T  # the [R, T, T] boolean attention mask
    V = mcfg.vocab_size
    v_t = V // mesh_shape["tensor"] if V % mesh_shape["tensor"] == 0 else V
    positions = min(tcfg.loss_chunk, T) if tcfg.loss_chunk else T
    est.logits = 2 * rows * positions * v_t * 4  # fp32 logits and their gradient
    return est


# ----------------------------------------------------------------------------- (b) XLA


def xla_memory(tcfg, mcfg, mesh_shape: dict, devices) -> dict:
    """XLA's memory analysis of the trainer's compiled step on `devices` (abstract inputs only)."""
    import jax
    from flax import nnx

    from scoder_jax import parallel
    from scoder_jax.models.llama import Decoder
    from scoder_jax.train import step as step_lib
    from scoder_jax.train.optim import make_optimizer

    mesh = parallel.make_mesh(mesh_shape["data"], mesh_shape["fsdp"], mesh_shape["tensor"], devices=devices)
    abstract_model = nnx.eval_shape(lambda: Decoder(mcfg, rngs=nnx.Rngs(0)))
    trainable = nnx.LoRAParam if mcfg.lora is not None else nnx.Param
    graphdef, params, frozen = step_lib.split_model(abstract_model, trainable)
    if not params:
        raise ConfigError("the model has no trainable parameters")
    p_sh, f_sh = step_lib.shardings_of(abstract_model, trainable, mesh)
    tx, _ = make_optimizer(tcfg.optim, max(tcfg.max_steps or 1000, 1))
    o_sh = step_lib.opt_state_shardings(tx, params, p_sh, mesh)
    opt_state = jax.eval_shape(tx.init, params)
    bsh = step_lib.batch_sharding(mesh)
    step = step_lib.build_step(graphdef, tx, grad_accum=tcfg.grad_accum, loss_chunk=tcfg.loss_chunk)
    jitted = step_lib.jit_step(step, p_sh, o_sh, f_sh, bsh)
    _, mem = step_lib.compile_step(
        jitted, step_lib.abstract_like(params, p_sh), step_lib.abstract_like(opt_state, o_sh),
        step_lib.abstract_like(frozen, f_sh),
        step_lib.abstract_batch(tcfg.grad_accum, tcfg.micro_rows, tcfg.seq_len, bsh))
    return mem


def _flag_devices(flags: str) -> int:
    m = re.search(r"--xla_force_host_platform_device_count=(\d+)", flags or "")
    return int(m.group(1)) if m else 1


def _with_device_count(flags: str, n: int) -> str:
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", flags or "").strip()
    return f"{flags} --xla_force_host_platform_device_count={n}".strip()


def cpu_devices(n: int):
    """n CPU devices of this process, or None when its backend already started with fewer."""
    if _flag_devices(os.environ.get("XLA_FLAGS", "")) < n:
        # takes effect only if no backend has started yet in this process
        os.environ["XLA_FLAGS"] = _with_device_count(os.environ.get("XLA_FLAGS", ""), n)
    import jax

    devs = jax.devices("cpu")
    return devs[:n] if len(devs) >= n else None


# ----------------------------------------------------------------------------- report


def _gib(b: float) -> str:
    return f"{b / GIB:8.3f} GiB" if b >= GIB else f"{b / 2**20:8.3f} MiB"


def render(tcfg, mcfg, mesh_shape, est: Estimate, mem: dict | None, limit_gb: float | None,
           section: str) -> tuple[str, dict]:
    lines = [
        f"plan: {section} fine-tune of {mcfg.name} ({'LoRA rank %d' % mcfg.lora.rank if mcfg.lora else 'full'}), "
        f"{est.n_trainable:,} trainable / {est.n_total:,} parameters",
        f"  mesh data={mesh_shape['data']} fsdp={mesh_shape['fsdp']} tensor={mesh_shape['tensor']} "
        f"({math.prod(mesh_shape.values())} devices); batch {tcfg.batch_size} x {tcfg.seq_len} tokens, "
        f"grad_accum {tcfg.grad_accum}, param {mcfg.param_dtype}, compute {mcfg.compute_dtype}, remat {mcfg.remat}, "
        f"loss_chunk {tcfg.loss_chunk}",
        "per device, by formula:",
        f"  parameters (trainable)  {_gib(est.params_trainable)}",
        f"  parameters (frozen)     {_gib(est.params_frozen)}",
        f"  optimizer state (Adam)  {_gib(est.optimizer)}",
        f"  batch                   {_gib(est.batch)}",
        f"  arguments               {_gib(est.arguments)}",
        f"  gradients (fp32)        {_gib(est.gradients)}",
        f"  activations             {_gib(est.activations)}",
        f"  logits                  {_gib(est.logits)}",
        f"  total                   {_gib(est.total)}",
    ]
    lines += [f"  note: {n}" for n in est.notes]
    size, keep = checkpoint_size(mcfg), tcfg.checkpoint.keep
    if mcfg.lora is not None:
        lines.append(f"checkpoint on disk: {_gib(size.total).strip()} each, {_gib(keep * size.total).strip()} for "
                     f"the {keep} kept (adapters + 2 Adam moments, the base referred to; with the base stored "
                     f"beside them: {_gib(size.before).strip()} each)")
    else:
        lines.append(f"checkpoint on disk: {_gib(size.total).strip()} each, {_gib(keep * size.total).strip()} for "
                     f"the {keep} kept (parameters + 2 Adam moments)")
    if mem:
        lines += [
            "per device, XLA memory analysis of the compiled train step:",
            f"  arguments               {_gib(mem['argument'])}",
            f"  outputs                 {_gib(mem['output'])}  (aliased with arguments {_gib(mem['alias']).strip()})",
            f"  temporaries             {_gib(mem['temp'])}",
            f"  total                   {_gib(mem['total'])}",
            f"  formula / XLA arguments {est.arguments / max(mem['argument'], 1):.3f}",
        ]
    elif mem is not None:
        lines.append("XLA memory analysis: not available on this backend")
    need = mem["total"] if mem else est.total
    verdict = None
    if limit_gb is not None:
        limit = limit_gb * GIB
        src = "XLA" if mem else "formula"
        if need <= limit:
            verdict = "fits"
            lines.append(f"verdict: fits in {limit_gb:g} GiB per device ({need / GIB:.3f} GiB by {src}, "
                         f"{100 * need / limit:.0f}%)")
        else:
            verdict = "does not fit"
            lines.append(f"verdict: does NOT fit in {limit_gb:g} GiB per device ({need / GIB:.3f} GiB by {src}): "
                         f"raise fsdp/tensor, set remat, loss_chunk, grad_accum, or use LoRA")
    data = {"section": section, "model": mcfg.name, "lora": mcfg.lora is not None, "mesh": mesh_shape,
            "trainable_params": est.n_trainable, "params": est.n_total,
            "formula": {"params_trainable": est.params_trainable, "params_frozen": est.params_frozen,
                        "optimizer": est.optimizer, "batch": est.batch, "arguments": est.arguments,
                        "gradients": est.gradients, "activations": est.activations, "logits": est.logits,
                        "total": est.total},
            "xla": mem or None, "verdict": verdict,
            "checkpoint_bytes": {"params": size.params, "moments": size.moments, "total": size.total,
                                 "with_base": size.before}}
    return "\n".join(lines), data


def make_plan(config: str, devices: int, *, section: str = "student", mesh: str | None = None,
              device_memory_gb: float | None = None, compile: bool = True, overrides=()) -> tuple[str, dict]:
    """(text, data) of a plan. With `compile`, needs `devices` CPU devices in this process (see `cpu_devices`)."""
    from scoder_jax.train.trainer import model_overrides

    if devices < 1:
        raise ConfigError(f"--devices must be at least 1, got {devices}")
    tcfg = load_section(config, section, overrides)
    mcfg = model_config_for(tcfg.model).replace(**model_overrides(tcfg))
    mesh_shape = parse_mesh(mesh, devices, tcfg.mesh)
    est = formula(tcfg, mcfg, mesh_shape)
    mem = None
    if compile:
        devs = cpu_devices(devices)
        if devs is None:
            raise ConfigError(f"this process has fewer than {devices} CPU devices (XLA_FLAGS was set too late)")
        mem = xla_memory(tcfg, mcfg, mesh_shape, devs)
    return render(tcfg, mcfg, mesh_shape, est, mem, device_memory_gb, section)


@click.command()
@click.option("--config", "config_spec", required=True, help="A project YAML file or a preset in configs/.")
@click.option("--devices", type=int, required=True, help="Number of devices (simulated on CPU for XLA's analysis).")
@click.option("--device-memory-gb", type=float, default=None, help="Memory of one device, for the verdict.")
@click.option("--mesh", "mesh_spec", default=None,
              help="data,fsdp,tensor (one may be -1); default: the section's mesh.")
@click.option("--section", type=click.Choice(["synth", "student"]), default="student", show_default=True)
@click.option("--no-compile", is_flag=True, help="Formula only (skip XLA's analysis, which compiles the step).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of the table.")
@click.argument("overrides", nargs=-1)
def plan(config_spec, devices, device_memory_gb, mesh_spec, section, no_compile, as_json, overrides):
    """Per-device memory of a fine-tune (parameters, optimizer state, activations) on a mesh.

    OVERRIDES are dotted KEY=VALUE pairs on the project config (student.model=deepseek-coder-6.7b,
    student.lora=null, student.remat=full).
    """
    if not no_compile and devices > 0:
        cpu = cpu_devices(devices)
        if cpu is None:
            if os.environ.get(_REEXEC_ENV) == "1":
                raise ConfigError(f"could not get {devices} simulated CPU devices")
            argv = [sys.executable, "-m", "scoder_jax.plan", "--config", config_spec, "--devices", str(devices),
                    "--section", section]
            if device_memory_gb is not None:
                argv += ["--device-memory-gb", str(device_memory_gb)]
            if mesh_spec:
                argv += ["--mesh", mesh_spec]
            if as_json:
                argv.append("--json")
            argv += list(overrides)
            env = dict(os.environ, JAX_PLATFORMS="cpu", **{_REEXEC_ENV: "1"},
                       XLA_FLAGS=_with_device_count(os.environ.get("XLA_FLAGS", ""), devices))
            rc = subprocess.run(argv, env=env).returncode
            if rc:
                raise click.exceptions.Exit(rc)
            return
    text, data = make_plan(config_spec, devices, section=section, mesh=mesh_spec, device_memory_gb=device_memory_gb,
                           compile=not no_compile, overrides=overrides)
    click.echo(json.dumps(data) if as_json else text)


if __name__ == "__main__":
    from scoder_jax.cli import main as _main

    # run through the CLI's error handling (ScoderError -> "error: ..." and exit 2)
    _main(["plan", *sys.argv[1:]])

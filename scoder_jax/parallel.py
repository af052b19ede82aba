"""Device meshes and the one rule table from logical axis names to mesh axes.

Mesh axes: `data` (pure data parallel), `fsdp` (data parallel with parameters and optimizer
state sharded), `tensor` (heads / mlp / vocab split within a layer). Parameters name their
dimensions logically (see `scoder_jax.models.llama.param_specs`); `spec_for` turns those
names into a PartitionSpec, replicating any dimension the mesh axis does not divide.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from scoder_jax.errors import ConfigError

log = logging.getLogger(__name__)

MESH_AXES = ("data", "fsdp", "tensor")

# logical axis -> mesh axis (or tuple of mesh axes, or None for replicated)
LOGICAL_RULES: dict[str, Any] = {
    "batch": ("data", "fsdp"),
    "vocab": "tensor",
    "embed": "fsdp",
    "heads": "tensor",
    "kv_heads": "tensor",
    "mlp": "tensor",
    "head_dim": None,
    "layers": None,
    "norm": None,
    "lora_rank": None,
    "length": None,
}


def make_mesh(data: int = 1, fsdp: int = 1, tensor: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: all). A size of -1 takes the rest."""
    devices = list(devices if devices is not None else jax.devices())
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise ConfigError("mesh: at most one of data/fsdp/tensor may be -1")
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if len(devices) % known:
            raise ConfigError(f"mesh: {len(devices)} devices are not divisible by {known}")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ConfigError(
            f"mesh: data*fsdp*tensor = {'*'.join(map(str, sizes))} = {math.prod(sizes)} "
            f"does not match the {len(devices)} available devices"
        )
    return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)


def fit_mesh(rows: int, data: int = -1, fsdp: int = 1, tensor: int = 1,
             devices: Sequence[jax.Device] | None = None, what: str = "the batch") -> Mesh:
    """A mesh whose batch axes (data x fsdp) divide `rows`, the rows each step shards.

    With `data = -1` in a single process, a batch too small for every device runs on the
    largest number of them whose data axis divides it (a warning says how many), so a preset
    sized for one device also runs on eight. Otherwise (explicit sizes, several processes) a
    mismatch is an error naming both numbers."""
    devices = list(devices if devices is not None else jax.devices())
    mesh = make_mesh(data, fsdp, tensor, devices=devices)
    if rows % (mesh.shape["data"] * mesh.shape["fsdp"]) == 0:
        return mesh
    if data == -1 and jax.process_count() == 1 and rows % fsdp == 0:
        d = max(k for k in range(1, mesh.shape["data"] + 1) if (rows // fsdp) % k == 0)
        log.warning("%s has %d rows, not divisible by the %d devices' data x fsdp = %d: using %d of the %d devices",
                    what, rows, len(devices), mesh.shape["data"] * fsdp, d * fsdp * tensor, len(devices))
        return make_mesh(d, fsdp, tensor, devices=devices[:d * fsdp * tensor])
    raise ConfigError(f"{what} has {rows} rows, not divisible by the mesh's data*fsdp = "
                      f"{mesh.shape['data'] * mesh.shape['fsdp']}")


def single_device_mesh() -> Mesh:
    """This process's first device (with several processes, jax.devices()[0] may be another's)."""
    return make_mesh(1, 1, 1, devices=jax.local_devices()[:1])


def spec_for(logical_axes: Sequence[str | None], shape: Sequence[int], mesh: Mesh) -> P:
    """PartitionSpec for a value with these logical axes; non-dividing mesh axes are dropped."""
    used: set[str] = set()
    out = []
    for name, dim in zip(logical_axes, shape):
        rule = LOGICAL_RULES.get(name) if name is not None else None
        axes = (rule,) if isinstance(rule, str) else tuple(rule or ())
        keep = []
        size = 1
        for ax in axes:
            n = mesh.shape.get(ax, 1)
            if ax in used or n == 1:
                continue
            if dim % (size * n):
                continue
            keep.append(ax)
            size *= n
        used.update(keep)
        out.append(None if not keep else keep[0] if len(keep) == 1 else tuple(keep))
    return P(*out)


def sharding_for(logical_axes, shape, mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, spec_for(logical_axes, shape, mesh))


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Shards the leading (batch) axis over data and fsdp."""
    return NamedSharding(mesh, P(LOGICAL_RULES["batch"], *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def variable_shardings(state: Any, mesh: Mesh) -> Any:
    """NamedSharding for every leaf of an nnx.State whose variables carry `logical_axes`."""
    from flax import nnx

    def one(v):
        if isinstance(v, nnx.Variable):
            axes = v.get_metadata().get("logical_axes")
            shape = v.get_value().shape
            if axes is None:
                return v.replace(NamedSharding(mesh, P()))
            return v.replace(sharding_for(axes, shape, mesh))
        return NamedSharding(mesh, P())

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def host_local_array(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """Places a host numpy array onto `sharding`, each device getting only its slice."""
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def maybe_initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                                 process_id: int | None = None, timeout_s: int = 300) -> None:
    """`jax.distributed.initialize` from arguments or SCODER_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID
    (once per process; later calls do nothing). SCODER_HEARTBEAT_S (default 100) is how long the
    coordination service waits for a silent process before it declares it dead, which ends the
    waits of the others (`barrier`)."""
    from jax._src import distributed

    coordinator = coordinator or os.environ.get("SCODER_COORDINATOR")
    if not coordinator or distributed.global_state.client is not None:
        return
    num_processes = num_processes or int(os.environ["SCODER_NUM_PROCESSES"])
    process_id = process_id if process_id is not None else int(os.environ["SCODER_PROCESS_ID"])
    if os.environ.get("JAX_PLATFORMS", "cpu") in ("", "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id,
                               initialization_timeout=timeout_s,
                               heartbeat_timeout_seconds=int(os.environ.get("SCODER_HEARTBEAT_S", 100)))


_barriers: dict[str, int] = {}

# What a collective or the coordination service says when a peer process died.
_PEER_LOST = re.compile(r"Gloo|Connection (?:closed|reset) by peer|heartbeat|coordination service|UNAVAILABLE|"
                        r"DEADLINE_EXCEEDED", re.I)


def lost_peer(e: BaseException) -> bool:
    """Whether `e`, raised in a multi-process run, says another process is gone."""
    return jax.process_count() > 1 and (isinstance(e, jax.errors.JaxRuntimeError) or bool(_PEER_LOST.search(str(e))))


def exit_distributed(code: int) -> None:
    """Ends a multi-process run's process now, after an error was reported: the normal exit
    would wait at JAX's shutdown barrier for peers that are gone and abort with a C++ stack
    trace. Does nothing in a single-process run."""
    if "jax" in sys.modules and jax.distributed.is_initialized():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def is_primary() -> bool:
    """The process that writes files shared by all (process 0)."""
    return jax.process_index() == 0


def barrier(name: str, timeout_s: float | None = None) -> None:
    """Blocks until every process reaches the barrier `name` (a no-op with one process). Raises a
    ScoderError naming it when another process died (the coordination service's heartbeat) or did
    not arrive within `timeout_s` (SCODER_BARRIER_TIMEOUT_S, default one day), so no process waits
    forever on one that is gone."""
    if jax.process_count() == 1:
        return
    from jax._src import distributed

    from scoder_jax.errors import ScoderError

    _barriers[name] = _barriers.get(name, 0) + 1  # barrier ids are single-use: number the repeats
    timeout = float(timeout_s or os.environ.get("SCODER_BARRIER_TIMEOUT_S", 86400))
    try:
        distributed.global_state.client.wait_at_barrier(f"scoder/{name}/{_barriers[name]}", int(timeout * 1000))
    except Exception as e:  # noqa: BLE001 - the runtime raises its own error types
        why = first_line(e)
        raise ScoderError(f"process {jax.process_index()} of {jax.process_count()}: the other processes did not "
                          f"reach '{name}' ({why}); one of them failed or was killed: rerun every process with "
                          "the same command to resume") from None

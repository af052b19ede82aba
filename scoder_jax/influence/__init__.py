"""Optimizer-aware influence estimation (LESS): per-example gradients, projection, selection.

What other stages call:
  run_influence(candidates, targets, checkpoint_dirs, out_dir, InfluenceConfig(...)) -> summary dict
      writes OUT/scores.jsonl (every candidate's score), OUT/selected.jsonl (the kept ones),
      OUT/features/ckpt-<i>/ (fp16 memory-mapped features), OUT/summary.json
  per_example_grads, adam_direction (grads.py); Projector, ProjectionConfig (projection.py)
"""

from scoder_jax.influence.grads import FeatureFn, GradConfig, adam_direction, per_example_grads
from scoder_jax.influence.projection import ProjectionConfig, Projector, dense_reference
from scoder_jax.influence.select import InfluenceConfig, read_features, run_influence

__all__ = ["run_influence", "InfluenceConfig", "read_features", "per_example_grads", "adam_direction", "FeatureFn",
           "GradConfig", "Projector", "ProjectionConfig", "dense_reference"]

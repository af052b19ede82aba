"""scoder-jax: SCoder (iterative self-distillation of small code-data synthesizers) in JAX."""

__version__ = "0.1.0"

"""Benchmarks as the field reports them: HumanEval+/MBPP+ (EvalPlus), LiveCodeBench, the
results.json every evaluation writes and `scoder compare`'s table. HumanEval and sanitized
MBPP with their original tests live in `scoder_jax.evaluate`."""

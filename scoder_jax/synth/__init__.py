"""Synthesis: the OSS-Instruct-style prompt and its parser, the teacher client for the seed
set, and (later) multi-checkpoint sampling from the synthesizer.

Modules are imported by their users (`scoder_jax.synth.prompts`, `scoder_jax.synth.teacher`);
nothing heavy is imported here.
"""

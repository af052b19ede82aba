"""The LLaMA-family decoder, its configs, presets and checkpoint formats."""

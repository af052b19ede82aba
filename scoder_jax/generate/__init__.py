"""Prefill and decode with a KV cache; sampling."""

"""Scoring candidates: sandboxed execution (`execution`), multi-aspect judging, weight fitting."""

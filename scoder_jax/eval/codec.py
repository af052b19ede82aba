"""A JSON encoding of plain Python values that keeps their types (stdlib only).

Benchmark inputs and expected outputs cross the sandbox boundary as text: tuples must stay
tuples, sets sets, `inf` a float and `1j` a complex, or a solution sees other arguments than
the reference harness gives it. Pickle would keep them too, but unpickling what a sandboxed
program printed is running code it chose; this codec only ever builds these types:

    None, bool, int, str        as JSON
    float                       as JSON; inf/-inf/nan as {"$f": "inf"|"-inf"|"nan"}
    list                        as a JSON list
    tuple / set / frozenset     {"$t": [...]} / {"$s": [...]} / {"$fs": [...]}
    dict                        {"$d": [[key, value], ...]} (any encodable keys)
    complex                     {"$c": [real, imag]}
    bytes                       {"$b": "<base64>"}
    anything else (opaque=True) the plain value it equals (numpy scalars, int/float/str
                                subclasses), else {"$x": "<type name>"}, read back as an object
                                equal to nothing (EvalPlus compares such outputs by identity)

This file is also shipped as source text in front of the sandbox harnesses
(`_sandbox_evalplus.py`, `_sandbox_lcb.py`), so it imports nothing beyond the stdlib.
"""

import base64 as _base64
import math as _math


class CodecError(ValueError):
    """A value of a type the codec does not carry, or a malformed encoding."""


def encode_value(value, opaque=False):
    """A Python value -> JSON-able data (see the module docstring); raises CodecError, or with
    `opaque` writes other types as the plain value they equal, else as an opaque marker."""
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        if _math.isfinite(value):
            return value
        return {"$f": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if t is list:
        return [encode_value(v, opaque) for v in value]
    if t is tuple:
        return {"$t": [encode_value(v, opaque) for v in value]}
    if t is set:
        return {"$s": [encode_value(v, opaque) for v in value]}
    if t is frozenset:
        return {"$fs": [encode_value(v, opaque) for v in value]}
    if t is dict:
        return {"$d": [[encode_value(k, opaque), encode_value(v, opaque)] for k, v in value.items()]}
    if t is complex:
        return {"$c": [encode_value(value.real), encode_value(value.imag)]}
    if t is bytes:
        return {"$b": _base64.b64encode(value).decode("ascii")}
    if opaque:
        return _near_value(value)
    raise CodecError(f"cannot encode a value of type {t.__name__}")


def _near_value(value):
    """A value of another type as the plain value it equals (numpy scalars, int/float/str
    subclasses), else an opaque marker that decodes to an object equal to nothing."""
    import numbers as _numbers

    if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return bool(value)
    if isinstance(value, _numbers.Integral):
        return int(value)
    if isinstance(value, float) or (hasattr(value, "dtype") and isinstance(value, _numbers.Real)):
        return encode_value(float(value))
    if isinstance(value, str):
        return str(value)
    return {"$x": type(value).__name__}


class Opaque:
    """A reference output the codec cannot carry (e.g. a generator): equal to nothing."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<{self.type_name} value>"


_FLOATS = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def decode_value(data):
    """The inverse of `encode_value`; raises CodecError on anything it did not write."""
    t = type(data)
    if data is None or t is bool or t is int or t is str or t is float:
        return data
    if t is list:
        return [decode_value(v) for v in data]
    if t is dict and len(data) == 1:
        (tag, body), = data.items()
        if tag == "$f" and body in _FLOATS:
            return _FLOATS[body]
        if tag == "$t" and type(body) is list:
            return tuple(decode_value(v) for v in body)
        if tag == "$s" and type(body) is list:
            return {decode_value(v) for v in body}
        if tag == "$fs" and type(body) is list:
            return frozenset(decode_value(v) for v in body)
        if tag == "$d" and type(body) is list and all(type(kv) is list and len(kv) == 2 for kv in body):
            return {decode_value(k): decode_value(v) for k, v in body}
        if tag == "$c" and type(body) is list and len(body) == 2:
            return complex(decode_value(body[0]), decode_value(body[1]))
        if tag == "$b" and type(body) is str:
            return _base64.b64decode(body.encode("ascii"), validate=True)
        if tag == "$x" and type(body) is str:
            return Opaque(body)
    raise CodecError(f"not an encoded value: {str(data)[:80]}")

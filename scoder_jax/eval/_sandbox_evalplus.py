"""Sandbox side of HumanEval+/MBPP+ (EvalPlus) checking. Not imported on the host: its text,
after `codec.py`'s, is the program the sandbox runs; the job arrives as one JSON line on stdin.

Modes (the job's "mode"):

  truth   run the canonical solution on every input, in place, timing each call (EvalPlus's
          ground truth); prints {"outputs": <encoded list>, "times": [seconds]}, or
          {"error": ..., "index": i} when the reference itself fails.
  check   EvalPlus's differential test of one sample on one input list (base or plus): the
          sample is executed in a fresh namespace with stdio swallowed and destructive os/shutil
          functions removed; each input runs under its own SIGALRM time limit; outputs are
          compared exactly, with the task's atol for floats (1e-6 when the expected value is
          a float and atol is 0) and with EvalPlus's special oracles; the first failure stops
          the run (EvalPlus's default, fast_check). One line per finished input
          ("<nonce> input <i> <0|1>"), then "<nonce> result {"stat": "pass"|"fail"}".
          A run killed before its result line is EvalPlus's "timeout".

Protocol lines go to a private copy of the original stdout; the program's own fd 1 points at
/dev/null, so nothing a solution prints can look like a result.
"""

import contextlib
import copy
import io
import json
import math
import os
import signal
import sys
import tempfile
import time

# Special oracles (EvalPlus, `eval/_special_oracle.py`): task entry points whose outputs are
# compared otherwise than by equality.
MBPP_OUTPUT_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
MBPP_OUTPUT_SET_EQ = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                      "larg_nnum", "intersection_array", "find_dissimilar", "Diff")


def _pyramid_surface(base_edge, height):  # Mbpp/581: height is the pyramid's, not the faces'
    slant = math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 2 * base_edge * slant)


def _digit_distance(a, b):  # Mbpp/558: numbers zero-padded to the same length
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width)))


def _poly_at(xs, x):  # HumanEval/32: the polynomial's value at the returned root
    return sum(c * math.pow(x, i) for i, c in enumerate(xs))


class TimeoutException(Exception):
    pass


class _WriteOnly(io.StringIO):
    def read(self, *args, **kwargs):
        raise IOError

    def readline(self, *args, **kwargs):
        raise IOError

    def readlines(self, *args, **kwargs):
        raise IOError

    def readable(self, *args, **kwargs):
        return False


@contextlib.contextmanager
def _swallow_io():
    sink = _WriteOnly()
    saved = sys.stdin
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        sys.stdin = sink
        try:
            yield
        finally:
            sys.stdin = saved


@contextlib.contextmanager
def _time_limit(seconds):
    def on_alarm(signum, frame):
        raise TimeoutException("Timed out!")

    signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _guard():
    """What EvalPlus's reliability_guard removes (memory is the sandbox's rlimit)."""
    import builtins
    import faulthandler
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
                 "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    builtins.open = None
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def _is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


def _truth(job, emit):
    code, entry = job["code"], job["entry_point"]
    out = {}
    for part in ("base", "plus"):
        namespace = {}
        exec(code, namespace)
        fn = namespace[entry]
        outputs, times = [], []
        for i, inp in enumerate(decode_value(job[part])):  # noqa: F821 (codec.py precedes this text)
            inp = copy.deepcopy(inp)
            start = time.time()
            try:
                value = fn(*inp)
            except BaseException as e:
                emit("result", {"error": f"{part}_input[{i}]: {type(e).__name__}: {e}"[:500]})
                return
            times.append(time.time() - start)
            outputs.append(value)
        if job.get("output_not_none"):
            outputs = [o is not None for o in outputs]
        out[part] = encode_value(outputs, opaque=True)  # noqa: F821
        out[part + "_time"] = times
    emit("result", out)


def _check(job, emit):
    dataset, entry, atol = job["dataset"], job["entry_point"], job["atol"]
    inputs, expected = decode_value(job["inputs"]), decode_value(job["expected"])  # noqa: F821
    limits, fast_check = job["time_limits"], job.get("fast_check", True)
    stat = "fail"
    if atol != 0 or any(_is_floats(e) for e in expected):
        import numpy  # noqa: F401  (EvalPlus has it loaded before its guard; importing it after fails)
    with tempfile.TemporaryDirectory() as workdir:
        os.chdir(workdir)
        import shutil

        rmtree, rmdir, chdir = shutil.rmtree, os.rmdir, os.chdir  # the temporary directory's clean-up needs them
        _guard()
        namespace = {}
        try:
            with _swallow_io():
                exec(job["code"], namespace)
                fn = namespace[entry]
            for i, inp in enumerate(inputs):
                try:
                    with _time_limit(limits[i]):
                        with _swallow_io():
                            out = fn(*inp)
                    exp = expected[i]
                    exact = out == exp
                    if dataset == "mbpp":
                        if entry == "are_equivalent":  # Mbpp/164
                            exact = True
                        elif entry == "sum_div":  # Mbpp/295
                            exact = exact or out == 0
                        elif entry == "surface_Area":  # Mbpp/581
                            exact = exact or abs(out - _pyramid_surface(*inp)) <= atol
                        elif entry == "digit_distance_nums":  # Mbpp/558
                            exact = exact or out == _digit_distance(*inp)
                        elif entry in MBPP_OUTPUT_SET_EQ:
                            exact = set(out) == set(exp)
                        elif entry in MBPP_OUTPUT_NOT_NONE:
                            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
                    if dataset == "humaneval" and entry == "find_zero":
                        assert abs(_poly_at(*inp, out)) <= atol
                        emit("input", i, 1)
                        continue
                    if atol == 0 and _is_floats(exp):
                        atol = 1e-6  # as EvalPlus: kept for the task's later inputs too
                    if not exact and atol != 0:
                        import numpy

                        assert type(out) is type(exp)
                        if isinstance(exp, (list, tuple)):
                            assert len(out) == len(exp)
                        assert numpy.allclose(out, exp, rtol=1e-07, atol=atol)
                    else:
                        assert exact
                except BaseException:
                    emit("input", i, 0)
                    if fast_check:
                        raise
                    continue
                emit("input", i, 1)
            stat = "pass"
        except BaseException:
            stat = "fail"
        emit("result", {"stat": stat})
        shutil.rmtree, os.rmdir, os.chdir = rmtree, rmdir, chdir


def main():
    job = json.loads(sys.stdin.readline())
    proto = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    nonce, write = job["nonce"], os.write

    def emit(kind, *fields):
        text = " ".join(json.dumps(f, separators=(",", ":")) if isinstance(f, dict) else str(f) for f in fields)
        data = f"{nonce} {kind} {text}\n".encode()
        while data:
            data = data[write(proto, data):]

    (_truth if job["mode"] == "truth" else _check)(job, emit)
    os._exit(0)


main()

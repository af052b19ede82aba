"""Sandbox side of LiveCodeBench grading. Not imported on the host: its text is the program
the sandbox runs; the job arrives as one JSON line on stdin:

    {"code", "fn_name" (null: stdin problem), "inputs": [str], "outputs": [str], "timeout": int, "nonce"}

It grades as lcb_runner's `run_test` does:

  functional  LiveCodeBench's import prelude + the code is executed as a module; the method
              `fn_name` of `Solution()` (when the code mentions `class Solution`), else the module
              function, is called with each input line parsed as JSON; a tuple result counts as a
              list; the result must equal the JSON-parsed output.
  stdin       a trailing `if __name__ == '__main__':` block is inlined, everything but the imports
              is wrapped in a function, which runs once per test with sys.stdin replaced by a
              mock (read(), readline(), readlines() -> split lines, .buffer, open() mocked too)
              and stdout captured; output and expected are stripped, split on newlines and each
              line stripped; line counts must match and each line must be equal, or equal as a
              list of Decimals.

Each test runs under `signal.alarm(timeout)`; the first failure ends the run. Results per
test: True / False (wrong answer, functional) / -2 (wrong answer, stdin) / -3 (time limit) /
-4 (runtime or harness error); metadata as lcb_runner writes it. The result goes to a private
copy of the original stdout as "<nonce> result {...}"; the program's fd 1 and 2 are /dev/null.
"""

import ast
import json
import os
import signal
import time
import sys
from decimal import Decimal
from io import StringIO
from types import ModuleType
from unittest.mock import mock_open, patch

# LiveCodeBench's prelude (testing_util.import_string): these star-imports then module imports.
_PRELUDE_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                    "statistics", "itertools", "functools", "operator", "io", "sys", "json")
IMPORT_PRELUDE = (
    "".join(f"from {m} import *\n" for m in (*_PRELUDE_MODULES, "builtins", "typing"))
    + "".join(f"import {m}\n" for m in _PRELUDE_MODULES)
    + "sys.setrecursionlimit(50000)\n"
)


class TimeoutException(Exception):
    pass


def _on_alarm(signum, frame):
    print("timeout occured: alarm went off")
    raise TimeoutException


def truncate(s, length=300):
    s = s if isinstance(s, str) else str(s)
    if len(s) <= length:
        return s
    return s[: length // 2] + "...(truncated) ..." + s[-length // 2:]


class _Capture(list):
    def __enter__(self):
        self._stdout = sys.stdout
        sys.stdout = self._buf = StringIO()
        self._buf.close = lambda x: 1  # as lcb_runner: closing the capture is a no-op (with an argument)
        return self

    def __exit__(self, *exc):
        self.append(self._buf.getvalue())
        del self._buf
        sys.stdout = self._stdout


class _MockBuffer:
    def __init__(self, text):
        self.data = text.encode("utf-8")

    def read(self, *args):
        return self.data

    def readline(self, *args):
        return self.data.split(b"\n")[0] + b"\n"


class _MockStdin:
    """sys.stdin during a stdin test: no __iter__ (iterating it fails, as in lcb_runner)."""

    def __init__(self, text):
        self.inputs = text
        self._stringio = StringIO(text)
        self.buffer = _MockBuffer(text)

    def read(self, *args):
        return self.inputs

    def readline(self, *args):
        return self._stringio.readline(*args)

    def readlines(self, *args):
        return self.inputs.split("\n")

    def __getattr__(self, name):
        return getattr(self._stringio, name)


def _inline_main_block(code):
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            code = ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:
        pass
    return code


def _wrap_in_function(code):
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        rest = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        fn = ast.FunctionDef(name="wrapped_function",
                             args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                             body=rest, decorator_list=[], lineno=-1)
        return IMPORT_PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(fn)
    except Exception:
        return code


def _run_with_stdin(method, text):
    lines = iter(text.split("\n"))
    # The same patches, entered in the same order, as lcb_runner's decorators (the three on
    # sys.stdin's methods land on the real stdin, entered before sys.stdin is replaced).
    patches = [patch("sys.stdin.read", lambda *a: text), patch("sys.stdin.readlines", lambda *a: text.split("\n")),
               patch("sys.stdin.readline", lambda *a: next(lines)), patch("sys.stdin", _MockStdin(text)),
               patch("builtins.open", mock_open(read_data=text))]
    for p in patches:
        p.start()
    try:
        return method()
    except SystemExit:
        pass
    finally:
        for p in reversed(patches):
            p.stop()


def _compile(code, timeout):
    signal.alarm(timeout)
    try:
        module = ModuleType("tmp_sol", "")
        exec(code, module.__dict__)
        compiled = module.Solution() if "class Solution" in code else module
        assert compiled is not None
    finally:
        signal.alarm(0)
    return compiled


def _to_decimals(line):
    try:
        return True, [Decimal(x) for x in line.split()]
    except Exception:
        return False, []


def _stripped_lines(text):
    return [line.strip() for line in text.strip().split("\n")]


class _NoMethod(Exception):
    pass


def grade_functional(code, inputs, outputs, fn_name, timeout):
    compiled = _compile(IMPORT_PRELUDE + "\n\n" + code, timeout)
    if not hasattr(compiled, fn_name):
        where = "Solution" if "class Solution" in code else "the program"
        raise _NoMethod(f"{where} has no method {fn_name!r} (the problem's metadata func_name)")
    method = getattr(compiled, fn_name)
    args_per_test = [[json.loads(line) for line in inp.split("\n")] for inp in inputs]
    expected = [json.loads(out) for out in outputs]
    results, total = [], 0.0

    for args, exp in zip(args_per_test, expected):
        signal.alarm(timeout)
        try:
            start = time.time()
            got = method(*args)
            total += time.time() - start
            signal.alarm(0)
            if isinstance(got, tuple):
                got = list(got)
            ok = got == exp
            results.append(ok)
            if not ok:
                return results, {"output": truncate(got), "inputs": truncate(args), "expected": truncate(exp),
                                 "error_code": -2, "error_message": "Wrong Answer"}
        except Exception as e:
            signal.alarm(0)
            code_, msg = (-3, "Time Limit Exceeded") if "timeoutexception" in repr(e).lower() else (-4, "Runtime Error")
            results.append(code_)
            return results, {"error": repr(e), "error_code": code_, "error_message": msg,
                             "inputs": truncate(args), "expected": truncate(exp)}
        finally:
            signal.alarm(0)
    return results, {"execution time": total}


def grade_stdin(code, inputs, outputs, timeout):
    code = _wrap_in_function(_inline_main_block(code))
    compiled = _compile(code, timeout)
    method = getattr(compiled, "wrapped_function", None)
    if method is None:
        raise _NoMethod("the program defines no wrapped_function")
    results, total = [], 0.0

    for inp, exp in zip(inputs, outputs):
        signal.alarm(timeout)
        with _Capture() as captured:
            try:
                start = time.time()
                _run_with_stdin(method, inp)
                total += time.time() - start
                signal.alarm(0)
            except Exception as e:
                signal.alarm(0)
                code_, msg = ((-3, "Time Limit Exceeded") if "timeoutexception" in repr(e).lower()
                              else (-4, "Runtime Error"))
                results.append(code_)
                return results, {"error": repr(e), "error_code": code_, "error_message": msg,
                                 "inputs": truncate(inp), "expected": truncate(exp)}
            finally:
                signal.alarm(0)
        got = captured[0]
        got_lines, exp_lines = _stripped_lines(got), _stripped_lines(exp)
        wrong = {"output": truncate(got), "inputs": truncate(inp), "expected": truncate(exp), "error_code": -2}
        if len(got_lines) != len(exp_lines):
            results.append(-2)
            wrong["error_message"] = "Wrong answer: mismatched output length"
            return results, wrong
        for i, (g, x) in enumerate(zip(got_lines, exp_lines)):
            wrong["error_message"] = f"Wrong answer at output_line_idx={i}: {truncate(g)} != {truncate(x)}"
            if g == x:
                continue
            ok_g, dg = _to_decimals(g)
            ok_x, dx = _to_decimals(x)
            if ok_g and ok_x and dg == dx:
                continue
            results.append(-2)
            return results, wrong
        results.append(True)
    return results, {"execution time": total}


def _guard():
    """What lcb_runner's reliability_guard removes (no memory cap there; here the sandbox's)."""
    import builtins
    import faulthandler
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
                 "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def main():
    job = json.loads(sys.stdin.readline())
    proto, write = os.dup(1), os.write
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.set_int_max_str_digits(50000)
    signal.signal(signal.SIGALRM, _on_alarm)
    _guard()
    timeout = int(job["timeout"])
    try:
        if job.get("fn_name") is None:
            results, meta = grade_stdin(job["code"], job["inputs"], job["outputs"], timeout)
        else:
            results, meta = grade_functional(job["code"], job["inputs"], job["outputs"], job["fn_name"], timeout)
    except BaseException as e:  # lcb_runner: any error outside a test is -4 "Error during testing"
        results, meta = [-4], {"error_code": -4, "error_message": f"Error during testing: {e}"}
    finally:
        signal.alarm(0)
    data = f"{job['nonce']} result {json.dumps({'results': results, 'metadata': meta})}\n".encode()
    while data:
        data = data[write(proto, data):]
    os._exit(0)


main()

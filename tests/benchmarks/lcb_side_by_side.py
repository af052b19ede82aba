"""Side by side with LiveCodeBench's own harness: rows written here in the released
code_generation_lite layout (private tests base64(zlib(pickle(json)))), decoded by lcb_runner's
`CodeGenerationProblem` and graded by its `codegen_metrics` (the function its custom evaluator
calls), then by `scoder eval --benchmark livecodebench`; every sample's per-test results and
verdict must agree, and so must the prompts (`get_generic_question_template_answer`).

Needs a checkout of LiveCodeBench (github.com/LiveCodeBench/LiveCodeBench; lcb_runner is not on
PyPI) and numpy, tqdm and datasets (imported by lcb_runner, not used to download anything):

    python tests/benchmarks/lcb_side_by_side.py --lcb-src /path/to/LiveCodeBench

Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scoder_jax.eval import livecodebench as lcb


def _t(i, o, kind):
    return {"input": i, "output": o, "testtype": kind}


def _row(qid, date, difficulty, public, private, func=None, starter=""):
    return {"question_title": qid, "question_content": f"Solve {qid}.", "platform": "leetcode" if func else "atcoder",
            "question_id": qid, "contest_id": "c", "contest_date": date, "starter_code": starter,
            "difficulty": difficulty, "public_test_cases": json.dumps(public),
            "private_test_cases": lcb.encode_private_tests(private),
            "metadata": json.dumps({"func_name": func} if func else {})}


ROWS = [
    _row("abc1_a", "2024-08-10T00:00:00", "easy", [_t("1 2\n", "3\n", "stdin")],
         [_t("5 7\n", "12\n", "stdin"), _t("0 0\n", "0", "stdin")]),
    _row("abc1_b", "2024-08-11T00:00:00", "hard", [_t("3\n", "1.5\n", "stdin")], [_t("1\n", "0.5\n", "stdin"),
                                                                                    _t("4\n", "2.0\n", "stdin")]),
    _row("3100", "2024-09-15T00:00:00", "medium", [_t("[1, 2]\n3", "[1, 2, 3]", "functional")],
         [_t("[]\n0", "[0]", "functional")], func="appendIt",
         starter="class Solution:\n    def appendIt(self, nums: List[int], x: int) -> List[int]:\n        "),
]
SAMPLES = {
    "abc1_a": ["a, b = map(int, input().split())\nprint(a + b)\n",
               "a, b = map(int, input().split())\nprint(a + b, '  ')\n\n",
               "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
               "import sys\nfor l in sys.stdin:\n    print(l)\n",
               "print(3)\n", "while True:\n    pass\n",
               "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n"
               "\nif __name__ == '__main__':\n    main()\n",
               "import sys\nprint(sum(map(int, sys.stdin.readline().split())))\n",
               "x = input(\n", "exit(0)\n", "print(open(0).read().split()[0])\n",
               "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))\n"],
    "abc1_b": ["n = int(input())\nprint(n / 2)\n", "print('1.50')\n", "n = int(input())\nprint(f'{n / 2:.3f}')\n",
               "n = int(input())\nprint(n // 2)\n"],
    "3100": ["class Solution:\n    def appendIt(self, nums, x):\n        return nums + [x]\n",
             "class Solution:\n    def appendIt(self, nums, x):\n        return tuple(nums + [x])\n",
             "class Solution:\n    def append_it(self, nums, x):\n        return nums + [x]\n",
             "class Solution:\n    def appendIt(self, nums, x):\n        raise ValueError()\n",
             "def appendIt(nums, x):\n    return nums + [x]\n"],
}
THEIRS = r"""
import json, sys, types
sys.path.insert(0, sys.argv[1])
if "anthropic" not in sys.modules:  # lcb_runner.prompts imports it for Claude's prompt constants only
    try:
        import anthropic
    except ImportError:
        sys.modules["anthropic"] = types.SimpleNamespace(HUMAN_PROMPT="\n\nHuman:", AI_PROMPT="\n\nAssistant:")
from lcb_runner.benchmarks.code_generation import CodeGenerationProblem
from lcb_runner.evaluation.compute_code_generation_metrics import codegen_metrics
from lcb_runner.prompts.code_generation import get_generic_question_template_answer
rows, samples, timeout = json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), int(sys.argv[4])
problems = sorted((CodeGenerationProblem(**r) for r in rows), key=lambda p: p.question_id)
out = {}
for p in problems:  # one call per problem: codegen_metrics wants as many samples for every problem
    metrics, results, meta = codegen_metrics([p.get_evaluation_sample()], [samples[p.question_id]], k_list=[1],
                                             num_process_evaluate=2, timeout=timeout)
    out[p.question_id] = {"results": results[0], "prompt": get_generic_question_template_answer(p)}
json.dump(out, open(sys.argv[5], "w"))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lcb-src", required=True, help="a LiveCodeBench checkout (the folder holding lcb_runner/)")
    ap.add_argument("--timeout", type=int, default=2)
    args = ap.parse_args()
    differ = 0
    with tempfile.TemporaryDirectory(prefix="lcb-sbs-") as tmp:
        work = Path(tmp)
        rows = work / "rows.json"
        rows.write_text(json.dumps(ROWS))
        samples = work / "samples.json"
        samples.write_text(json.dumps(SAMPLES))
        t0 = time.time()
        # lcb_runner's prompt module reads its few-shot files relative to the working directory
        subprocess.run([sys.executable, "-c", THEIRS, str(Path(args.lcb_src).resolve()), str(rows), str(samples),
                        str(args.timeout), str(work / "theirs.json")], check=True, cwd=args.lcb_src,
                       stdout=subprocess.DEVNULL)
        t1 = time.time()
        problems_file = work / "test.jsonl"
        problems_file.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        custom = work / "custom.json"
        custom.write_text(json.dumps([{"question_id": q, "code_list": c} for q, c in SAMPLES.items()]))
        subprocess.run([sys.executable, "-m", "scoder_jax.cli", "eval", "-b", "livecodebench", "--problems",
                        str(problems_file), "--samples", str(custom), "--out", str(work / "ours"), "--timeout",
                        str(args.timeout), "--workers", "2"], check=True, stdout=subprocess.DEVNULL)
        t2 = time.time()
        theirs = json.loads((work / "theirs.json").read_text())
        ours = {r["task_id"]: r for r in map(json.loads, (work / "ours" / "results.jsonl").read_text().splitlines())}
        problems, _ = lcb.load_lcb(problems_file)
        for p in problems:
            q = p.question_id
            same_prompt = theirs[q]["prompt"] == lcb.user_prompt(p)
            differ += not same_prompt
            print(f"{q:8s} prompt {'equal' if same_prompt else 'DIFFERS'}")
            for i, (a, b) in enumerate(zip(theirs[q]["results"], ours[q]["samples"])):
                va, vb = (all(x > 0 for x in a), a), (b["passed"], b["results"])
                differ += va != vb
                print(f"{q:8s} #{i:<2d} lcb_runner={va}  scoder={vb}  {'ok' if va == vb else 'DIFFERS'}")
        n = sum(len(v) for v in SAMPLES.values())
        print(f"{n} samples; lcb_runner {t1 - t0:.1f} s, scoder {t2 - t1:.1f} s")
    print("all verdicts equal" if not differ else f"{differ} differences")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

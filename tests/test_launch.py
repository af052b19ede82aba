"""The launchers: TPU pod and SLURM scripts in --dry-run (and a fake SLURM job), the Colab notebook."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TPU = ROOT / "launch" / "tpu_pod.sh"
GPU = ROOT / "launch" / "gpu_slurm.sh"


def sh(script, *args, env=None):
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def commands(out: str) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in out.splitlines() if line.startswith("+ ")]


def option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


@pytest.mark.parametrize("script", [TPU, GPU])
def test_syntax(script):
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_tpu_pod_dry_run():
    r = sh(TPU, "--name", "pod-a", "--zone", "us-central2-b", "--accelerator-type", "v4-32", "--config", "demo",
           "--bucket", "gs://bkt/", "--repo", "https://example.org/scoder-jax.git", "--project", "proj",
           "--dry-run", "student.lora=null", "--", "synth.optim.lr=1e-4")
    assert r.returncode == 0, r.stderr
    cmds = commands(r.stdout)
    gcloud = [c for c in cmds if c[:4] == ["gcloud", "compute", "tpus", "tpu-vm"]]
    assert all(option(c, "--zone") == "us-central2-b" and option(c, "--project") == "proj" for c in gcloud)
    assert all(c[5] == "pod-a" or c[5].startswith("pod-a:") or c[6].startswith("pod-a:") for c in gcloud)
    verbs = [c[4] for c in gcloud]
    assert verbs[:2] == ["describe", "create"]  # reuse, else create
    create = gcloud[1]
    assert option(create, "--accelerator-type") == "v4-32" and option(create, "--version")
    ssh = [c for c in gcloud if c[4] == "ssh"]
    assert len(ssh) == 2 and all("--worker=all" in c for c in ssh)  # install, then run: on every worker
    install, run = option(ssh[0], "--command"), option(ssh[1], "--command")
    assert "git clone -q https://example.org/scoder-jax.git" in install and "pip install" in install
    # the gs:// run directory through each worker's gcsfuse mount of the bucket
    assert "gcsfuse" in install and "gcsfuse -o rw --implicit-dirs bkt ~/gcs/bkt" in run
    assert run.index("gcsfuse") < run.index("scoder iterate")
    assert ("scoder iterate --config demo --run-dir ~/gcs/bkt/runs/pod-a --no-progress "
            "student.lora=null synth.optim.lr=1e-4") in run
    # v4-32 = 32 TensorCores = 4 hosts: explicit multi-host start-up, one log per worker, gathered
    assert "SCODER_NUM_PROCESSES=4" in run and "SCODER_COORDINATOR=WORKER0_IP:8476" in run
    assert "SCODER_PROCESS_ID=$WID" in run and "agent-worker-number" in run
    assert "> ~/scoder-logs/worker-$WID.log 2>&1" in run and "gsutil -q cp ~/scoder-logs/worker-$WID.log" in run
    scp = [c for c in gcloud if c[4] == "scp"]
    assert [option(c, "--zone") for c in scp] == ["us-central2-b"] * 4
    assert [[a for a in c if a.startswith("--worker=")] for c in scp] == [[f"--worker={i}"] for i in range(4)]
    assert [c[5] for c in scp] == [f"pod-a:scoder-logs/worker-{i}.log" for i in range(4)]


def test_tpu_pod_local_repo_single_host():
    r = sh(TPU, "--name", "v5", "--zone", "z1", "--accelerator-type", "v5litepod-8", "--config", "smoke",
           "--run-dir", "gs://b/runs/x", "--repo", str(ROOT), "--dry-run")
    assert r.returncode == 0, r.stderr
    cmds = commands(r.stdout)
    assert ["git", "-C", str(ROOT), "archive"] == cmds[2][:4]
    scp_all = [c for c in cmds if c[4:5] == ["scp"] and "--worker=all" in c]
    assert scp_all, "the local checkout is copied to every worker"
    run = option([c for c in cmds if c[4:5] == ["ssh"]][-1], "--command")
    assert "--run-dir ~/gcs/b/runs/x" in run and "SCODER_COORDINATOR" not in run  # one host: no start-up needed
    assert option(cmds[1], "--version") == "v2-alpha-tpuv5-lite"


@pytest.mark.parametrize("args,message", [
    ([], "--name is required"),
    (["--name", "a", "--zone", "z", "--config", "demo", "--bucket", "b"], "--accelerator-type is required"),
    (["--name", "a", "--zone", "z", "--accelerator-type", "v4-8", "--config", "demo"], "--run-dir"),
    (["--name", "a", "--zone", "z", "--accelerator-type", "x9-8", "--config", "demo", "--bucket", "b"], "unknown form"),
    (["--name", "--zone", "z"], "--name needs a value"),
    (["--bogus"], "unknown option --bogus"),
])
def test_tpu_pod_bad_args(args, message):
    r = sh(TPU, *args, "--dry-run")
    assert r.returncode == 2 and message in r.stderr and not r.stdout


def test_gpu_slurm_dry_run_and_fake_job(tmp_path):
    logs = tmp_path / "logs"
    r = sh(GPU, "--config", "demo", "--run-dir", "/shared/runs/r1", "--nodes", "2", "--gpus-per-node", "4",
           "--per-gpu", "--partition", "gpu", "--log-dir", str(logs), "--job-name", "scj", "--port", "23456",
           "--dry-run", "student.lora=null")
    assert r.returncode == 0, r.stderr
    assert not logs.exists()  # a dry run writes nothing
    text = r.stdout
    body = text.split("# submit:")[0].split("\n", 1)[1]
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --partition=gpu", "#SBATCH --job-name=scj"):
        assert line in body
    assert commands(text)[-1] == ["sbatch", str(logs / "scj.sbatch")]
    # run the generated script as SLURM would: a fake scontrol and srun (8 tasks), a fake scoder
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "scontrol").write_text("#!/bin/bash\nprintf 'node-a\\nnode-b\\n'\n")
    (bin_ / "srun").write_text('#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\n'
                               'for i in $(seq 0 7); do SLURM_PROCID=$i SLURM_LOCALID=$((i % 4)) "$@"; done\n')
    (bin_ / "scoder").write_text('#!/bin/bash\necho "$SCODER_COORDINATOR $SCODER_NUM_PROCESSES $SCODER_PROCESS_ID '
                                 '$CUDA_VISIBLE_DEVICES | $*"\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    script = body.replace(str(ROOT / ".venv" / "bin" / "scoder"), "scoder")
    (tmp_path / "job.sh").write_text(script)
    env = {"PATH": f"{bin_}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node-[a-b]", "SLURM_NTASKS": "8"}
    out = subprocess.run(["bash", str(tmp_path / "job.sh")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == [f"node-a:23456 8 {i} {i % 4} | iterate --config demo --run-dir /shared/runs/r1 --no-progress "
                     "student.lora=null" for i in range(8)]


def test_gpu_local_and_bad_args():
    r = sh(GPU, "--config", "smoke", "--run-dir", "runs/x", "--local", "--dry-run", "eval.limit=1")
    assert r.returncode == 0, r.stderr
    (cmd,) = [line for line in r.stdout.splitlines() if line.startswith("+ ")]
    assert cmd.endswith("scoder iterate --config smoke --run-dir runs/x --no-progress eval.limit=1")
    assert "-u SCODER_COORDINATOR" in cmd and "srun" not in r.stdout and "sbatch" not in r.stdout
    for args, message in ((["--run-dir", "r"], "--config is required"), (["--config", "demo"], "--run-dir is required"),
                          (["--config", "demo", "--run-dir", "r", "--nodes", "two"],
                           "--nodes must be a positive integer"),
                          (["--config", "demo", "--run-dir", "r", "stray"], "unexpected argument 'stray'")):
        r = sh(GPU, *args, "--dry-run")
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)


def test_colab_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True)
    nb = nbformat.read(ROOT / "launch" / "colab_tpu.ipynb", as_version=4)
    env = {"SCODER_NOTEBOOK_UNTIL": "seed", "SCODER_NOTEBOOK_RUN_DIR": str(tmp_path / "run"), "JAX_PLATFORMS": "cpu"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code"]
    assert all(not any(o.get("output_type") == "error" for o in c.outputs) for c in nb.cells if c.cell_type == "code")
    assert "already installed" in texts[0]
    assert "preset smoke" in texts[1]  # CPU runtime: the smoke preset
    assert "--until seed" in texts[2]
    assert "2/2 stages done: pool, seed" in texts[3] and "no report yet" in texts[3]
    assert (tmp_path / "run" / "seed").is_dir() and (tmp_path / "run" / "manifest.json").is_file()

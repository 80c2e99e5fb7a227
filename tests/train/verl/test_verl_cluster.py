"""`vlmrl train --address` on a real two-node Ray cluster on this machine, through `ray job submit`.

A head and a second node (each its own `ray start`, ports, temp dir, CPUs and one fake GPU slot)
run the 2-node preset (`trainer.nnodes=2`, one training rank per node) on the CPU platform, with the
tiny model. The second node's own environment puts a broken `vlmrl` first on its path: the job works
only because its runtime env ships the submitter's vlmrl and veRL imports the reward by module name.

veRL starts twice in all:
- run 1 saves every step; once step 1's checkpoint is there, the second node's raylet is killed: the
  job fails (or, when veRL keeps waiting on the dead node's rollouts, vlmrl stops it), `vlmrl train`
  names the lost node, the checkpoint stays;
- a fresh second node joins and the same command is submitted again: it resumes from the last
  checkpoint and finishes; both nodes ran training workers (Ray's state API); checkpoints, metrics
  and the runtime env file sit under `trainer.output_dir`; `ray job logs <id>` shows the steps;
- run 3 (no veRL): a job that never notices a lost node, through vlmrl's launcher; the healthy node's
  raylet is killed while it runs, and vlmrl stops the job, naming the node.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ray_cluster import LocalCluster

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
STEPS = 4
SRC = str(ROOT / "src")


def _rows(path: Path) -> None:
    import random

    from vlmrl.data.build import build_from_examples
    from vlmrl.data.example import make_example
    from vlmrl.demo.synthetic import draw_shapes

    rng = random.Random(0)
    examples = []
    for i in range(8):
        if i % 2:
            picture = draw_shapes({"circle": 2, "square": 1, "triangle": 0}, rng)
            examples.append(
                make_example("demo/count", i, "train", "<image>\nHow many circles?", ["2"], [picture])
            )
        else:
            examples.append(make_example("demo/arithmetic", i, "train", f"What is {i} + 1?", [str(i + 1)]))
    build_from_examples(examples, path, with_images=True, mixed_policy="native")


def _submitter_env() -> dict[str, str]:
    """The submitting machine's environment: this checkout's vlmrl (and, set by the fixture, the
    cluster's auth token)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _foreign_node_env(root: Path) -> dict[str, str]:
    """The second node's environment: its own path, where `vlmrl` is a copy that refuses to import."""
    site = root / "node2_site" / "vlmrl"
    site.mkdir(parents=True, exist_ok=True)
    (site / "__init__.py").write_text(
        "raise ImportError('the node-local vlmrl was imported: the job must use the vlmrl its runtime env ships')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(site.parent)
    return env


def _train_command(address: str, data: Path, model: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vlmrl.cli",
        "train",
        str(ROOT / "configs" / "train" / "mixed_2node.yaml"),
        "--address",
        address,
        f"model.path={model}",
        "model.dtype=float32",
        f"data.train_files=[{data}]",
        "data.val_files=[]",
        "data.train_batch_size=2",
        "data.dataloader_num_workers=0",
        "algorithm.ppo_mini_batch_size=2",
        "algorithm.ppo_micro_batch_size_per_gpu=2",
        "algorithm.lr_warmup_steps=0",
        # the untrained tiny model fails the format gate on every response: every group scores alike
        "algorithm.filter_groups.enable=false",
        "rollout.n=2",
        "rollout.max_response_length=32",
        "reward.overlong.len=8",
        "reward.verifier.url=null",
        "reward.verifier.model=null",
        "trainer.device=cpu",
        "trainer.n_gpus_per_node=1",
        f"trainer.total_training_steps={STEPS}",
        "trainer.save_freq=1",
        "trainer.test_freq=-1",
        "trainer.logger=[console,jsonl]",
        "trainer.experiment_name=cluster",
        f"trainer.output_dir={out}",
        "trainer.max_actor_ckpt_to_keep=2",
    ]


def _latest_step(checkpoints: Path) -> int:
    try:
        return int((checkpoints / "latest_checkpointed_iteration.txt").read_text().strip())
    except (OSError, ValueError):
        return 0


def _job_id(stderr: str) -> str:
    match = re.search(r"Ray job id: (\S+)", stderr)
    assert match, stderr[-3000:]
    return match.group(1)


#: Run 3's submitter: vlmrl's launcher in a fresh process, as `vlmrl train` runs it (Ray caches its
#: authentication mode per process, so the test process cannot be the client of this cluster).
_OUTLIVES = """
import json, sys
from pathlib import Path
from vlmrl.train.verl import launch as verl_launch
address, sid, env_file = sys.argv[1:4]
ray = str(Path(sys.executable).with_name("ray"))
plan = verl_launch.LaunchPlan(
    "cluster",
    [ray, "job", "submit", "--address", address, "--submission-id", sid, "--",
     "python3", "-c", "import time; print('waiting', flush=True); time.sleep(900)"],
    [], [], "", ray_address=address, runtime_env={}, runtime_env_path=env_file, submission_id=sid,
)
started = __import__("time").time()
code = verl_launch.run(plan)
failure = verl_launch.cluster_failure(plan, started)
print("RESULT " + json.dumps({"code": code, "stopped_because": plan.stopped_because, "failure": failure}))
"""


def _run_a_job_that_outlives_its_node(cluster: LocalCluster, node, base: Path) -> dict:
    """Run 3: through vlmrl's launcher, a job that never notices a lost node (as veRL 0.9.1's rollout
    can wait forever on requests a dead worker held); the node's raylet is killed once the job runs."""
    sid = f"vlmrl-outlives-{os.getpid()}-{int(time.time())}"
    env = {**_submitter_env(), **cluster.client_env(), "VLMRL_NODE_LOSS_GRACE_S": "5"}
    argv = [sys.executable, "-c", _OUTLIVES, cluster.dashboard_url, sid, str(base / "outlives_env.yaml")]
    with open(base / "run3.out", "w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 300
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = cluster.query(sid)["status"]
            except RuntimeError:  # not submitted yet
                status = None
            if status and "RUNNING" in status:
                break
            time.sleep(2)
        killed = bool(status and "RUNNING" in status)
        if killed:
            cluster.kill_raylet(node)
        try:
            proc.wait(timeout=600)  # a hang guard only: it ends when vlmrl stops the job
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = (base / "run3.out").read_text()
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    result = json.loads(lines[-1][len("RESULT ") :]) if lines else {}
    final = None
    with contextlib.suppress(RuntimeError):
        final = cluster.query(sid)["status"]
    return {
        **result,
        "killed": killed,
        "ended": proc.returncode is not None and bool(lines),
        "stderr": text,
        "status": str(final),
        "lost_node": node.node_id,
    }


@pytest.fixture(scope="module")
def cluster_runs(tmp_path_factory, tiny_vlm_path):
    base = tmp_path_factory.mktemp("cluster")
    data = base / "train.parquet"
    _rows(data)
    out = base / "run"
    checkpoints = out / "checkpoints"
    # Ray's socket paths (AF_UNIX, at most 107 bytes) live under each node's temp dir: pytest's
    # numbered base dirs grow too long for them, so the nodes get a short dir of their own.
    ray_root = Path(tempfile.mkdtemp(prefix="vlmrl-ray-"))
    cluster = LocalCluster(ray_root)
    saved_env = {k: os.environ.get(k) for k in cluster.client_env()}
    os.environ.update(cluster.client_env())  # the submitter's and the nodes' environments inherit it
    try:
        cluster.start_head(_submitter_env(), num_cpus=10)
        node2 = cluster.add_worker("node2", _foreign_node_env(base), num_cpus=8)
        command = _train_command(cluster.dashboard_url, data, tiny_vlm_path, out)

        # run 1: kill the second node's raylet once step 1 is checkpointed
        t = time.monotonic()
        with open(base / "run1.out", "w") as stdout, open(base / "run1.err", "w") as stderr:
            # veRL 0.9.1 often waits forever on the dead node's rollouts; vlmrl stops the job 20 s after
            # Ray reports the node dead (default 120 s: a shorter wait only saves the suite time)
            env1 = {**_submitter_env(), "VLMRL_NODE_LOSS_GRACE_S": "20"}
            proc = subprocess.Popen(command, env=env1, stdout=stdout, stderr=stderr, cwd=base)
            deadline = time.monotonic() + 1200
            while _latest_step(checkpoints) < 1 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            killed_at_step = _latest_step(checkpoints)
            killed = proc.poll() is None and killed_at_step >= 1
            if killed:
                cluster.kill_raylet(node2)
            code1 = proc.wait(timeout=600)
        run1 = {
            "code": code1,
            "killed": killed,
            "killed_after_step": killed_at_step,
            "lost_node": node2.node_id,
            "stdout": (base / "run1.out").read_text(),
            "stderr": (base / "run1.err").read_text(),
            "wall_s": time.monotonic() - t,
            "latest_after": _latest_step(checkpoints),
        }

        # run 2: a healthy second node, the same command again
        node3 = cluster.add_worker("node3", _foreign_node_env(base), num_cpus=8)
        t = time.monotonic()
        proc2 = subprocess.run(
            command, env=_submitter_env(), capture_output=True, text=True, cwd=base, timeout=1500
        )
        run2 = {"code": proc2.returncode, "stdout": proc2.stdout, "stderr": proc2.stderr}
        run2["wall_s"] = time.monotonic() - t
        nodes = {"head": cluster.nodes[0].node_id, "node3": node3.node_id}
        actors, job = [], None
        if proc2.returncode == 0:
            job_id = _job_id(proc2.stderr)
            job = cluster.query(job_id)
            actors = cluster.query("actors")
            logs = subprocess.run(
                [
                    str(Path(sys.executable).with_name("ray")),
                    "job",
                    "logs",
                    job_id,
                    "--address",
                    cluster.dashboard_url,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env=_submitter_env(),
            )
            run2["job_logs"] = {"code": logs.returncode, "text": logs.stdout + logs.stderr}
        run3 = _run_a_job_that_outlives_its_node(cluster, node3, base)
        yield {
            "run3": run3,
            "run1": run1,
            "run2": run2,
            "nodes": nodes,
            "actors": actors,
            "job": job,
            "out": out,
            "checkpoints": checkpoints,
        }
    finally:
        cluster.stop()
        shutil.rmtree(ray_root, ignore_errors=True)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_killed_node_fails_the_job_naming_it_and_keeps_the_checkpoint(cluster_runs):
    run1 = cluster_runs["run1"]
    assert run1["killed"], f"run 1 ended before the kill: {run1['stderr'][-3000:]}"
    assert run1["code"] != 0
    assert re.search(rf"Ray node {run1['lost_node']} at \S+ died during the job", run1["stderr"]), run1[
        "stderr"
    ][-3000:]
    assert "last checkpoint:" in run1["stderr"]
    assert run1["latest_after"] >= 1


def test_resubmitted_job_resumes_from_the_last_checkpoint_and_succeeds(cluster_runs):
    run1, run2 = cluster_runs["run1"], cluster_runs["run2"]
    assert run2["code"] == 0, run2["stderr"][-4000:] + run2["stdout"][-4000:]
    metrics = [
        json.loads(line) for line in (cluster_runs["out"] / "verl_metrics.jsonl").read_text().splitlines()
    ]
    steps = sorted({int(m["step"]) for m in metrics})
    assert steps == list(range(run1["latest_after"] + 1, STEPS + 1)), steps
    checkpoints = cluster_runs["checkpoints"]
    assert _latest_step(checkpoints) == STEPS
    assert (checkpoints / f"global_step_{STEPS}" / "actor").is_dir()
    assert (cluster_runs["out"] / "ray_runtime_env.yaml").is_file()


def test_both_nodes_ran_training_workers(cluster_runs):
    job = cluster_runs["job"]
    assert job is not None
    mine = [a for a in cluster_runs["actors"] if a["job_id"] == job["job_id"]]
    workers = {a["node_id"] for a in mine if "WorkerDict" in a["class_name"]}
    assert workers == set(cluster_runs["nodes"].values()), (cluster_runs["nodes"], mine)


def test_job_ran_without_the_submitters_paths_and_logs_are_reachable(cluster_runs):
    job = cluster_runs["job"]
    assert "pkg://vlmrl.reward.verl_entry" in job["entrypoint"]
    assert SRC not in job["entrypoint"]  # neither the reward nor vlmrl by this machine's install path
    logs = cluster_runs["run2"]["job_logs"]
    assert logs["code"] == 0
    assert re.search(rf"step:{STEPS} ", logs["text"]), logs["text"][-3000:]


def test_a_job_that_outlives_a_dead_node_is_stopped_and_the_node_named(cluster_runs):
    run3 = cluster_runs["run3"]
    assert run3["killed"] and run3["ended"], run3
    assert run3["code"] != 0
    assert run3["stopped_because"] and run3["lost_node"] in run3["stopped_because"], run3
    assert "vlmrl: stopping Ray job" in run3["stderr"] and run3["lost_node"] in run3["stderr"]
    assert "STOPPED" in run3["status"], run3
    assert re.match(r"Ray job \S+ stopped by vlmrl: Ray node ", run3["failure"]), run3["failure"]
    assert "VLMRL_NODE_LOSS_GRACE_S" in run3["failure"]

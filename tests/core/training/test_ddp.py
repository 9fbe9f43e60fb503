"""Training on several processes through PyTorch DDP: 2 CPU ranks (gloo) under torchrun.

torchrun starts ddp_worker.py (beside this file) twice; each rank trains a tiny model for a few steps through
lpip_core.training.train.train and reports the weights it started and ended with and the samples it drew.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO as ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_cpu_ranks_agree_on_the_weights_and_split_the_data(tmp_path, fixtures):
    data = tmp_path / "faces"
    data.mkdir()
    for name in ("hopper", "astronaut", "obama"):
        shutil.copy(fixtures / f"{name}_aligned_128.png", data)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           str(Path(__file__).with_name("ddp_worker.py")), str(data), str(out)]
    run = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=110)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 and r["ddp"] for r in ranks)
    # DDP broadcast one start and all-reduced the gradients: the ranks end bit for bit equal ...
    assert ranks[0]["initial"] == ranks[1]["initial"]
    assert ranks[0]["final"] == ranks[1]["final"]
    # ... after really training, on different samples of the one stream (2 faces x 3 steps each).
    assert ranks[0]["final"] != ranks[0]["initial"]
    assert len(ranks[0]["samples"]) == len(ranks[1]["samples"]) == 6
    assert not set(ranks[0]["samples"]) & set(ranks[1]["samples"])
    assert sorted(ranks[0]["samples"] + ranks[1]["samples"]) == list(range(12))
    # Only rank 0 writes the model and the log; the log holds the loss averaged over the ranks.
    assert (out / "ddp.safetensors").is_file()
    assert len((out / "ddp-train" / "loss.csv").read_text().splitlines()) == 1 + 3

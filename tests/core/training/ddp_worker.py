"""One rank of the DDP test (tests/core/training/test_ddp.py), started by torchrun: a few training steps of a tiny
model through lpip_core.training.train.train, then a JSON report of what this rank saw and ended with.

Usage: torchrun --nproc_per_node 2 tests/core/training/ddp_worker.py DATA_DIR OUT_DIR
Writes OUT_DIR/rank<R>.json: sha256 of the weights DDP started from and ended with, and the
sample numbers this rank drew from the data stream.
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

import lpip_core.training.train as train_module
from lpip_core.training.train import TrainConfig, train

torch.set_num_threads(1)
STEPS = 3


def weights_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class RecordingDDP(train_module.DistributedDataParallel):
    """The real DDP wrapper, keeping a handle on the wrapped model and its weights after DDP's start-up broadcast."""

    instance = None
    initial = None

    def __init__(self, module, *args, **kwargs):
        super().__init__(module, *args, **kwargs)
        RecordingDDP.instance, RecordingDDP.initial = self, weights_hash(module)


class RecordingPairs(train_module.PatchPairs):
    """The real data stream, recording which sample numbers this process draws."""

    drawn: list[int] = []

    def __getitem__(self, k):
        RecordingPairs.drawn.append(int(k))
        return super().__getitem__(k)


def main(data: str, out: str) -> None:
    train_module.DistributedDataParallel = RecordingDDP
    train_module.PatchPairs = RecordingPairs
    cfg = TrainConfig(data=data, out=str(Path(out) / "ddp.safetensors"), preset="tiny", scale=4, hq_size=32,
                      patch=8, steps=STEPS, lr=1e-3, warmup_steps=1, faces_per_step=2, patches_per_face=2,
                      log_every=1, threads=1, device="cpu")
    train(cfg, progress=False)
    rank = int(os.environ["RANK"])
    report = {"rank": rank, "world": int(os.environ["WORLD_SIZE"]), "ddp": RecordingDDP.instance is not None,
              "initial": RecordingDDP.initial,
              "final": weights_hash(RecordingDDP.instance.module) if RecordingDDP.instance else None,
              "samples": RecordingPairs.drawn}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:3])

"""A tiny training script that follows the SageMaker training contract (stand-in for training/train.py in tests).

It reads SM_* env, forms one torch.distributed group across hosts (rank from SM_HOSTS, or torchrun's RANK), sums the
numbers in its channel shard, all-reduces them, prints METRIC lines, checkpoints, and writes a model for tiny_inference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail", default="")
    parser.add_argument("--crash", default="")
    args = parser.parse_args()
    hosts = json.loads(os.environ["SM_HOSTS"])
    rank = int(os.environ.get("RANK", hosts.index(os.environ["SM_CURRENT_HOST"])))
    world = int(os.environ.get("WORLD_SIZE", len(hosts)))
    print(f"ARGS {sys.argv[1:]}", flush=True)
    if args.fail:
        Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text(args.fail)
        return 3
    if args.crash:
        raise RuntimeError(args.crash)
    files = sorted(Path(os.environ["SM_CHANNEL_TRAIN"]).rglob("*.txt"))
    local = sum(float(x) for f in files for x in f.read_text().split())
    total, count = local, float(len(files))
    if world > 1:
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world)
        tensor = torch.tensor([local, float(len(files))], dtype=torch.float64)
        dist.all_reduce(tensor)
        total, count = float(tensor[0]), float(tensor[1])
        dist.destroy_process_group()
    print(f"RANK {rank} WORLD {world} FILES {len(files)} TOTAL {total} COUNT {count}", flush=True)
    checkpoint_dir = os.environ.get("SM_CHECKPOINT_DIR")
    start_epoch = 1
    if checkpoint_dir and (Path(checkpoint_dir) / "state.json").exists():
        start_epoch = json.loads((Path(checkpoint_dir) / "state.json").read_text())["epoch"] + 1
        print(f"RESUMED from epoch {start_epoch - 1}", flush=True)
    for epoch in range(start_epoch, args.epochs + 1):
        time.sleep(args.sleep)
        loss = 1.0 / (epoch * args.scale)
        print(
            f"METRIC split=train epoch={epoch} loss={loss:.6f} top1={min(1.0, 0.1 * epoch * args.scale):.6f}",
            flush=True,
        )
        print(
            f"METRIC split=valid epoch={epoch} loss={loss:.6f} top1={min(1.0, 0.2 * epoch * args.scale):.6f}",
            flush=True,
        )
        if checkpoint_dir and rank == 0:
            (Path(checkpoint_dir) / "state.json").write_text(json.dumps({"epoch": epoch}))
    if rank == 0:
        model_dir = Path(os.environ["SM_MODEL_DIR"])
        (model_dir / "model.json").write_text(json.dumps({"total": total, "count": count, "scale": args.scale}))
        (model_dir / "code").mkdir(exist_ok=True)
        shutil.copy(Path(__file__).with_name("tiny_inference.py"), model_dir / "code" / "inference.py")
        Path(os.environ["SM_OUTPUT_DATA_DIR"], "env.json").write_text(
            json.dumps({k: v for k, v in os.environ.items() if k.startswith("SM_") or k in ("MASTER_PORT",)})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

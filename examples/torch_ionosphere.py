"""PyTorch: the seed tutorials' Ionosphere MLP on a warmup-cosine schedule with plateau reduction.

The model is the seeds' ``Dense(34, relu) -> Dense(1, sigmoid)`` trained with SGD
(momentum 0.9), batch 28. ``lrlab.torch.scheduler`` sets the lr of every update from the
closed form; ``scheduler.step()`` follows ``optimizer.step()`` (torch's order) and the
validation loss of each epoch goes to ``scheduler.observe()`` (the schedule is per
update, the metric per epoch). Halfway through, the run is saved and resumed from the
checkpoint, as a preempted job would be; the lr sequence continues exactly.

    python examples/torch_ionosphere.py --epochs 40 --data csv:../shared/data/ionosphere.csv
"""

from __future__ import annotations

import argparse
import io

import torch

import lrlab.torch
from lrlab.experiments.datasets import load_dataset, split_dataset


def build(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(34, 34), torch.nn.ReLU(), torch.nn.Linear(34, 1))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--data", default="ionosphere", help="an lrlab dataset reference")
    args = parser.parse_args(argv)
    split = split_dataset(load_dataset(args.data), validation=0.33, seed=0)
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train).float()[:, None]
    x_val, y_val = torch.from_numpy(split.x_val), torch.from_numpy(split.y_val).float()[:, None]
    batches = list(zip(x.split(28), y.split(28), strict=True))

    steps = args.epochs * len(batches)
    warm = steps // 10
    spec = f"warmup({warm}, cosine(0.1, decay_steps={steps - warm}, alpha=0.1))"
    plateau = "plateau(factor=0.5, patience=5, cooldown=1)"
    model, opt = build(seed=7)
    scheduler = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    lrs: list[float] = []

    for epoch in range(args.epochs):
        if epoch == args.epochs // 2:  # checkpoint, then resume into fresh objects
            buffer = io.BytesIO()
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": scheduler.state_dict(),
                },  # noqa: E501
                buffer,
            )
            buffer.seek(0)
            saved = torch.load(buffer, weights_only=True)
            model, opt = build(seed=123)
            scheduler = lrlab.torch.scheduler(opt, spec, plateau=plateau)
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["opt"])
            scheduler.load_state_dict(saved["sched"])
        model.train()
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(x_val), y_val).item()
            val_acc = ((model(x_val) > 0).float() == y_val).float().mean().item()
        scheduler.observe(val_loss)

    print(f"schedule {spec} x {plateau}, {len(lrs)} updates, resumed at epoch {args.epochs // 2}")
    print(f"plateau reductions: {scheduler.plateau_state.reductions}")
    print(f"final val_loss {val_loss:.4f}, val_accuracy {val_acc:.3f}")
    print(f"lr per epoch: {[round(lr, 5) for lr in lrs[:: len(batches)]]}")
    return lrs


if __name__ == "__main__":
    main()

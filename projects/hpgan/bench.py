"""``make bench-hpgan``: the cost of HP-GAN's training and sampling, in one run.

* sequences/s of one training iteration (9 critic + 1 quality + 2 generator updates on one batch) under
  Lightning's ``Trainer.fit`` and in a bare PyTorch loop running the same ``training_step``, and against a
  baseline: the same generator trained alone by L2 regression (one update a batch);
* sequences/s of sampling K futures, and how the time grows with K (1 … 100) and with the horizon
  (10 … 100 frames): the decoder runs one GRU step a frame, so time should grow linearly in both.

Default: the claim's sizes (GRU 2 × 256, critic 256, batch 16); ``--paper``: the official sizes (GRU 2 × 1024,
critic 512), meant for a GPU (everything runs on one when present).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import lightning as L
import torch

from projects.hpgan.module import HPGAN
from shared.bench import GpuStep, fit_step_seconds, optimisation_step, parameter_count, recipe, sync
from shared.results import RESULTS_DIR, hardware

ACCELERATOR = "gpu" if torch.cuda.is_available() else "cpu"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build(args) -> HPGAN:
    torch.manual_seed(0)
    return HPGAN(hidden=args.hidden, critic_hidden=args.critic_hidden)


def batch_of(size: int) -> dict:
    return {"poses": torch.randn(size, 30, 15, 3) * 200, "label": torch.zeros(size, dtype=torch.long)}


def plain_seconds(model: HPGAN, batch: dict, steps: int, warmup: int = 2) -> float:
    """``training_step`` with its three Adam optimisers in a bare loop (no Trainer): median seconds a batch."""
    model = model.to(DEVICE).train()
    optimisers = model.configure_optimizers()
    model.optimizers = lambda: optimisers
    model.manual_backward = lambda loss: loss.backward()
    model.log_dict = lambda *a, **k: None
    batch = {k: v.to(DEVICE) for k, v in batch.items()}
    times = []
    for i in range(warmup + steps):
        sync()
        t = time.perf_counter()
        model.training_step(batch, i)
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times[warmup:])


class RegressionOnly(L.LightningModule):
    """The baseline: HP-GAN's generator trained alone with an L2 loss to the true future (one Adam update)."""

    def __init__(self, gan: HPGAN):
        super().__init__()
        self.gan = gan

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        poses = self.gan.normalise(batch["poses"])
        n_obs = self.gan.hparams.n_obs
        z = torch.zeros(len(poses), self.gan.hparams.z_dim, device=poses.device)
        predicted = self.gan.generator(poses[:, :n_obs], z, self.gan.hparams.n_pred)
        return torch.nn.functional.mse_loss(predicted, poses[:, n_obs:])

    def configure_optimizers(self):
        return torch.optim.Adam(self.gan.generator.parameters(), lr=1e-4)


@torch.no_grad()
def sampling_seconds(model: HPGAN, batch: int, k: int, horizon: int, repeats: int = 3) -> float:
    model = model.to(DEVICE).eval()
    observed = torch.randn(batch, model.hparams.n_obs, 15, 3, device=DEVICE) * 200
    original = model.hparams.n_pred
    model.hparams.n_pred = horizon
    times = []
    try:
        for _ in range(repeats + 1):
            sync()
            t = time.perf_counter()
            model.predict_futures(observed, k)
            sync()
            times.append(time.perf_counter() - t)
    finally:
        model.hparams.n_pred = original
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper", action="store_true", help="official sizes (GRU 1024, critic 512)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args(argv)
    args.hidden, args.critic_hidden = (1024, 512) if args.paper else (256, 256)
    batch = batch_of(args.batch)
    print(f"HP-GAN, GRU 2 × {args.hidden}, critic {args.critic_hidden}, batch {args.batch}, on {DEVICE}")
    lightning = fit_step_seconds(build(args), batch, steps=args.steps, warmup=2, accelerator=ACCELERATOR)
    plain = plain_seconds(build(args), batch, args.steps)
    regression = fit_step_seconds(RegressionOnly(build(args)), batch, steps=args.steps, warmup=2,
                                  accelerator=ACCELERATOR)
    print(f"training iteration: {args.batch / lightning:.1f} seq/s under Lightning, {args.batch / plain:.1f} seq/s "
          "in a "
          f"bare loop (ratio {lightning / plain:.2f}); L2-regression baseline {args.batch / regression:.1f} seq/s "
          f"(an HP-GAN iteration costs ×{lightning / regression:.1f})")
    model = build(args)
    by_k = {k: sampling_seconds(model, 16, k, 20) for k in (1, 10, 50, 100)}
    by_horizon = {h: sampling_seconds(model, 16, 10, h) for h in (10, 20, 50, 100)}
    print("sampling 16 observed sequences, 20 frames: " + ", ".join(
        f"K={k}: {16 * k / s:.0f} futures/s (×{s / by_k[1]:.1f} of K=1)" for k, s in by_k.items()))
    print("sampling K=10: " + ", ".join(f"{h} frames: {s * 1000:.0f} ms (×{s / by_horizon[10]:.1f} of 10)"
                                        for h, s in by_horizon.items()))
    out = RESULTS_DIR / "bench" / ("hpgan-paper.json" if args.paper else "hpgan.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"hardware": hardware(), "train_seq_per_s": args.batch / lightning, "plain_seq_per_s": args.batch / plain,
              "lightning_over_plain": lightning / plain, "regression_seq_per_s": args.batch / regression,
              "gan_over_regression": lightning / regression,
              "sampling_seconds_by_k": by_k, "sampling_seconds_by_horizon": by_horizon,
              "setup": {"hidden": args.hidden, "critic_hidden": args.critic_hidden, "batch": args.batch}}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


def gpu_training_step(device: torch.device, batch_size: int | None = None) -> GpuStep:
    """``make gpu-check``: one training iteration of the Human3.6M recipe (GRU 2 x 1024, critic 3 x 512, batch 16)
    on random poses: 9 critic updates with gradient penalty, 1 quality-network and 2 generator updates."""
    kwargs, batch = recipe("projects/hpgan/configs/hpgan_1xb16_h36m.yaml")
    batch = batch_size or batch
    torch.manual_seed(0)
    model = HPGAN(**kwargs)
    step = optimisation_step(model, batch_of(batch), device)  # manual optimisation: training_step steps all three
    return GpuStep(step, batch, "sequences", "HP-GAN, GRU 2 x 1024, critic 3 x 512 (Human3.6M recipe)",
                   parameter_count(model))


if __name__ == "__main__":
    main()

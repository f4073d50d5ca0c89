"""The LightningModule that trains TransMOT's graph transformer on assignment samples (:mod:`projects.stgt.data`).

``python -m projects.stgt fit -c projects/stgt/configs/demo.yaml``; the trained checkpoint then drives the
tracker: ``python -m projects.stgt track --seq DIR --ckpt CKPT --out FILE``.
"""

from __future__ import annotations

import lightning as L
import torch

from projects.stgt.losses import assignment_loss
from projects.stgt.nets import STGT
from shared.errors import UserFacingError
from shared.schedules import per_step_scheduler, scaled_lr


class TransMOT(L.LightningModule):
    """STGT + the assignment loss. Logs ``train/loss`` and, on validation samples, ``val/loss`` and
    ``val/assign_acc`` (the share of detections whose most probable column is their true one)."""

    def __init__(self, dim: int = 64, heads: int = 8, ff: int = 128, window: int = 5, appearance_dim: int = 0,
                 dropout: float = 0.1, cheb_k: int = 3, spatial_layers: int = 1, temporal_layers: int = 1,
                 decoder_layers: int = 1, graph: str = "masked", sink_weight: float = 1.0, optimizer: str = "sgd",
                 lr: float = 0.0015, momentum: float = 0.0, weight_decay: float = 0.0,
                 base_batch_size: int | None = None, warmup_epochs: float = 0.0, schedule: str = "cosine"):
        super().__init__()
        self.save_hyperparameters()
        if optimizer not in ("sgd", "adamw"):
            raise UserFacingError(f"model.optimizer must be 'sgd' (the paper's) or 'adamw', got {optimizer!r}")
        self.net = STGT(dim, heads, ff, window, appearance_dim, dropout, cheb_k, spatial_layers, temporal_layers,
                        decoder_layers, graph)

    @property
    def window(self) -> int:
        return self.hparams.window

    def on_fit_start(self) -> None:
        data = getattr(self.trainer.datamodule, "hparams", {})
        for key, why in (("window", "the tracklets the data builds must span the frames the model was built for "
                                    "(the paper: 5)"),
                         ("appearance_dim", "the data's embeddings must have the width the model takes (0: boxes "
                                            "only)")):
            if data.get(key) is not None and data[key] != self.hparams[key]:
                raise UserFacingError(f"data.init_args.{key}={data[key]} but model.{key}={self.hparams[key]}: {why}; "
                                      "set both to the same value")

    def forward(self, tracks, track_mask, dets, det_mask):
        return self.net(tracks, track_mask, dets, det_mask)

    def assignment(self, tracks, track_mask, dets, det_mask):
        return self.net.assignment(tracks, track_mask, dets, det_mask)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["tracks"], batch["track_mask"], batch["dets"], batch["det_mask"])
        loss, parts = assignment_loss(logits, batch["det_target"], batch["sink_target"], batch["track_mask"],
                                      batch["det_mask"], self.hparams.sink_weight)
        b = batch["dets"].shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=b, sync_dist=stage != "train")
        self.log(f"{stage}/loss_det", parts["det"], batch_size=b, sync_dist=stage != "train")
        self.log(f"{stage}/loss_sink", parts["sink"], batch_size=b, sync_dist=stage != "train")
        if stage != "train":
            col_mask = torch.cat([batch["track_mask"], torch.ones_like(batch["track_mask"][:, :1])], 1)
            pred = logits[:, :-1].masked_fill(~col_mask[:, None, :], -1e9).argmax(-1)
            hit = ((pred == batch["det_target"]) & batch["det_mask"]).sum()
            n = batch["det_mask"].sum().clamp(min=1)
            self.log(f"{stage}/assign_acc", hit.float() / n, prog_bar=True, batch_size=b, sync_dist=True)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        lr = scaled_lr(self, hp.lr, hp.base_batch_size)
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=hp.weight_decay)
        return {"optimizer": opt, "lr_scheduler": per_step_scheduler(self, opt, hp.warmup_epochs, hp.schedule)}

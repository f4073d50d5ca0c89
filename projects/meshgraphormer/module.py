"""The LightningModule that trains and evaluates Mesh Graphormer (:mod:`projects.meshgraphormer.nets`).

``python -m projects.meshgraphormer fit -c projects/meshgraphormer/configs/demo.yaml``. Validation and test log, in
millimetres, the official evaluation's metrics (:mod:`projects.meshgraphormer.metrics`): ``mpjpe`` and ``pa_mpjpe``
on the joints regressed from the full predicted mesh, root-centred (body: mid-hips of the 14 Human3.6M joints;
hand: wrist), ``mpve`` and ``pa_mpvpe`` on the full mesh, and the Procrustes-aligned ``f5`` / ``f15`` F-scores.
"""

from __future__ import annotations

import lightning as L
import torch

from projects.meshgraphormer import metrics
from projects.meshgraphormer.bodymodels import BodyModel, build_body_model
from projects.meshgraphormer.losses import joint_2d_loss, joint_3d_loss, vertex_loss
from projects.meshgraphormer.mesh import normalized_adjacency
from projects.meshgraphormer.nets import MeshGraphormer, orthographic_projection
from shared.errors import UserFacingError


class MeshGraphormerModule(L.LightningModule):
    """Mesh Graphormer + its loss (:mod:`projects.meshgraphormer.losses`), Adam with one x0.1 step of the
    learning rate at ``decay_at`` of the steps (official: half). ``upsample_init``: ``random`` (official) or
    ``hierarchy`` (the learned upsampling starts at the mesh hierarchy's fixed ``U``; the demo's choice), and
    ``upsample_lr_scale`` multiplies the upsampling layers' learning rate (official: 1). ``joints_2d_weight``
    weighs the reprojection loss (official: None, i.e. ``vertices_weight``)."""

    def __init__(self, body_model: str = "anny-hand", body_model_path: str | None = None,
                 h36m_regressor: str | None = None, downsampling: str | None = None,
                 body_cache_dir: str | None = None,
                 backbone: str = "small", backbone_width: int = 256, pretrained: bool = False,
                 input_dims: tuple[int, ...] = (512, 128), hidden_dims: tuple[int, ...] = (1024, 256, 64),
                 layers: int = 4, heads: int = 4, dropout: float = 0.1, graph_blocks: tuple[int, ...] = (2,),
                 grid_size: int = 7, mask_ratio: float = 0.0, camera_from: str = "joints+vertices",
                 camera_hidden: int = 150, attention_dropout: float = 0.1, upsample_init: str = "random",
                 start_from_template: bool = False, camera_scale_init: float | None = None,
                 token_xyz_scale: float = 1.0, joints_weight: float = 1.0, vertices_weight: float = 1.0,
                 joints_2d_weight: float | None = None, upsample_lr_scale: float = 1.0,
                 level_weights: tuple[float, ...] | None = None, lr: float = 1.0e-4, decay_at: float = 0.5):
        super().__init__()
        self.save_hyperparameters()
        self.body: BodyModel = build_body_model(body_model, body_model_path, h36m_regressor, downsampling,
                                                body_cache_dir)
        joints, coarse = self.body.template_tokens()
        sizes = list(reversed(self.body.hierarchy.sizes))  # coarsest -> full
        try:
            self.net = MeshGraphormer(joints, coarse, normalized_adjacency(self.body.hierarchy.adjacency[-1]), sizes,
                                      backbone, backbone_width, pretrained, tuple(input_dims), tuple(hidden_dims),
                                      layers, heads, dropout, tuple(graph_blocks), grid_size, mask_ratio,
                                      camera_from, camera_hidden, attention_dropout, start_from_template,
                                      camera_scale_init, token_xyz_scale)
        except ValueError as err:
            raise UserFacingError(f"model: {err}") from err
        if upsample_init not in ("random", "hierarchy"):
            raise UserFacingError(f"model.upsample_init must be 'random' (official) or 'hierarchy', got "
                                  f"{upsample_init!r}")
        if upsample_init == "hierarchy":
            ups = self.body.hierarchy.up
            self.net.init_upsampling([torch.as_tensor(ups[i].toarray(), dtype=torch.float32)
                                      for i in range(len(ups) - 1, -1, -1)])
        levels = len(self.body.hierarchy.sizes)
        weights = level_weights if level_weights is not None else [1.0 / levels] * levels
        if len(weights) != levels:
            raise UserFacingError(f"model.level_weights has {len(weights)} values but the {body_model} mesh has "
                                  f"{levels} resolutions (full first, coarsest last)")
        self.level_weights = list(weights)
        self.register_buffer("regressor", self.body.joint_regressor.float(), persistent=False)

    def forward(self, images: torch.Tensor) -> dict:
        return self.net(images)

    def run_batch(self, batch: dict) -> dict:
        """The network on a batch: on its ``image``, or on precomputed backbone features ``global_features``
        (B, C) and ``grid_features`` (B, grid_size^2, C) when the batch carries them instead (a frozen backbone
        whose features were computed once)."""
        if "global_features" in batch:
            return self.net.decode(batch["global_features"], batch["grid_features"])
        return self(batch["image"])

    def on_fit_start(self) -> None:
        data = getattr(self.trainer.datamodule, "hparams", {})
        if data.get("source") == "tsv" and data.get("kind") == "body" and self.body.num_joints != 14:
            raise UserFacingError(f"data.init_args.kind=body evaluates Human3.6M's 14 joints but the {self.body.name} "
                                  f"model regresses {self.body.num_joints}: give model.h36m_regressor "
                                  "(J_regressor_h36m_correct.npy of MeshGraphormer's src/modeling/data/)")
        if data.get("source") == "anny-hands" and self.body.name != "anny-hand":
            raise UserFacingError(f"data.init_args.source=anny-hands needs model.body_model=anny-hand, got "
                                  f"{self.body.name}")

    @torch.autocast("cuda", enabled=False)
    def targets(self, batch: dict) -> list[torch.Tensor]:
        """Ground-truth meshes from full (root-centred) to coarsest, in float32 even under mixed precision; from
        the body model when the batch carries pose and shape parameters instead of vertices."""
        if "vertices" in batch:
            full = batch["vertices"].float()
        else:
            full = self.body.mesh(batch["pose"].float(), batch["betas"].float())
            full = full - self.regress(full)[:, self.body.root].mean(1, keepdim=True)
        levels = len(self.body.hierarchy.sizes)
        return [self.body.hierarchy.downsample(full, i) for i in range(levels)]

    def regress(self, vertices: torch.Tensor) -> torch.Tensor:
        return torch.einsum("jv,bvc->bjc", self.regressor, vertices)

    def losses(self, out: dict, batch: dict, gt_levels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        root = self.body.root
        pred_levels = list(reversed(out["vertices"]))  # full -> coarsest
        reg_joints = self.regress(pred_levels[0])
        has_mesh, has_3d = batch["has_mesh"], batch["has_3d"]
        l_v = sum(w * vertex_loss(p, g, has_mesh) for w, p, g in zip(self.level_weights, pred_levels, gt_levels,
                                                                        strict=True))
        l_3d = (joint_3d_loss(out["joints"], batch["joints"], batch["joints_conf"], has_3d, root)
                + joint_3d_loss(reg_joints, batch["joints"], batch["joints_conf"], has_3d, root))
        cam = out["camera"]
        l_2d = (joint_2d_loss(orthographic_projection(out["joints"], cam), batch["joints_2d"], batch["joints_2d_conf"])
                + joint_2d_loss(orthographic_projection(reg_joints, cam), batch["joints_2d"],
                                batch["joints_2d_conf"]))
        hp = self.hparams
        w_2d = hp.vertices_weight if hp.joints_2d_weight is None else hp.joints_2d_weight  # official: w_V
        total = hp.joints_weight * l_3d + hp.vertices_weight * l_v + w_2d * l_2d
        return {"loss": total, "loss_vertices": l_v, "loss_3d": l_3d, "loss_2d": l_2d}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.run_batch(batch)
        parts = self.losses(out, batch, self.targets(batch))
        b = batch["joints"].shape[0]
        for k, v in parts.items():
            self.log(f"train/{k}", v, prog_bar=k == "loss", batch_size=b)
        return parts["loss"]

    @torch.no_grad()
    @torch.autocast("cuda", enabled=False)
    def evaluate(self, out: dict, batch: dict, gt_full: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample metrics in millimetres (F-scores as fractions), as the official evaluation computes them,
        in float32."""
        root = self.body.root
        pred_full = out["vertices"][-1].float()
        pred_j = metrics.root_centre(self.regress(pred_full), root)
        gt_j = metrics.root_centre(batch["joints"].float(), root)
        pred_v = pred_full - self.regress(pred_full)[:, root].mean(1, keepdim=True)
        mm = 1000.0
        return {"mpjpe": metrics.mpjpe(pred_j, gt_j) * mm, "pa_mpjpe": metrics.pa_mpjpe(pred_j, gt_j) * mm,
                "mpve": metrics.mpve(pred_v, gt_full) * mm, "pa_mpvpe": metrics.pa_mpvpe(pred_v, gt_full) * mm,
                "f5": metrics.f_score(pred_full, gt_full, 0.005, align=True),
                "f15": metrics.f_score(pred_full, gt_full, 0.015, align=True)}

    def _eval_step(self, batch: dict, stage: str) -> None:
        out = self.run_batch(batch)
        gt = self.targets(batch)
        parts = self.losses(out, batch, gt)
        b = batch["joints"].shape[0]
        self.log(f"{stage}/loss", parts["loss"], batch_size=b, sync_dist=True)
        has_mesh = batch["has_mesh"].bool()
        for k, v in self.evaluate(out, batch, gt[0]).items():
            sel = has_mesh if k in ("mpve", "pa_mpvpe", "f5", "f15") else batch["has_3d"].bool()
            if sel.any():
                self.log(f"{stage}/{k}", v[sel].mean(), prog_bar=k == "pa_mpjpe", batch_size=int(sel.sum()),
                         sync_dist=True)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Root-centred full meshes (B, V, 3) and the joints regressed from them (B, J, 3), metres, with the
        weak-perspective camera (B, 3): what FreiHAND's CodaLab server scores (as ``[joints, vertices]``)."""
        out = self.run_batch(batch)
        full = out["vertices"][-1].float()
        root = self.regress(full)[:, self.body.root].mean(1, keepdim=True)
        return {"joints": self.regress(full) - root, "vertices": full - root, "camera": out["camera"].float()}

    def configure_optimizers(self):
        hp = self.hparams
        up = {id(p) for p in self.net.upsample.parameters()}
        groups = [{"params": [p for p in self.parameters() if id(p) not in up], "lr": hp.lr},
                  {"params": list(self.net.upsample.parameters()), "lr": hp.lr * hp.upsample_lr_scale}]
        opt = torch.optim.Adam(groups, lr=hp.lr, betas=(0.9, 0.999), weight_decay=0.0)
        total = max(1, self.trainer.estimated_stepping_batches)
        step_at = int(total * self.hparams.decay_at)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < step_at else 0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

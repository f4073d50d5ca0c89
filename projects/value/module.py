"""The LightningModule of the HERO-style VALUE baseline: one encoder, one head per task kind (HERO's all-task model
shares the retrieval head across TVR / How2R / YC2R / VATEX-EN-R, the QA head across the four QA tasks, and one
caption decoder), trained on whatever tasks the data module draws.

``python -m projects.value fit -c projects/value/configs/demo.yaml``. Validation scores every task of the data
module on the leaderboard's val phase with the official metrics (:mod:`projects.value.inference`,
:mod:`projects.value.submission`) and logs ``val/<task>`` (the task score) and ``val/mean`` (their mean); the
test loop does the same on the test phase and, with ``data.submission_path``, writes the leaderboard zip (a
data setting: LightningCLI replaces the model's settings by a checkpoint's when testing one).
``init_from`` starts from another run's checkpoint (AT→ST: fine-tune the all-task model on one task).
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch

from projects.value import inference
from projects.value.losses import caption_loss, choice_loss, retrieval_loss, span_loss
from projects.value.nets import CaptionDecoder, ChoiceHead, HeroEncoder, MomentHead
from projects.value.tasks import TASKS
from shared.errors import UserFacingError


class HeroModule(L.LightningModule):
    """HERO-style baseline + VALUE's task losses (:mod:`projects.value.losses`); AdamW (β = 0.9, 0.98, weight decay
    0.01, none on biases and LayerNorms), linear warm-up over ``warmup`` of the steps then linear decay to 0
    (StarterCode's ``warmup_linear``); heads at ``head_lr_mul`` x the learning rate.

    Retrieval: ``margin``, ``lw_neg_ctx`` / ``lw_neg_q`` (moment retrieval, TVR's 8 / 8) and ``vr_lw_neg`` (video
    retrieval, 10 / 10), hard negatives from step ``hard_negative_start`` (``hard_pool`` / ``vr_hard_pool``
    highest weigh ``hard_weight``), ``lw_st_ed`` and ``drop_svmr_prob`` for the span loss; inference keeps the top
    ``max_videos`` videos (``q2c_alpha``) and spans with ``min_pred_l <= ed - st < max_pred_l`` frames. QA:
    ``qa_lw_st_ed``. Captioning: ``label_smoothing``, greedy decoding of ``max_caption_len`` tokens."""

    def __init__(self, feature_dim: int | None = None, vocab_size: int | None = None, hidden: int = 768,
                 cross_layers: int = 6, temporal_layers: int = 3, heads: int = 12, decoder_layers: int = 2,
                 dropout: float = 0.1, max_frames: int = 100, lr: float = 1e-4, warmup: float = 0.1,
                 weight_decay: float = 0.01, head_lr_mul: float = 1.0, margin: float = 0.1, lw_neg_ctx: float = 8.0,
                 lw_neg_q: float = 8.0, vr_lw_neg: float = 10.0, hard_pool: int = 20, vr_hard_pool: int = 80,
                 hard_weight: float = 10.0, hard_negative_start: int = 2000, lw_st_ed: float = 0.01,
                 drop_svmr_prob: float = 0.8, qa_lw_st_ed: float = 0.4, label_smoothing: float = 0.1,
                 q2c_alpha: float = 20.0, max_videos: int = 100, min_pred_l: int = 2, max_pred_l: int = 16,
                 max_caption_len: int = 30, eval_batch_size: int = 32, meteor: bool = False,
                 init_from: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.encoder: HeroEncoder | None = None
        if feature_dim and vocab_size:
            self._build()

    # ------------------------------------------------------------------------------------------------- model
    def _build(self) -> None:
        hp = self.hparams
        if hp.hidden % hp.heads:
            raise UserFacingError(f"model.hidden ({hp.hidden}) must be a multiple of model.heads ({hp.heads})")
        self.encoder = HeroEncoder(hp.vocab_size, hp.feature_dim, hp.hidden, hp.cross_layers, hp.temporal_layers,
                                   hp.heads, hp.dropout, hp.max_frames)
        self.moment_head = MomentHead(hp.hidden)
        self.choice_head = ChoiceHead(hp.hidden, hp.dropout)
        self.decoder = CaptionDecoder(self.encoder.text, hp.decoder_layers, hp.heads, hp.dropout)

    def configure_model(self) -> None:
        """Size the model from the data (feature width, tokenizer vocabulary) when the config leaves them out;
        the sizes are saved in the hyperparameters, so checkpoints rebuild the same model."""
        if self.encoder is not None:
            return
        dm = self.trainer.datamodule if self._trainer is not None else None
        if dm is None:
            raise UserFacingError("model.feature_dim and model.vocab_size are needed when no data module is given")
        self.hparams.feature_dim = self.hparams.feature_dim or dm.feature_dim
        self.hparams.vocab_size = self.hparams.vocab_size or dm.tokenizer.vocab_size
        self._build()
        if self.hparams.init_from:
            self.load_weights(self.hparams.init_from)

    def load_weights(self, path: str) -> None:
        """Load the network weights of a checkpoint (AT→ST), not its optimiser or step."""
        if not Path(path).is_file():
            raise UserFacingError(f"model.init_from: checkpoint {path} not found")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
            raise UserFacingError(f"model.init_from {path}: not a Lightning checkpoint of this model (no "
                                  f"'state_dict'); give the last.ckpt of a run of python -m projects.value fit")
        state = ckpt["state_dict"]
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserFacingError(f"model.init_from {path}: the checkpoint's model differs (missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]}); it must come from the same model configuration")

    def encode(self, batch: dict, candidate: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder.encode_video(batch["frames"], batch["frame_mask"], batch["clip_tokens"],
                                         batch["clip_frames"], batch["clip_video"], candidate)

    # ---------------------------------------------------------------------------------------------- training
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        task = TASKS[batch["task"]]
        loss = getattr(self, f"_{task.kind}_loss")(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["frames"]))
        if self._trainer is not None and self.global_step % max(self.trainer.log_every_n_steps, 1) == 0:
            # straight to the loggers: a task absent from an epoch must not linger in the epoch's metrics
            for logger in self.loggers:
                logger.log_metrics({f"train/loss_{task.name}": float(loss.detach())}, step=self.global_step)
        return loss

    def _retrieval(self, batch: dict, lw: tuple[float, float], pool: int) -> tuple[torch.Tensor, ...]:
        hp = self.hparams
        f = self.encode(batch)
        q = self.encoder.encode_query(batch["query"])
        scores = self.moment_head.video_scores(q, f, batch["frame_mask"])
        same = batch["video_id"].unsqueeze(1) == batch["video_id"].unsqueeze(0)
        hard = pool if self.global_step >= hp.hard_negative_start else 0
        loss = retrieval_loss(scores, same, hp.margin, lw[0], lw[1], hard, hp.hard_weight)
        return loss, q, f

    def _vcmr_loss(self, batch: dict) -> torch.Tensor:
        hp = self.hparams
        loss, q, f = self._retrieval(batch, (hp.lw_neg_ctx, hp.lw_neg_q), hp.hard_pool)
        if float(torch.rand(())) >= hp.drop_svmr_prob:
            st, ed = self.moment_head.paired_span_logits(q, f, batch["frame_mask"])
            loss = loss + hp.lw_st_ed * span_loss(st, ed, batch["start"], batch["end"])
        return loss

    def _vr_loss(self, batch: dict) -> torch.Tensor:
        hp = self.hparams
        return self._retrieval(batch, (hp.vr_lw_neg, hp.vr_lw_neg), hp.vr_hard_pool)[0]

    def choice_logits(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """Candidate logits ``(B, K)`` and span logits ``(B, T)``; the batch's videos come repeated K times."""
        cands = batch["candidates"]
        b, k = cands.shape[:2]
        f = self.encode(batch, cands.flatten(0, 1))
        f = f.view(b, k, *f.shape[1:])
        return self.choice_head(f, batch["frame_mask"].view(b, k, -1)[:, 0])

    def _qa_loss(self, batch: dict) -> torch.Tensor:
        logits, st, ed = self.choice_logits(batch)
        spans = span_loss(st, ed, batch["start"], batch["end"]) / 2
        return choice_loss(logits, batch["answer"]) + self.hparams.qa_lw_st_ed * spans

    def caption_memory(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The moment's frames ``(B, M, H)`` and their padding mask: the decoder's memory."""
        f = self.encode(batch)
        moment = batch["moment"]
        m = int((moment[:, 1] - moment[:, 0]).max())
        idx = moment[:, :1] + torch.arange(m, device=f.device)
        pad = idx >= moment[:, 1:]
        memory = f.gather(1, idx.clamp(max=f.shape[1] - 1).unsqueeze(-1).expand(-1, -1, f.shape[-1]))
        return memory, pad

    def _caption_loss(self, batch: dict) -> torch.Tensor:
        memory, pad = self.caption_memory(batch)
        logits = self.decoder(batch["caption_in"], memory, pad)
        return caption_loss(logits, batch["caption_out"], self.hparams.label_smoothing)

    # -------------------------------------------------------------------------------------------- evaluation
    def _evaluate(self, phase: str, task: str, stage: str) -> None:
        dm = self.trainer.datamodule
        result = inference.evaluate_task(self, dm, task, phase, meteor=self.hparams.meteor)
        self.log(f"{stage}/{task}", result["score"], batch_size=1)
        for k, v in result["metrics"].items():
            self.log(f"{stage}/{task}_{k}", float(v), batch_size=1)
        self._scores = getattr(self, "_scores", {})
        self._scores[task] = result["score"]
        self._predictions = getattr(self, "_predictions", {})
        self._predictions[task] = result["predictions"]

    def validation_step(self, batch: tuple[str, str], batch_idx: int) -> None:
        self._evaluate(*batch, stage="val")

    def test_step(self, batch: tuple[str, str], batch_idx: int) -> None:
        self._evaluate(*batch, stage="test")

    def _epoch_end(self, stage: str, phase: str) -> None:
        scores = getattr(self, "_scores", {})
        if scores:
            self.log(f"{stage}/mean", sum(scores.values()) / len(scores), prog_bar=True, batch_size=1)
        path = self.trainer.datamodule.hparams.get("submission_path") if self.trainer.datamodule else None
        if stage == "test" and path and self.trainer.is_global_zero:
            from projects.value.submission import write_submission

            write_submission(path, {phase: self._predictions})
        self._scores, self._predictions = {}, {}

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val", "val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test", "test")

    # ------------------------------------------------------------------------------------------- optimiser
    def configure_optimizers(self):
        return self.optimizer_config(int(self.trainer.estimated_stepping_batches))

    def optimizer_config(self, total_steps: int) -> dict:
        """The optimiser and its per-step schedule over ``total_steps`` (what :meth:`configure_optimizers` returns
        for the trainer's step count; also what ``bench.py``'s bare loop steps, so both loops train alike)."""
        hp = self.hparams
        groups = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            head = not name.startswith("encoder.")
            decay = p.ndim > 1 and "norm" not in name
            groups.setdefault((head, decay), []).append(p)
        params = [{"params": ps, "lr": hp.lr * (hp.head_lr_mul if head else 1.0),
                   "weight_decay": hp.weight_decay if decay else 0.0} for (head, decay), ps in groups.items()]
        opt = torch.optim.AdamW(params, lr=hp.lr, betas=(0.9, 0.98))
        total = max(total_steps, 1)
        warmup = int(math.ceil(hp.warmup * total))

        def factor(step: int) -> float:  # StarterCode's warmup_linear
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(total - warmup, 1))

        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor), "interval": "step"}}

"""Inference of the HERO-style baseline into VALUE's submission formats, and its scoring by the official metrics.

Moment retrieval follows HERO's ``eval_vcmr``: video scores ``s(q, v) = max_t cos(q, f_t)`` against the whole
corpus of the split; the ``max_videos`` (100) best videos; in each, every span ``st <= ed`` with ``min_pred_l <=
ed - st < max_pred_l`` frames scored ``P_st(st) · exp(α s(q, v)) · P_ed(ed)`` (``α = 20``, start/end softmaxed over
the video's frames); the 100 best spans over all those videos, ``[video_idx, 1.5 st, 1.5 ed + 1.5, score]``
(no temporal NMS, as StarterCode's configs). Video retrieval: the 100 best videos. QA: the best candidate
(VIOLIN: true when the logit is positive). Captioning: greedy decoding.
"""

from __future__ import annotations

import torch

from projects.value import metrics
from projects.value.data import TaskData, collate_videos, pad_ids
from projects.value.release import FRAME_SECONDS
from projects.value.submission import load_ground_truth, score_task
from projects.value.tasks import TASKS


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def encode_corpus(module, data: TaskData, vids: list[str], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``f (V, T, H)`` and mask ``(V, T)`` of ``vids`` (padded to the longest)."""
    outs, masks = [], []
    for i in range(0, len(vids), batch_size):
        batch = _to(collate_videos([data.store[v] for v in vids[i:i + batch_size]]), module.device)
        outs.append(module.encode(batch))
        masks.append(batch["frame_mask"])
    t = max(o.shape[1] for o in outs)
    f = torch.cat([torch.nn.functional.pad(o, (0, 0, 0, t - o.shape[1])) for o in outs])
    mask = torch.cat([torch.nn.functional.pad(m, (0, t - m.shape[1])) for m in masks])
    return f, mask


@torch.no_grad()
def predict_retrieval(module, data: TaskData, batch_size: int = 32) -> dict:
    """``{"VCMR": [...], "VR": [...]}`` (moment retrieval) or ``{"VR": [...]}`` (video retrieval)."""
    hp = module.hparams
    vids = list(data.video_idx)
    index = torch.tensor([data.video_idx[v] for v in vids])
    f, mask = encode_corpus(module, data, vids, batch_size)
    head, moments = module.moment_head, data.task.kind == "vcmr"
    out = {"VR": []} | ({"VCMR": []} if moments else {})
    t = f.shape[1]
    length = torch.arange(t).view(1, -1) - torch.arange(t).view(-1, 1)  # ed - st
    allowed = ((length >= hp.min_pred_l) & (length < hp.max_pred_l)).to(f.device)
    for i in range(0, len(data.records), batch_size):
        recs = data.records[i:i + batch_size]
        q = module.encoder.encode_query(pad_ids([data.query_ids(r["desc"]) for r in recs]).to(module.device))
        scores = head.video_scores(q, f, mask)  # (Q, V)
        k = min(hp.max_videos, len(vids))
        top_s, top = scores.topk(k, dim=1)
        for j, r in enumerate(recs):
            out["VR"].append({"desc_id": r["desc_id"], "predictions": index[top[j].cpu()].tolist()})
        if not moments:
            continue
        for j, r in enumerate(recs):
            fv, mv = f[top[j]], mask[top[j]]  # (k, T, H)
            st, ed = head.paired_span_logits(q[j].expand(k, -1), fv, mv)
            p = st.softmax(-1).unsqueeze(2) * ed.softmax(-1).unsqueeze(1)  # (k, T, T)
            p = p * torch.exp(hp.q2c_alpha * top_s[j]).view(-1, 1, 1)
            valid = allowed & mv.unsqueeze(2) & mv.unsqueeze(1)
            p = p.masked_fill(~valid, -1.0).flatten()
            best_p, best = p.topk(min(metrics.MAX_PREDICTIONS, int(valid.sum())))
            v, rest = best // (t * t), best % (t * t)
            out["VCMR"].append({"desc_id": r["desc_id"], "predictions": [
                [int(index[top[j][a]]), round(float(s) * FRAME_SECONDS, 2), round((float(e) + 1) * FRAME_SECONDS, 2),
                 float(sc)] for a, s, e, sc in zip(v.tolist(), (rest // t).tolist(), (rest % t).tolist(),
                                                   best_p.tolist(), strict=True)]})
    return out


@torch.no_grad()
def predict_choices(module, data: TaskData, batch_size: int = 8) -> dict[str, int]:
    """``{str(id): answer}``."""
    out = {}
    for i in range(0, len(data.records), batch_size):
        batch = _to(data.batch(range(i, min(i + batch_size, len(data.records)))), module.device)
        logits = module.choice_logits(batch)[0]
        answers = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)
        for r, a in zip(data.records[i:i + batch_size], answers.tolist(), strict=True):
            out[str(r[data.task.id_key])] = int(a)
    return out


@torch.no_grad()
def predict_captions(module, data: TaskData, batch_size: int = 32) -> list[dict]:
    """JSON Lines records ``{"clip_id", "vid_name", "descs": [{"desc"}]}``."""
    hp, tok, out = module.hparams, data.tok, []
    for i in range(0, len(data.records), batch_size):
        recs = data.records[i:i + batch_size]
        videos = [data.store[r["vid_name"]] for r in recs]
        batch = _to(collate_videos(videos), module.device)
        batch["moment"] = data.moments(recs, torch.tensor([len(v["frames"]) for v in videos])).to(module.device)
        memory, pad = module.caption_memory(batch)
        ids = module.decoder.greedy(memory, pad, tok.cls, tok.sep, hp.max_caption_len)
        for r, seq in zip(recs, ids.tolist(), strict=True):
            out.append({"clip_id": r["clip_id"], "vid_name": r["vid_name"], "descs": [{"desc": tok.decode(seq)}]})
    return out


def evaluate_task(module, dm, name: str, phase: str, meteor: bool = False) -> dict:
    """Predict ``name`` on its split of leaderboard ``phase`` and score it: ``{"predictions" (submission format),
    "metrics", "score"}``. With ``data.eval_limit`` only the first records are predicted and scored."""
    task = TASKS[name]
    data = dm.task_data(name, task.splits[phase])
    gts = dm.__dict__.setdefault("_ground_truth", {})
    if (name, phase) not in gts:
        gts[(name, phase)] = load_ground_truth(task, phase, dm.data_root)
    gt = gts[(name, phase)]
    was_training = module.training
    module.eval()
    bs = module.hparams.eval_batch_size
    try:
        if task.kind in ("vcmr", "vr"):
            predictions = predict_retrieval(module, data, bs)
            key = "VCMR" if task.kind == "vcmr" else "VR"
            preds = {int(e["desc_id"]): e["predictions"] for e in predictions[key]}
            extra = {"VR": {int(e["desc_id"]): e["predictions"] for e in predictions["VR"]}}
        elif task.kind == "qa":
            predictions = predict_choices(module, data, max(1, bs // 4))
            preds, extra = {int(k): v for k, v in predictions.items()}, {}
        else:
            predictions = predict_captions(module, data, bs)
            preds, extra = {int(e["clip_id"]): e["descs"][0]["desc"] for e in predictions}, {}
    finally:
        module.train(was_training)
    answers = {k: v for k, v in gt.answers.items() if k in preds}
    sub = type(gt)(gt.task, gt.phase, gt.path, answers, gt.video_idx)
    scored = score_task(sub, preds, extra, meteor=meteor)
    return {"predictions": predictions, "metrics": scored, "score": metrics.task_score(task.kind, scored)}

"""The baseline's mechanisms against hand-computed values: losses, the encoder's batching, heads, decoding."""

import math

import pytest
import torch
from torch.nn import functional as F

from projects.value.data import collate_videos, frame_span
from projects.value.losses import caption_loss, choice_loss, hinge_ranking_loss, retrieval_loss, span_loss
from projects.value.nets import CaptionDecoder, ChoiceHead, HeroEncoder, MomentHead

D, H = 6, 16


def video(n_frames: int, clips: list[tuple[list[int], list[int]]], seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"vid": f"v{seed}", "frames": torch.randn(n_frames, D, generator=g), "clips": clips}


def encoder() -> HeroEncoder:
    torch.manual_seed(0)
    return HeroEncoder(vocab_size=50, feature_dim=D, hidden=H, cross_layers=1, temporal_layers=1, heads=2,
                       dropout=0.0, max_frames=20).eval()


def test_hinge_loss_by_hand():
    scores = torch.tensor([[0.5, 0.45], [0.2, 0.6]])
    same = torch.eye(2, dtype=torch.bool)
    # row 0: max(0, 0.1 + 0.45 - 0.5) = 0.05; row 1: max(0, 0.1 + 0.2 - 0.6) = 0
    assert hinge_ranking_loss(scores, same, margin=0.1).item() == pytest.approx(0.025)
    # columns (negative queries): col 0: max(0, 0.1 + 0.2 - 0.5) = 0; col 1: max(0, 0.1 + 0.45 - 0.6) = 0
    assert retrieval_loss(scores, same, 0.1, lw_neg_ctx=8.0, lw_neg_q=8.0).item() == pytest.approx(8 * 0.025)


def test_hinge_loss_skips_same_video_and_weighs_hard_negatives():
    scores = torch.tensor([[0.5, 0.9, 0.45, 0.48], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.0]])
    same = torch.eye(4, dtype=torch.bool)
    same[0, 1] = True  # another query of the same video: not a negative
    losses = torch.tensor([0.05, 0.08])  # negatives 2 and 3 of row 0
    row0 = hinge_ranking_loss(scores[:1, :], same[:1, :], 0.1)
    assert row0.item() == pytest.approx(losses.sum().item() / 2)
    hard = hinge_ranking_loss(scores[:1, :], same[:1, :], 0.1, hard_pool=1, hard_weight=10.0, easy_weight=0.1)
    assert hard.item() == pytest.approx((10 * 0.08 + 0.1 * 0.05) / 2)  # 0.48 is the hardest negative


def test_span_choice_and_caption_losses():
    st, ed = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    expected = -F.log_softmax(st, -1)[0, 0] - F.log_softmax(ed, -1)[0, 2]
    assert span_loss(st, ed, torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(expected.item())
    assert span_loss(st, ed, torch.tensor([-1]), torch.tensor([-1])).item() == 0.0
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    assert choice_loss(logits, torch.tensor([1])).item() == pytest.approx(-F.log_softmax(logits, -1)[0, 1].item())
    assert choice_loss(torch.tensor([[0.0]]), torch.tensor([1])).item() == pytest.approx(math.log(2))
    vocab, eps = 4, 0.1
    lg = torch.tensor([[[1.0, 2.0, 0.0, -1.0], [0.0, 0.0, 0.0, 3.0]]])
    targets = torch.tensor([[1, 0]])  # the second position is padding
    logp = F.log_softmax(lg[0, 0], -1)
    smoothed = (1 - eps) * -logp[1] + eps * -logp.mean()
    assert caption_loss(lg, targets, eps).item() == pytest.approx(smoothed.item(), rel=1e-5)
    assert vocab == lg.shape[-1]


def test_frame_span_labels():
    assert frame_span((0.12, 2.93), 12) == (0, 1)  # floor(0.08) = 0, ceil(1.95) - 1 = 1
    assert frame_span((3.0, 4.5), 12) == (2, 3)  # one frame long: HERO makes it two (ed >= st + 1)
    assert frame_span((16.0, 30.0), 12) == (10, 11)  # clipped to the video
    assert frame_span((16.0, 17.0), 11) == (10, 10)  # the last frame: ed clipped back to it


def test_collate_layout():
    a = video(3, [([5, 6], [0, 1]), ([7], [2])], 0)
    b = video(2, [([], [0, 1])], 1)
    batch = collate_videos([a, b])
    assert batch["frames"].shape == (2, 3, D) and batch["frame_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["clip_tokens"].tolist() == [[5, 6], [7, 0], [0, 0]]
    assert batch["clip_frames"].tolist() == [[0, 1], [2, -1], [3, 4]]  # video 1's frames start at 1 * T = 3
    assert batch["clip_video"].tolist() == [0, 0, 1]


def test_encoder_ignores_padding_and_batch_mates():
    enc = encoder()
    a = video(3, [([5, 6], [0, 1]), ([7], [2])], 0)
    b = video(5, [([8, 9, 10], [0, 1, 2]), ([], [3, 4])], 1)
    with torch.no_grad():
        alone = enc.encode_video(*collate_videos([a]).values())
        both = enc.encode_video(*collate_videos([a, b]).values())
        cand = torch.tensor([[3, 4, 0], [3, 9, 12]])
        alone_qa = enc.encode_video(*collate_videos([a]).values(), candidate=cand[:1])
        both_qa = enc.encode_video(*collate_videos([a, b]).values(), candidate=cand)
    torch.testing.assert_close(alone[0], both[0, :3], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone_qa[0], both_qa[0, :3], atol=1e-5, rtol=1e-4)  # candidate positions per clip
    assert both[0, 3:].abs().max() == 0  # padded frames are zero


def test_subtitles_reach_their_frames():
    enc = encoder()
    a = video(3, [([5, 6], [0, 1]), ([7], [2])], 0)
    a2 = {**a, "clips": [([5, 11], [0, 1]), ([7], [2])]}
    with torch.no_grad():
        f1 = enc.encode_video(*collate_videos([a]).values())
        f2 = enc.encode_video(*collate_videos([a2]).values())
    assert (f1 - f2).abs().max() > 1e-4


def test_candidate_conditions_every_frame():
    enc = encoder()
    a = video(3, [([5, 6], [0, 1]), ([7], [2])], 0)
    batch = collate_videos([a, a])
    cand = torch.tensor([[3, 4, 0], [3, 9, 12]])
    with torch.no_grad():
        f = enc.encode_video(*batch.values(), candidate=cand)
    assert ((f[0] - f[1]).abs().amax(-1) > 1e-5).all()


def test_moment_head_scores():
    q = torch.tensor([[1.0, 0.0]])
    f = torch.tensor([[[0.0, 1.0], [1.0, 1.0], [5.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    scores = MomentHead.video_scores(q, f, mask)
    # video 0: the third frame (cosine 1) is padding, so the best is cos 45° = 0.7071; video 1: cos 0 = 0
    assert scores.tolist()[0] == pytest.approx([1 / math.sqrt(2), 0.0], abs=1e-6)
    head = MomentHead(2)
    st, ed = head.paired_span_logits(q.expand(2, -1), f, mask)
    assert st.shape == (2, 3) and torch.isinf(st[0, 2]) and torch.isfinite(st[1]).all()


def test_choice_head_shapes_and_masking():
    torch.manual_seed(0)
    head = ChoiceHead(H, 0.0).eval()
    f = torch.randn(2, 5, 4, H)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    logits, st, ed = head(f, mask)
    assert logits.shape == (2, 5) and st.shape == (2, 4) and torch.isinf(ed[0, 3])
    f2 = f.clone()
    f2[0, :, 3] = 100.0  # a padded frame cannot change the answer
    torch.testing.assert_close(head(f2, mask)[0][0], logits[0])


def test_decoder_is_causal_and_greedy_stops():
    enc = encoder()
    dec = CaptionDecoder(enc.text, layers=1, heads=2, dropout=0.0).eval()
    memory, pad = torch.randn(1, 3, H), torch.zeros(1, 3, dtype=torch.bool)
    with torch.no_grad():
        a = dec(torch.tensor([[1, 5, 6, 7]]), memory, pad)
        b = dec(torch.tensor([[1, 5, 9, 9]]), memory, pad)
    torch.testing.assert_close(a[:, :2], b[:, :2])  # positions 0 and 1 cannot see tokens 2 and 3
    out = dec.greedy(memory, pad, bos=1, eos=int(a[0, 0].argmax()), max_len=5)
    assert out.shape[1] == 1  # the first token predicted is the end token

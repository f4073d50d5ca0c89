"""The HERO-style baseline of VALUE as plain ``nn.Module`` s (no Lightning here).

HERO (Li et al., EMNLP 2020; linjieli222/HERO, VALUE-Leaderboard/StarterCode) encodes a video with subtitles
in two stages:

* the **cross-modal transformer** (F-TRM, 6 layers in HERO) reads one *clip* at a time: the frames aligned with
  one subtitle sentence, then that sentence's tokens (each frame belongs to the one sentence it overlaps most;
  frames no sentence covers form clips with no tokens), so every frame is fused with what is said over it;
* the **temporal transformer** (T-TRM, 3 layers) reads the whole video's frames in order: input
  ``g_t = FFN(v_t) + F-TRM(frame t)`` plus a position per frame, output ``f_t``, one vector per frame.

Queries (retrieval descriptions) go through the cross-modal transformer as text alone, then HERO's query
encoder (a projection, a position embedding, one self-attention block) and its "modular" attention pooling,
giving ``q``. Multiple-choice candidates (question + answer, a statement, a future event) are instead appended
to every subtitle sentence and to the temporal transformer's input, so that the video is read once per
candidate, as HERO's QA model does. The caption decoder attends to the frames of the moment being described.

The paper's channel ablation (frames only, subtitles only) is made in the data (``data.channels``): the encoder
reads whatever clips and features it is given.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def init_bert(module: nn.Module, std: float = 0.02) -> None:
    """BERT/RoBERTa initialisation, as HERO inherits it: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Embedding | nn.Conv1d):
            nn.init.normal_(m.weight, std=std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def transformer(hidden: int, layers: int, heads: int, dropout: float) -> nn.TransformerEncoder:
    """BERT layers (post-LN, GELU, FFN 4x) as HERO's encoders use them."""
    layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class TextEmbedding(nn.Module):
    """``LN(W_tok[x_i] + P[i] + T[type])``, dropout: RoBERTa-style token embeddings (positions from 0 per
    sequence)."""

    def __init__(self, vocab_size: int, hidden: int, max_len: int, dropout: float):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.position = nn.Embedding(max_len, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.norm, self.drop = nn.LayerNorm(hidden), nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, offset: int | torch.Tensor = 0) -> torch.Tensor:
        """``offset``: where positions start, an int or one per row ``(N, 1)``."""
        pos = (torch.arange(ids.shape[-1], device=ids.device) + offset).clamp(max=self.position.num_embeddings - 1)
        return self.drop(self.norm(self.tokens(ids) + self.position(pos) + self.token_type.weight[0]))


class FrameEmbedding(nn.Module):
    """``LN(W LN(v_t) + P[k] + T[frame])``, dropout: HERO's frame embedding of the cross-modal transformer, where
    ``k`` is the frame's position within its clip."""

    def __init__(self, feature_dim: int, hidden: int, max_frames: int, dropout: float):
        super().__init__()
        self.feature_norm, self.proj = nn.LayerNorm(feature_dim), nn.Linear(feature_dim, hidden)
        self.position = nn.Embedding(max_frames, hidden)
        self.token_type = nn.Embedding(1, hidden)
        self.norm, self.drop = nn.LayerNorm(hidden), nn.Dropout(dropout)

    def forward(self, features: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(self.proj(self.feature_norm(features)) + self.position(position)
                                   + self.token_type.weight[0]))


class QueryEncoder(nn.Module):
    """HERO's query encoder over the cross-modal transformer's token outputs ``h_i``: ``x_i = ReLU(W LN(h_i))``,
    ``+ P[i]``, LN, one self-attention block, then modular attention pooling ``q = Σ_i softmax_i(w·x_i) x_i``."""

    def __init__(self, hidden: int, heads: int, max_len: int, dropout: float):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(hidden), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU())
        self.position = nn.Embedding(max_len, hidden)
        self.norm, self.drop = nn.LayerNorm(hidden), nn.Dropout(dropout)
        self.attention = transformer(hidden, 1, heads, dropout)
        self.pool = nn.Linear(hidden, 1, bias=False)

    def forward(self, hidden: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(hidden.shape[1], device=hidden.device).clamp(max=self.position.num_embeddings - 1)
        x = self.drop(self.norm(self.proj(hidden) + self.position(pos)))
        x = self.attention(x, src_key_padding_mask=pad)
        weights = self.pool(x).squeeze(-1).masked_fill(pad, float("-inf")).softmax(-1)
        return torch.einsum("nl,nlh->nh", weights, x)


class HeroEncoder(nn.Module):
    """Cross-modal transformer over clips, then temporal transformer over the video (module docstring).

    The batch layout is :func:`projects.value.data.collate_videos`'s: ``frames (B, T, D)``, ``frame_mask (B, T)``,
    ``clip_tokens (N, L)`` (0 = padding) and ``clip_frames (N, K)`` (indices into the flattened ``B*T`` frames,
    -1 = padding) for the ``N`` clips of the batch, ``clip_video (N)`` the video each clip belongs to.
    """

    def __init__(self, vocab_size: int, feature_dim: int, hidden: int = 768, cross_layers: int = 6,
                 temporal_layers: int = 3, heads: int = 12, dropout: float = 0.1, max_frames: int = 100,
                 max_text_len: int = 514):
        super().__init__()
        self.hidden = hidden
        self.text = TextEmbedding(vocab_size, hidden, max_text_len, dropout)
        self.frame = FrameEmbedding(feature_dim, hidden, max_frames, dropout)
        self.cross = transformer(hidden, cross_layers, heads, dropout)
        self.frame_transform = nn.Sequential(nn.LayerNorm(feature_dim), nn.Dropout(dropout),
                                             nn.Linear(feature_dim, hidden), nn.ReLU())
        self.temporal_position = nn.Embedding(max_frames, hidden)
        self.temporal_norm, self.temporal_drop = nn.LayerNorm(hidden), nn.Dropout(dropout)
        self.temporal = transformer(hidden, temporal_layers, heads, dropout)
        self.query = QueryEncoder(hidden, heads, max_text_len, dropout)
        init_bert(self)

    def encode_query(self, ids: torch.Tensor) -> torch.Tensor:
        """``q (N, H)`` for query token ids ``(N, L)`` (0 = padding)."""
        pad = ids == 0
        return self.query(self.cross(self.text(ids), src_key_padding_mask=pad), pad)

    def encode_video(self, frames: torch.Tensor, frame_mask: torch.Tensor, clip_tokens: torch.Tensor,
                     clip_frames: torch.Tensor, clip_video: torch.Tensor,
                     candidate: torch.Tensor | None = None) -> torch.Tensor:
        """Contextualised frames ``f (B, T, H)`` (padded frames are zero).

        ``candidate (B, C)``, when given, holds the token ids of one text per video (a question with one
        answer, a statement) that is appended to every clip of that video and to the temporal input."""
        b, t, _ = frames.shape
        frame_pad = clip_frames < 0
        flat = frames.reshape(b * t, -1)[clip_frames.clamp(min=0)]  # (N, K, D)
        k_pos = torch.arange(clip_frames.shape[1], device=frames.device)
        parts, pads = [self.frame(flat, k_pos)], [frame_pad]
        if clip_tokens.shape[1]:
            parts.append(self.text(clip_tokens))
            pads.append(clip_tokens == 0)
        if candidate is not None:
            cand = candidate[clip_video]
            # positions continue after each sentence's own tokens (not the batch's padded width)
            parts.append(self.text(cand, offset=(clip_tokens != 0).sum(1, keepdim=True)))
            pads.append(cand == 0)
        x, pad = torch.cat(parts, 1), torch.cat(pads, 1)
        pad[pad.all(1), 0] = False  # a clip of padding only would give NaN attention
        fused = self.cross(x, src_key_padding_mask=pad)[:, :clip_frames.shape[1]]
        keep = ~frame_pad
        out = torch.zeros(b * t, self.hidden, dtype=fused.dtype, device=fused.device)
        out = out.index_put((clip_frames[keep],), fused[keep]).reshape(b, t, -1)
        g = self.frame_transform(frames) + out + self.temporal_position(torch.arange(t, device=frames.device))
        g = self.temporal_drop(self.temporal_norm(g))
        pad = ~frame_mask
        if candidate is not None:  # HERO's QA: the candidate's (uncontextualised) embeddings follow the frames
            g = torch.cat([g, self.text(candidate)], 1)
            pad = torch.cat([pad, candidate == 0], 1)
        context = self.temporal(g, src_key_padding_mask=pad)[:, :t]
        return context * frame_mask.unsqueeze(-1)


class MomentHead(nn.Module):
    """Query-to-video matching and span localisation (HERO's VCMR head).

    Video score ``s(q, v) = max_t cos(q, f_t)``. Start/end: ``u_t = <W q, f_t>`` and two 1-D convolutions
    (kernel 5, one channel) over ``u`` give the start and end logits.
    """

    def __init__(self, hidden: int, kernel: int = 5):
        super().__init__()
        self.span_query = nn.Linear(hidden, hidden)
        self.start = nn.Conv1d(1, 1, kernel, padding=kernel // 2, bias=False)
        self.end = nn.Conv1d(1, 1, kernel, padding=kernel // 2, bias=False)
        init_bert(self)

    @staticmethod
    def video_scores(q: torch.Tensor, f: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """``(Q, V)``: ``max_t cos(q, f_t)`` over each video's real frames."""
        s = torch.einsum("qh,vth->qvt", F.normalize(q, dim=-1), F.normalize(f, dim=-1))
        return s.masked_fill(~frame_mask.unsqueeze(0), float("-inf")).amax(-1)

    def span_logits(self, q: torch.Tensor, f: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Start and end logits ``(Q, V, T)`` of every query in every video; padding at -inf.
        (Pass ``f[i:i+1]`` with ``q[i:i+1]`` pairs through :meth:`paired_span_logits` for the training pairs.)"""
        u = torch.einsum("qh,vth->qvt", self.span_query(q), f)
        flat = u.reshape(-1, 1, u.shape[-1])
        st, ed = self.start(flat).reshape(u.shape), self.end(flat).reshape(u.shape)
        mask = ~frame_mask.unsqueeze(0)
        return st.masked_fill(mask, float("-inf")), ed.masked_fill(mask, float("-inf"))

    def paired_span_logits(self, q: torch.Tensor, f: torch.Tensor,
                           frame_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Start and end logits ``(B, T)`` of query ``q[i]`` in its own video ``f[i]``."""
        u = torch.einsum("bh,bth->bt", self.span_query(q), f).unsqueeze(1)
        st, ed = self.start(u).squeeze(1), self.end(u).squeeze(1)
        return st.masked_fill(~frame_mask, float("-inf")), ed.masked_fill(~frame_mask, float("-inf"))


class ChoiceHead(nn.Module):
    """HERO's multiple-choice head over candidate-conditioned frames ``f^k_t`` (video read with candidate k):
    ``a_k = Σ_t softmax_t(w·f^k_t) f^k_t``, ``logit_k = MLP(a_k)`` (Linear 2H, GELU, LN, Linear 1). The span
    auxiliary pools the candidates per frame, ``p_t = Σ_k softmax_k(w'·f^k_t) f^k_t``, and ``MLP'(p_t)`` gives
    start and end logits over frames."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.pool, self.span_pool = nn.Linear(hidden, 1, bias=False), nn.Linear(hidden, 1, bias=False)
        self.classify = _mlp(hidden, 1, dropout)
        self.span = _mlp(hidden, 2, dropout)
        init_bert(self)

    def forward(self, f: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``f (B, K, T, H)`` -> choice logits ``(B, K)``, start and end logits ``(B, T)``."""
        mask = frame_mask.unsqueeze(1)  # (B, 1, T)
        w = self.pool(f).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(-1)
        logits = self.classify(torch.einsum("bkt,bkth->bkh", w, f)).squeeze(-1)
        c = self.span_pool(f).squeeze(-1).softmax(1)  # over candidates
        span = self.span(torch.einsum("bkt,bkth->bth", c, f))
        st, ed = span.unbind(-1)
        return logits, st.masked_fill(~frame_mask, float("-inf")), ed.masked_fill(~frame_mask, float("-inf"))


def _mlp(hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.LayerNorm(2 * hidden), nn.Dropout(dropout),
                         nn.Linear(2 * hidden, out))


class CaptionDecoder(nn.Module):
    """HERO's caption decoder: 2 transformer decoder layers over caption tokens, cross-attending to the frames
    ``f_t`` of the moment, with the word embedding shared with the encoder and a tied output layer:
    ``p(w_i | w_<i, f) = softmax(E h_i)``."""

    def __init__(self, embedding: TextEmbedding, layers: int, heads: int, dropout: float, max_len: int = 64):
        super().__init__()
        hidden = embedding.tokens.embedding_dim
        self.words = embedding.tokens
        self.position = nn.Embedding(max_len, hidden)
        self.norm_in = nn.LayerNorm(hidden)
        layer = nn.TransformerDecoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.out_bias = nn.Parameter(torch.zeros(embedding.tokens.num_embeddings))
        init_bert(self.decoder)
        init_bert(self.position)

    def forward(self, ids: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, L, vocab)`` for next-token prediction of ``ids (B, L)``."""
        n = ids.shape[1]
        pos = torch.arange(n, device=ids.device).clamp(max=self.position.num_embeddings - 1)
        causal = torch.ones(n, n, dtype=torch.bool, device=ids.device).triu(1)  # True: may not attend
        x = self.norm_in(self.words(ids) + self.position(pos))
        h = self.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=ids == 0,
                         memory_key_padding_mask=memory_pad)
        return h @ self.words.weight.T + self.out_bias

    @torch.no_grad()
    def greedy(self, memory: torch.Tensor, memory_pad: torch.Tensor, bos: int, eos: int,
               max_len: int) -> torch.Tensor:
        """Greedy decoding, as HERO's captioning inference; ``(B, <= max_len)`` ids after ``bos``, 0 after eos."""
        ids = torch.full((memory.shape[0], 1), bos, dtype=torch.long, device=memory.device)
        done = torch.zeros(memory.shape[0], dtype=torch.bool, device=memory.device)
        for _ in range(max_len):
            nxt = self(ids, memory, memory_pad)[:, -1].argmax(-1).masked_fill(done, 0)
            ids = torch.cat([ids, nxt.unsqueeze(1)], 1)
            done |= nxt == eos
            if bool(done.all()):
                break
        return ids[:, 1:]

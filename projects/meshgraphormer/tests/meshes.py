"""Small meshes for the tests: a closed grid-sphere (a UV sphere without degenerate poles)."""

import numpy as np


def uv_sphere(rings: int = 8, segments: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (2 + rings * segments, 3) on the unit sphere and triangles covering it."""
    verts = [[0.0, 0.0, 1.0]]
    for i in range(1, rings + 1):
        theta = np.pi * i / (rings + 1)
        for j in range(segments):
            phi = 2 * np.pi * j / segments
            verts.append([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    verts.append([0.0, 0.0, -1.0])
    faces = []
    ring = lambda i, j: 1 + i * segments + j % segments  # noqa: E731
    for j in range(segments):
        faces.append([0, ring(0, j), ring(0, j + 1)])
    for i in range(rings - 1):
        for j in range(segments):
            faces += [[ring(i, j), ring(i + 1, j), ring(i + 1, j + 1)],
                      [ring(i, j), ring(i + 1, j + 1), ring(i, j + 1)]]
    bottom = len(verts) - 1
    for j in range(segments):
        faces.append([bottom, ring(rings - 1, j + 1), ring(rings - 1, j)])
    return np.asarray(verts), np.asarray(faces)

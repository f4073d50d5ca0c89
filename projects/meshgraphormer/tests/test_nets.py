"""The network's mechanisms: graph convolution locality, the graph residual block, the camera, masking, shapes."""

import numpy as np
import pytest
import torch

from projects.meshgraphormer.mesh import adjacency_matrix, build_hierarchy, normalized_adjacency
from projects.meshgraphormer.nets import (
    GraphConvolution,
    GraphormerLayer,
    GraphResBlock,
    MeshGraphormer,
    orthographic_projection,
)
from projects.meshgraphormer.tests.meshes import uv_sphere


@pytest.fixture(scope="module")
def sphere_graph():
    verts, faces = uv_sphere(6, 8)
    return adjacency_matrix(faces, len(verts)), normalized_adjacency(adjacency_matrix(faces, len(verts)))


def test_graph_convolution_touches_only_mesh_neighbours(sphere_graph):
    adj, norm = sphere_graph
    torch.manual_seed(0)
    conv = GraphConvolution(4, 5, norm)
    x = torch.randn(2, adj.shape[0], 4)
    v = 7
    x2 = x.clone()
    x2[:, v] += torch.randn(4)
    changed = ((conv(x2) - conv(x)).abs().amax((0, 2)) > 1e-6).nonzero().flatten().tolist()
    expected = sorted([v] + adj[v].indices.tolist())
    assert changed == expected


def test_graph_convolution_formula_on_a_path():
    # path 0 - 1 - 2: A_hat = D^-1 (A + I)
    adj = adjacency_matrix(np.array([[0, 1, 1], [1, 2, 2]]), 3)
    conv = GraphConvolution(1, 1, normalized_adjacency(adj))
    with torch.no_grad():
        conv.weight.fill_(2.0)
        conv.bias.fill_(0.5)
    x = torch.tensor([[[1.0], [2.0], [4.0]]])
    expected = torch.tensor([[[(1 + 2) / 2 * 2 + 0.5], [(1 + 2 + 4) / 3 * 2 + 0.5], [(2 + 4) / 2 * 2 + 0.5]]])
    torch.testing.assert_close(conv(x), expected)


def test_graph_residual_block_is_residual_and_local(sphere_graph):
    adj, norm = sphere_graph
    torch.manual_seed(1)
    block = GraphResBlock(8, norm)
    with torch.no_grad():
        block.lin2.weight.zero_()
        block.lin2.bias.zero_()
    x = torch.randn(3, adj.shape[0], 8)
    torch.testing.assert_close(block(x), x)  # zero residual branch -> identity
    torch.manual_seed(1)
    block = GraphResBlock(8, norm)
    x2 = x.clone()
    x2[:, 3] += torch.randn(8)  # not a constant shift, which the pre-norm would erase
    changed = ((block(x2) - block(x)).abs().amax((0, 2)) > 1e-6).nonzero().flatten().tolist()
    assert changed == sorted([3] + adj[3].indices.tolist())


def test_layer_applies_the_graph_block_to_vertex_tokens_only(sphere_graph):
    adj, norm = sphere_graph
    n = adj.shape[0]
    torch.manual_seed(2)
    layer = GraphormerLayer(16, 4, 32, 0.0, GraphResBlock(16, norm), num_joints=3, num_vertices=n,
                            attention_dropout=0.0).eval()
    x = torch.randn(2, 3 + n + 5, 16)
    seen = []
    layer.graph.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    out = layer(x)
    h = layer.norm1(x + layer.attn(x, x, x, need_weights=False)[0])
    assert out.shape == x.shape and len(seen) == 1
    torch.testing.assert_close(seen[0], h[:, 3:3 + n])  # exactly the vertex tokens after attention
    with torch.no_grad():
        layer.graph.lin2.weight.add_(1.0)  # change what the graph block adds
    changed = (layer(x) - out).abs().amax((0, 2)) > 1e-6
    assert changed[3:3 + n].all() and not changed[:3].any() and not changed[3 + n:].any()


def test_orthographic_projection_on_a_known_point():
    point = torch.tensor([[[0.1, -0.2, 7.0]]])
    cam = torch.tensor([[2.0, 0.05, 0.3]])  # s (X + t): (2 * 0.15, 2 * 0.1)
    torch.testing.assert_close(orthographic_projection(point, cam), torch.tensor([[[0.3, 0.2]]]))


def tiny_model(mask_ratio=0.0):
    verts, faces = uv_sphere(6, 8)
    h = build_hierarchy(verts, faces, levels=2)
    coarse = h.downsample(torch.as_tensor(verts, dtype=torch.float32)[None], 2)[0]
    joints = torch.zeros(5, 3)
    model = MeshGraphormer(joints, coarse, normalized_adjacency(h.adjacency[-1]), list(reversed(h.sizes)),
                           backbone="small", backbone_width=16, input_dims=(24, 12), hidden_dims=(32, 16, 8),
                           layers=1, heads=2, grid_size=3, mask_ratio=mask_ratio)
    return model, h


def test_upsampling_shapes_through_the_hierarchy():
    model, h = tiny_model()
    out = model(torch.randn(2, 3, 32, 32))
    assert [v.shape[1] for v in out["vertices"]] == list(reversed(h.sizes))
    assert out["joints"].shape == (2, 5, 3) and out["camera"].shape == (2, 3)
    assert model.blocks[2].layers[0].graph is not None and model.blocks[0].layers[0].graph is None


def test_decoding_cached_features_equals_the_forward_pass_on_the_image():
    model, _ = tiny_model()
    model.eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        direct = model(images)
        cached = model.decode(*model.image_features(images))
        other = model.decode(*model.image_features(torch.randn(2, 3, 32, 32)))
    torch.testing.assert_close(cached["vertices"][-1], direct["vertices"][-1])
    torch.testing.assert_close(cached["camera"], direct["camera"])
    assert not torch.allclose(other["camera"], direct["camera"])  # the features do reach the output


def test_without_graph_blocks_no_layer_has_one():
    verts, faces = uv_sphere(6, 8)
    h = build_hierarchy(verts, faces, levels=1)
    coarse = h.downsample(torch.as_tensor(verts, dtype=torch.float32)[None], 1)[0]
    model = MeshGraphormer(torch.zeros(2, 3), coarse, normalized_adjacency(h.adjacency[-1]), list(reversed(h.sizes)),
                           backbone_width=16, input_dims=(24, 12), hidden_dims=(32, 16, 8), layers=1, heads=2,
                           graph_blocks=())
    assert all(layer.graph is None for b in model.blocks for layer in b.layers)


def test_masked_modelling_replaces_at_most_the_ratio_with_the_constant():
    model, _ = tiny_model(mask_ratio=0.5)
    tokens = torch.randn(64, model.num_joints + model.num_vertices, 7)
    torch.manual_seed(3)
    masked = model.mask_tokens(tokens)
    hit = (masked == 0.01).all(-1)
    vert_counts = hit[:, model.num_joints:].sum(1)
    assert vert_counts.max() <= int(0.5 * model.num_vertices) and vert_counts.max() > 0
    assert hit[:, : model.num_joints].sum(1).max() <= int(0.5 * model.num_joints)
    torch.testing.assert_close(masked[~hit], tokens[~hit])


def test_masking_only_in_training():
    model, _ = tiny_model(mask_ratio=1.0)
    calls = []
    model.mask_tokens = lambda t: calls.append(1) or t
    model.eval()(torch.randn(1, 3, 32, 32))
    assert calls == []
    model.train()(torch.randn(2, 3, 32, 32))
    assert calls == [1]


def test_bad_dimensions_are_reported():
    verts, faces = uv_sphere(6, 8)
    h = build_hierarchy(verts, faces, levels=1)
    coarse = h.downsample(torch.as_tensor(verts, dtype=torch.float32)[None], 1)[0]
    with pytest.raises(ValueError, match="input_dims"):
        MeshGraphormer(torch.zeros(2, 3), coarse, normalized_adjacency(h.adjacency[-1]), list(reversed(h.sizes)),
                       input_dims=(8,), hidden_dims=(32, 16, 8))


@pytest.fixture
def empty_weight_caches(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    return tmp_path / "hf"


def test_pretrained_timm_backbone_without_local_weights_stops_before_any_download(empty_weight_caches):
    from projects.meshgraphormer.nets import TimmBackbone
    from shared.errors import UserFacingError

    with pytest.raises(UserFacingError) as err:
        TimmBackbone("hrnet_w64", pretrained=True)
    message = str(err.value)
    assert "huggingface-cli download timm/hrnet_w64.ms_in1k model.safetensors" in message
    assert "--model.pretrained false" in message and "runs never download" in message


def test_pretrained_timm_backbone_loads_weights_from_the_local_cache(empty_weight_caches):
    import timm

    from projects.meshgraphormer.nets import TimmBackbone, timm_weights_file

    reference = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    snapshot = empty_weight_caches / "models--timm--resnet10t.c3_in1k" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (empty_weight_caches / "models--timm--resnet10t.c3_in1k" / "refs").mkdir()
    (empty_weight_caches / "models--timm--resnet10t.c3_in1k" / "refs" / "main").write_text("0123abcd")
    torch.save(reference.state_dict(), snapshot / "pytorch_model.bin")
    assert timm_weights_file("resnet10t") == str(snapshot / "pytorch_model.bin")
    backbone = TimmBackbone("resnet10t", pretrained=True)
    torch.testing.assert_close(backbone.net.state_dict(), reference.state_dict())

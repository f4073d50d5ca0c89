"""Mixing mechanisms against their formulas: the Mix Block's mask, the mask-λ loss, the EMA, where gradients
flow, and the hand-crafted policies' label weights."""

import numpy as np
import pytest
import torch

from projects.automix import mixing
from projects.automix.losses import mask_lambda_loss, mixup_cross_entropy
from projects.automix.module import MixupClassifier, ema_update, momentum_at
from projects.automix.nets import MixBlock


@pytest.mark.parametrize("lam_concat", [False, True])
def test_mask_and_complement_sum_to_one_everywhere(lam_concat):
    torch.manual_seed(0)
    block = MixBlock(32, reduction=2, lam_concat=lam_concat)
    z = torch.randn(6, 32, 4, 4) * 5
    mask = block(z, 0.3, torch.randperm(6), (16, 16))
    assert mask.shape == (6, 2, 16, 16)
    torch.testing.assert_close(mask.sum(1), torch.ones(6, 16, 16))
    assert (mask >= 0).all() and (mask <= 1).all()


def test_mix_block_matches_its_equation_by_hand():
    torch.manual_seed(1)
    block = MixBlock(4, reduction=2)
    z, index = torch.randn(2, 4, 2, 2), torch.tensor([1, 0])
    q = torch.einsum("oc,nchw->nohw", block.query.weight[:, :, 0, 0], z) + block.query.bias.view(1, -1, 1, 1)
    v = torch.einsum("oc,nchw->nohw", block.value.weight[:, :, 0, 0], z) + block.value.bias.view(1, -1, 1, 1)
    q, k, v = q.flatten(2), q[index].flatten(2), v[index].flatten(2)
    attn = torch.softmax(q.transpose(1, 2) @ k / (2 ** 0.5), dim=-1)
    m = torch.sigmoid((attn @ v.transpose(1, 2)).view(2, 1, 2, 2).repeat_interleave(2, 2).repeat_interleave(2, 3))
    torch.testing.assert_close(block(z, 0.5, index, (4, 4))[:, 1:], m)


def test_mask_loss_is_zero_within_the_margin_and_linear_outside():
    mask = torch.cat([torch.full((2, 1, 4, 4), 0.55), torch.full((2, 1, 4, 4), 0.45)], 1)
    assert mask_lambda_loss(mask, 0.55, 0.1) == 0
    assert mask_lambda_loss(mask, 0.62, 0.1) == 0          # |0.55 - 0.62| = 0.07 < 0.1
    assert float(mask_lambda_loss(mask, 0.80, 0.1)) == pytest.approx(0.15)  # 0.25 - 0.1


def test_ema_update_equals_its_formula():
    torch.manual_seed(0)
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for b, t, o in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)


def test_momentum_schedule():
    assert momentum_at(5, 100) == 0.999                          # held for the first 10 %
    assert momentum_at(100, 100) == pytest.approx(0.999999)      # ends at the end value
    mid = momentum_at(50, 100)
    assert mid == pytest.approx(0.999999 - (0.999999 - 0.999) * 0.5)
    assert momentum_at(50, 100, base=0.0) == 0.0                 # momentum-free


def _automix(**kw):
    torch.manual_seed(0)
    model = MixupClassifier(backbone="cifar_resnet18", width=0.125, num_classes=5, in_channels=1, policy="automix",
                            **kw)
    model.log = model.log_dict = lambda *a, **k: None
    return model


def test_gradients_reach_the_mix_block_only_through_the_ema_branch():
    model = _automix()
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 5, (8,))
    # the online branch: mask detached -> no gradient to the Mix Block
    index = torch.randperm(8)
    mask = model.automix_masks(x, 0.4, index).detach()
    mixed = x * mask[:, :1] + x[index] * mask[:, 1:]
    mixup_cross_entropy(model(mixed), y, index, 0.4).backward()
    assert all(p.grad is None for p in model.mix_block.parameters())
    assert all(p.grad is not None for p in model.backbone.parameters())
    model.zero_grad(set_to_none=True)
    # the Mix Block branch: through the frozen EMA network -> gradient to the block only
    mask = model.automix_masks(x, 0.4, index)
    mixed = x * mask[:, :1] + x[index] * mask[:, 1:]
    mixup_cross_entropy(model.head_k(model.backbone_k(mixed)), y, index, 0.4).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.mix_block.parameters())
    assert all(p.grad is None for p in (*model.backbone_k.parameters(), *model.head_k.parameters()))
    assert all(p.grad is None for p in model.backbone.parameters())


def _captured_step(model, x, y):
    parts = {}
    model.log_dict = lambda d, **k: parts.update(d)
    loss = model.training_step((x, y), 0)
    return loss, parts


def test_in_the_full_step_each_loss_reaches_only_its_own_parameters():
    model = _automix()
    torch.manual_seed(3)
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 5, (8,))
    loss, parts = _captured_step(model, x, y)
    block, online = list(model.mix_block.parameters()), list(model.backbone.parameters())

    def grads(value, params):
        return torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)

    # the online network's losses (mixed batch with the detached mask, clean batch) never reach the block
    assert all(g is None for g in grads(parts["train/loss_mix"] + parts["train/loss_one"], block))
    # the Mix Block's loss (through the frozen EMA network) never reaches the online backbone ...
    assert all(g is None for g in grads(parts["train/loss_mixblock"], online))
    # ... but does reach the block, and so does the mask-λ loss (when outside its margin)
    assert all(g is not None for g in grads(parts["train/loss_mixblock"], block))
    assert all(p.requires_grad is False for p in model.backbone_k.parameters())
    expected = (parts["train/loss_one"] + parts["train/loss_mix"] + parts["train/loss_mixblock"]
                + 0.1 * parts["train/loss_mask"])
    torch.testing.assert_close(loss, expected)


def test_extreme_lambda_falls_back_to_plain_mixup(monkeypatch):
    model = _automix()
    draws = iter([0.5, 0.05])  # λ_mb, λ_bb
    monkeypatch.setattr(mixing, "sample_lam", lambda alpha, rng: next(draws))
    seen = []
    original = model.backbone.forward
    model.backbone.forward = lambda x, *a, **k: seen.append(x.detach().clone()) or original(x, *a, **k)
    x, y = torch.randn(6, 1, 16, 16), torch.randint(0, 5, (6,))
    torch.manual_seed(5)
    _captured_step(model, x, y)
    mixed = seen[1]  # calls: clean batch, then the backbone's mixed batch
    torch.manual_seed(5)
    torch.randint(0, 2**31 - 1, ())                     # the step's rng seed draw
    torch.randperm(6)                                   # idx_mb
    idx_bb = torch.randperm(6)
    torch.testing.assert_close(mixed, 0.05 * x + 0.95 * x[idx_bb])


def test_ema_hook_updates_every_k_module_once_per_step():
    model = _automix(momentum=0.9, momentum_end=0.99)

    class FakeTrainer:
        estimated_stepping_batches = 100
        global_step = 50

    model._trainer = FakeTrainer()
    model.__dict__["_fake_step"] = 50
    type(model).global_step = property(lambda self: self.__dict__.get("_fake_step", 0))
    try:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))  # make online and EMA differ
        before = {n: t.clone() for n, t in model.state_dict().items() if "_k." in n and t.is_floating_point()}
        m = momentum_at(50, 100, 0.9, 0.99)
        model.on_train_batch_end(None, None, 0)
        state = model.state_dict()
        for name, old in before.items():
            if "running" in name or "num_batches" in name:
                torch.testing.assert_close(state[name], old)  # BN statistics are not averaged
                continue
            online = state[name.replace("backbone_k.", "backbone.").replace("head_k.", "head.")
                           .replace("head_one_k.", "head_one.")]
            torch.testing.assert_close(state[name], m * old + (1 - m) * online)
        after_once = {n: state[n].clone() for n in before}
        model.on_train_batch_end(None, None, 1)  # same optimiser step (gradient accumulation): no second update
        for name, value in after_once.items():
            torch.testing.assert_close(model.state_dict()[name], value)
    finally:
        del type(model).global_step


def test_momentum_free_variant_reads_the_current_online_network():
    model = _automix(momentum=0.0)
    with torch.no_grad():
        next(model.backbone.parameters()).add_(1.0)
    model.training_step((torch.randn(4, 1, 16, 16), torch.randint(0, 5, (4,))), 0)
    for k, q in zip(model.backbone_k.parameters(), model.backbone.parameters(), strict=True):
        torch.testing.assert_close(k, q)


def test_mixup_label_weight_is_the_pixel_proportion():
    x = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    mixed, lam = mixing.mixup(x, torch.tensor([1, 0]), 0.3)
    assert lam == 0.3 and float(mixed[0].mean()) == pytest.approx(0.7)  # share of sample 1 (ones) = 1 - λ


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("policy", ["cutmix", "saliencymix"])
def test_cut_policies_label_weight_equals_pixel_share(policy, seed):
    rng = np.random.default_rng(seed)
    x = torch.stack([torch.zeros(1, 28, 28), torch.ones(1, 28, 28)])
    lam0 = float(rng.beta(1, 1))
    fn = mixing.cutmix if policy == "cutmix" else mixing.saliencymix
    mixed, lam = fn(x, torch.tensor([1, 0]), lam0, rng)
    assert float(mixed[0].mean()) == pytest.approx(1 - lam)  # pixels pasted from the partner (ones)


def test_saliencymix_box_is_centred_on_the_salient_spot():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 32, 32) * 0.1  # textured background (a blank image has a degenerate spectrum)
    x[1, :, 20:24, 4:8] += 3.0           # the partner's salient blob, centre (21.5, 5.5)
    peak = divmod(int(mixing.spectral_residual_saliency(x[1]).argmax()), 32)
    assert abs(peak[0] - 21.5) <= 3 and abs(peak[1] - 5.5) <= 3
    mixed, lam = mixing.saliencymix(x, torch.tensor([1, 0]), 0.75, np.random.default_rng(0))
    torch.testing.assert_close(mixed[0, :, 20:24, 4:8], x[1, :, 20:24, 4:8])  # the blob was pasted
    assert lam == pytest.approx(1 - float((mixed[0] != x[0]).float().mean()))


@pytest.mark.parametrize("policy", ["none", "mixup", "cutmix", "manifold", "saliencymix"])
def test_every_policy_takes_a_step(policy):
    torch.manual_seed(0)
    model = MixupClassifier(backbone="cifar_resnet18", width=0.125, num_classes=5, in_channels=1, policy=policy)
    model.log = model.log_dict = lambda *a, **k: None
    loss = model.training_step((torch.randn(4, 1, 16, 16), torch.randint(0, 5, (4,))), 0)
    assert torch.isfinite(loss) and loss.requires_grad


def test_manifold_mixup_mixes_the_hidden_state():
    torch.manual_seed(0)
    model = MixupClassifier(backbone="cifar_resnet18", width=0.125, num_classes=5, in_channels=1).eval()
    x, index = torch.randn(4, 1, 16, 16), torch.tensor([1, 0, 3, 2])
    seen = {}

    def mix(h):
        seen["shape"] = h.shape
        return mixing.mixup(h, index, 1.0)[0]  # λ = 1: mixing changes nothing

    torch.testing.assert_close(model.backbone(x, mix_at=2, mix=mix), model.backbone(x))
    assert seen["shape"][1] == model.backbone.out_channels[1]


def test_mask_loss_weight_schedule():
    model = _automix(mask_loss_anneal=True)

    class FakeTrainer:
        estimated_stepping_batches = 100

    model._trainer = FakeTrainer()
    for step, expected in ((0, 0.1), (50, 0.05), (100, 0.0)):
        type(model).global_step = property(lambda self, s=step: s)
        try:
            assert model.mask_loss_weight() == pytest.approx(expected)
        finally:
            del type(model).global_step
    assert _automix().mask_loss_weight() == 0.1  # constant by default (CIFAR)


def test_mix_block_diagnostics_tell_uniform_from_structured_attention():
    torch.manual_seed(0)
    block = MixBlock(16, reduction=2)
    z, index = torch.randn(4, 16, 4, 4) * 3, torch.tensor([1, 2, 3, 0])
    torch.nn.init.zeros_(block.query.weight)  # q = k = bias: every logit equal, attention exactly uniform
    flat = block.diagnostics(z, 0.5, index, (8, 8))
    assert flat["logit_spread"] == pytest.approx(0.0, abs=1e-7) and flat["query_norm"] == 0.0
    assert flat["mask_spatial_std"] == pytest.approx(0.0, abs=1e-6)  # mask = σ(mean of v) at every pixel
    torch.nn.init.normal_(block.query.weight, std=1.0)
    torch.nn.init.normal_(block.value.weight, std=1.0)
    sharp = block.diagnostics(z, 0.5, index, (8, 8))
    logits = block.attention_logits(z, z[index])
    assert sharp["logit_spread"] == pytest.approx(float(logits.std(-1).mean()), rel=1e-5) and sharp["logit_spread"] > 1
    assert sharp["query_norm"] == pytest.approx(float(block.query.weight.norm()))
    assert sharp["mask_spatial_std"] > 0.05


@pytest.mark.parametrize("policy", ["automix", "mixup"])
def test_heads_start_at_openmixups_normal_init_unless_asked_otherwise(policy):
    torch.manual_seed(0)
    kw = dict(backbone="cifar_resnet18", width=0.25, num_classes=10, in_channels=1, policy=policy)
    model = MixupClassifier(**kw)
    heads = [model.head] + ([model.head_one, model.head_k, model.head_one_k] if policy == "automix" else [])
    for head in heads:
        assert head.weight.std().item() == pytest.approx(0.01, rel=0.1) and (head.bias == 0).all()
    if policy == "automix":  # the EMA heads start as copies of the online heads
        torch.testing.assert_close(model.head_k.weight, model.head.weight)
    default = MixupClassifier(**kw, head_init_std=None).head  # PyTorch's U(-1/√d, 1/√d), non-zero bias
    assert default.weight.abs().max().item() > 0.05 and (default.bias != 0).any()

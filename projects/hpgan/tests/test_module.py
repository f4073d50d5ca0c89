"""One HP-GAN training step updates each network as the official schedule does."""

import torch

from projects.hpgan.module import HPGAN


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_one_step_runs_nine_critic_one_quality_and_two_generator_updates():
    torch.manual_seed(0)
    model = HPGAN(hidden=16, embed=8, z_dim=8, critic_embed=8, critic_hidden=16)
    optimisers = model.configure_optimizers()
    calls = {"generator": 0, "critic": 0, "quality": 0}
    for name, optimiser in zip(calls, optimisers, strict=True):
        step = optimiser.step

        def counted(*args, _step=step, _name=name, **kwargs):
            calls[_name] += 1
            return _step(*args, **kwargs)

        optimiser.step = counted
    model.optimizers = lambda: optimisers
    model.manual_backward = lambda loss: loss.backward()
    model.log_dict = lambda *a, **k: None
    before = {name: _snapshot(getattr(model, name)) for name in calls}
    model.training_step({"poses": torch.randn(4, 30, 15, 3) * 100}, 0)
    assert calls == {"generator": 2, "critic": 9, "quality": 1}
    assert all(_changed(before[name], getattr(model, name)) for name in calls)


def test_the_quality_loss_does_not_reach_the_generator():
    torch.manual_seed(0)
    model = HPGAN(hidden=16, embed=8, z_dim=8, critic_embed=8, critic_hidden=16)
    from projects.hpgan import losses
    from projects.hpgan.nets import sample_z

    real = torch.randn(2, 30, 15, 3)
    with torch.no_grad():  # as training_step builds the fake sequences for the critic and quality steps
        fake = torch.cat([real[:, :10], model.generator(real[:, :10], sample_z(2, 8), 20)], dim=1)
    losses.quality_loss(model.quality(real), model.quality(fake)).backward()
    assert all(p.grad is None for p in model.generator.parameters())
    assert any(p.grad is not None for p in model.quality.parameters())

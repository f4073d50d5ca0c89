"""The generator's use of z, shapes at paper size, and the classifier's transfer of the critic's weights."""

import torch

from projects.hpgan.nets import ActionClassifier, Seq2SeqGenerator, SequenceCritic, sample_z


def test_different_z_give_different_futures_and_the_same_z_the_same():
    torch.manual_seed(0)
    generator = Seq2SeqGenerator(hidden=32, embed=16, z_dim=8)
    for p in generator.parameters():  # the official initialisation is tiny (std 0.001): widen it to see z
        torch.nn.init.normal_(p, std=0.3)
    observed = torch.randn(3, 10, 15, 3)
    z1, z2 = sample_z(3, 8), sample_z(3, 8)
    a, b, c = generator(observed, z1, 20), generator(observed, z1, 20), generator(observed, z2, 20)
    assert a.shape == (3, 20, 15, 3)
    assert torch.equal(a, b) and (a - c).abs().amax() > 1e-3


def test_deterministic_variant_ignores_z_and_z_is_uniform_in_range():
    generator = Seq2SeqGenerator(hidden=16, embed=8, z_dim=4, use_z=False)
    observed = torch.randn(2, 10, 15, 3)
    assert torch.equal(generator(observed, sample_z(2, 4), 5), generator(observed, None, 5))
    z = sample_z(10000, 4, scale=0.1, generator=torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.1 and z.min() < -0.09 and z.max() > 0.09


def test_paper_size_parameter_counts():
    generator, critic = Seq2SeqGenerator(num_joints=25), SequenceCritic(num_joints=25)
    # a 2-layer GRU: per layer three gates of input and recurrent weights and two biases
    gru = 3 * (128 * 1024 + 1024 * 1024 + 2 * 1024) + 3 * (1024 * 1024 + 1024 * 1024 + 2 * 1024)
    expected = (75 * 128 + 128) + 2 * gru + 2 * 128 * 1024 + 1024 * 128 + (1024 * 75 + 75)
    assert sum(p.numel() for p in generator.parameters()) == expected
    assert sum(p.numel() for p in critic.parameters()) == 75 * 128 + 3840 * 512 + 512 + 2 * (512 * 512 + 512) + 513
    assert critic(torch.randn(2, 30, 25, 3)).shape == (2,)


def test_classifier_starts_from_the_critic_or_from_scratch():
    torch.manual_seed(0)
    critic = SequenceCritic(hidden=32, layers=2)
    transferred = ActionClassifier(6, hidden=32, layers=2, critic=critic)
    scratch = ActionClassifier(6, hidden=32, layers=2)
    poses = torch.randn(4, 30, 15, 3)
    assert torch.equal(transferred.trunk.features(poses), critic.features(poses))
    assert not torch.equal(scratch.trunk.features(poses), critic.features(poses))
    assert transferred(poses).shape == (4, 6)
    frozen = ActionClassifier(6, hidden=32, layers=2, critic=critic, freeze=True)
    assert [n for n, p in frozen.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]

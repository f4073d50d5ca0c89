"""Loader order depends on (seed, epoch) only, never on the global random generator."""

import torch

from shared.sampling import EpochShuffleSampler, make_loader


def test_permutation_is_a_function_of_seed_and_epoch():
    sampler = EpochShuffleSampler(10, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(10))
    torch.manual_seed(123)  # the global generator has no say
    assert list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and second == torch.randperm(10, generator=torch.Generator().manual_seed(4)).tolist()


def test_iterating_the_loader_leaves_the_global_generator_untouched():
    loader = make_loader(list(range(8)), batch_size=3, shuffle=True, seed=0)
    state = torch.random.get_rng_state()
    batches = [b.tolist() for b in loader]
    assert torch.equal(state, torch.random.get_rng_state())
    assert len(batches) == 2 and all(len(b) == 3 for b in batches)  # last partial batch dropped
    assert [b.tolist() for b in make_loader(list(range(5)), 2, shuffle=False)] == [[0, 1], [2, 3], [4]]

"""The run's random streams, all from one seed tree: (seed, purpose, keys) -> a 63-bit seed.

Scheme 2 (every run started since the seed tree): NumPy's `SeedSequence(entropy=seed,
spawn_key=(purpose, *keys))` hashes the triple, so no two streams of different seeds, purposes, rounds
or epochs coincide (a sweep's seed 0 no longer draws seed 2's dense init as its round-1 reinit).
Scheme 1 (runs started before): the old arithmetic offsets, kept so that `resume`, `branch` and
`analyze` of such a run draw the streams it was started with. A run's config records its scheme
(`runtime.seed_scheme`); a stored config without it is scheme 1 (`core.config.stored_config`).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch

SEED_SCHEME = 2  # what new runs use
LEGACY_SEED_SCHEME = 1  # runs whose stored config has no runtime.seed_scheme


class Purpose(IntEnum):
    """What a stream is for; its value is the first spawn key, so never renumber one."""

    INIT = 1  # the dense initialisation
    FRESH_INIT = 2  # a round's fresh init (scratch mode, the reinit branch); key: round
    DATA_ORDER = 3  # one epoch's order and augmentation; keys: round, epoch, branch stream
    NOISE = 4  # the noisy labels (seed: noise.seed or runtime.seed)
    RANDOM_SCORES = 5  # random pruning scores: one draw for every round, so the masks are nested
    SCORE_BATCH = 6  # the training batch of gradient scores; key: round
    RANDOM_MASKS = 7  # the random-prune branch's shuffled masks; key: round
    DIRECTION = 8  # the flatness analysis' filter-normalised direction; key: round
    BN_SAMPLES = 9  # the training samples batch-norm statistics are recomputed on


# Scheme 1: the formulas every run before the seed tree was trained with.
_LEGACY = {
    Purpose.INIT: lambda seed: seed,
    Purpose.FRESH_INIT: lambda seed, round_index: seed * 1000 + round_index + 1,
    Purpose.DATA_ORDER: lambda seed, round_index, epoch, stream: (
        ((seed * 1_000_003 + round_index) * 10_007 + epoch) * 7 + stream),
    Purpose.NOISE: lambda seed: seed,
    Purpose.RANDOM_SCORES: lambda seed, round_index: seed * 7919 + round_index,
    Purpose.SCORE_BATCH: lambda seed, round_index: seed * 7919 + round_index,
    Purpose.RANDOM_MASKS: lambda seed, round_index: seed * 7919 + round_index + 104_729,
    Purpose.DIRECTION: lambda seed, round_index: seed * 7907 + round_index,
    Purpose.BN_SAMPLES: lambda seed: seed,
}


def stream_seed(seed: int, purpose: Purpose, *keys: int, scheme: int = SEED_SCHEME) -> int:
    """The seed of one stream: a hash of (seed, purpose, keys) below 2**63 (scheme 2), or the old formula
    (scheme 1; a purpose added since has no old formula and is drawn from the tree in both)."""
    if scheme not in (LEGACY_SEED_SCHEME, SEED_SCHEME):
        raise ValueError(f"unknown seed scheme {scheme}")
    if scheme == LEGACY_SEED_SCHEME and purpose in _LEGACY:
        if purpose is Purpose.RANDOM_SCORES and not keys:
            raise ValueError("scheme 1 drew random scores per round: give the round")
        return _LEGACY[purpose](seed, *keys)
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(int(purpose), *keys))
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, purpose: Purpose, *keys: int, scheme: int = SEED_SCHEME) -> torch.Generator:
    """A CPU torch.Generator seeded for one stream."""
    return torch.Generator().manual_seed(stream_seed(seed, purpose, *keys, scheme=scheme))


def pruning_generator(seed: int, round_index: int, method: str, scheme: int = SEED_SCHEME) -> torch.Generator:
    """What round `round_index`'s pruning draws from: random scores (scheme 2: the same draw every round, as
    the official `random_mask_seed`, so one-shot random masks are nested), or the gradient scores' batch."""
    if scheme == SEED_SCHEME and method == "random":
        return generator(seed, Purpose.RANDOM_SCORES, scheme=scheme)
    purpose = Purpose.RANDOM_SCORES if method == "random" else Purpose.SCORE_BATCH
    return generator(seed, purpose, round_index, scheme=scheme)

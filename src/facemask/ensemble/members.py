"""The ensemble bundle's members, assembled from the trained checkpoints: apart from
facemask.ensemble.bundle, since reading a checkpoint's settings imports torch, which the rules that
only read a bundle (and their environment, envs/cpu.yaml) do without."""

from collections.abc import Mapping, Sequence
from pathlib import Path

from facemask.config.sections import ImageCache
from facemask.ensemble.age_cuts import read_age_cuts
from facemask.ensemble.bundle import BundleMember
from facemask.ensemble.vote import Vote, fold_weights
from facemask.model.classifier import checkpoint_meta
from facemask.utils.files import Member


def trained_members(
    members: Sequence[Member],
    checkpoints: Sequence[Path],
    vote: Vote,
    cache: ImageCache,
    age_cut_files: Mapping[str, Path],
) -> tuple[BundleMember, ...]:
    """Each (model, fold) of `members` trained, as the bundle keeps it (BundleMember.of): its
    checkpoint, its weight in `vote` (its model's shared among its folds), the `cache` its inputs
    come from, and a years head's fitted cuts (from `age_cut_files`, by model)."""
    weights = fold_weights(members, vote.weights)
    return tuple(
        BundleMember.of(
            member,
            checkpoint,
            checkpoint_meta(checkpoint),
            weight,
            cache,
            read_age_cuts(age_cut_files[member.model]) if member.model in age_cut_files else None,
        )
        for member, checkpoint, weight in zip(members, checkpoints, weights, strict=True)
    )

"""Snakemake job: the ensemble bundle (ensemble/ensemble.json): the members' checkpoints with their
digests and settings, the vote (its weights given or fitted, and what else it fits on the
out-of-fold predictions: temperatures, weights per task, a stacker), the TTA,
and the class offsets that match the eval vote to the training class shares."""

import json
from pathlib import Path

import pandas as pd

from facemask.bundle import BundleMember, BundleSettings, write_bundle
from facemask.files import read_member_tables
from facemask.logs import log, run_job
from facemask.models import checkpoint_meta
from facemask.oof_fit import fit_vote, oof_by_model
from facemask.settings import ImageCache, TestTimeAugmentation, typed
from facemask.vote import (
    Vote,
    class_share_offsets,
    class_shares_to_match,
    fold_weights,
    log_probabilities,
    vote_probabilities,
)


def main():
    params = snakemake.params
    eval_logits = read_member_tables(params.members, snakemake.input.eval_logits)
    members = list(eval_logits)
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"]
    shares = class_shares_to_match(snakemake.input.train_index, params.match_class_shares)
    vote = Vote(params.weights)
    if params.fit_weights or params.vote["combine"] != "mean" or params.vote["temperature"]:
        oof = oof_by_model(read_member_tables(params.members, snakemake.input.oof_logits))
        given = None if params.fit_weights else params.weights
        vote = fit_vote(oof, shares, given, params.age_cut_models, **params.vote).vote
        log.info("vote fitted to the out-of-fold predictions: %s", vote.as_config())
    offsets = None
    if shares is not None:
        offsets = class_share_offsets(
            log_probabilities(vote_probabilities(eval_logits, vote, image_ids)), shares
        )
        log.info(
            "class offsets matching the eval vote to the training class shares: %s", offsets.round(3).tolist()
        )
    age_cuts = {
        model: json.loads(Path(path).read_text())["age_cuts"]
        for model, path in zip(params.age_cut_models, snakemake.input.age_cuts, strict=True)
    }
    settings = BundleSettings(
        vote=vote,
        weights_fitted=params.fit_weights,
        tta=typed(TestTimeAugmentation, params.tta),
        cache=typed(ImageCache, params.cache),
        age_bins=params.age_bins,
        age_cuts_of_models=age_cuts,
        offsets_fitted_on=f"the soft vote of {len(image_ids)} eval photos",
    )
    checkpoints = [Path(checkpoint) for checkpoint in snakemake.input.checkpoints]
    trained = [
        BundleMember(member, checkpoint, checkpoint_meta(checkpoint), weight)
        for member, checkpoint, weight in zip(
            members, checkpoints, fold_weights(members, vote.weights), strict=True
        )
    ]
    write_bundle(snakemake.output[0], trained, settings, offsets)
    log.info("ensemble bundle of %d members written to %s", len(members), snakemake.output[0])


run_job(main, snakemake.log[0])

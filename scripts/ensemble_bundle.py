"""Snakemake job: the ensemble bundle (ensemble/ensemble.json): the members' checkpoints with their
digests and settings, the vote (its weights given or fitted, and what else it fits on the
out-of-fold predictions: temperatures, weights per task, a stacker), the TTA,
and the class offsets that match the eval vote to the training class shares."""

from pathlib import Path

import pandas as pd

from facemask.classes.decision import class_counts_to_match, class_share_offsets, log_probabilities
from facemask.config.sections import ImageCache, TestTimeAugmentation
from facemask.config.typed import typed
from facemask.data.faces import found_on
from facemask.ensemble.bundle import Bundle
from facemask.ensemble.fit import fit_vote, oof_by_model
from facemask.ensemble.members import trained_members
from facemask.ensemble.spec import VoteSpec
from facemask.ensemble.vote import vote_probabilities
from facemask.utils.files import read_member_tables
from facemask.utils.logs import log, run_job


def main():
    params = snakemake.params
    eval_logits = read_member_tables(params.members, snakemake.input.eval_logits)
    members = list(eval_logits)
    image_ids = pd.read_csv(snakemake.input.index, dtype=str)["ImageID"]
    spec = VoteSpec.from_config(params.vote)
    shares = class_counts_to_match(snakemake.input.train_index, spec.match_class_shares)
    if spec.needs_fit:
        oof = oof_by_model(read_member_tables(params.members, snakemake.input.oof_logits))
        vote = fit_vote(oof, spec, shares).vote
        log.info("vote fitted to the out-of-fold predictions: %s", vote.as_config())
    else:
        vote = spec.unfitted()
    offsets = None
    if shares is not None:
        offsets = class_share_offsets(
            log_probabilities(vote_probabilities(eval_logits, vote, image_ids)), shares
        )
        log.info(
            "class offsets matching the eval vote to the training class shares: %s", offsets.round(3).tolist()
        )
    bundle = Bundle(
        members=trained_members(
            members,
            [Path(checkpoint) for checkpoint in snakemake.input.checkpoints],
            vote,
            typed(ImageCache, params.cache),
            dict(zip(spec.age_cut_models, map(Path, snakemake.input.age_cuts), strict=True)),
        ),
        vote=vote,
        weights_fitted=spec.fit_weights,
        tta=typed(TestTimeAugmentation, params.tta),
        age_bins=tuple(params.age_bins),
        class_offsets=None if offsets is None else tuple(offsets.tolist()),
        offsets_fitted_on=f"the soft vote of {len(image_ids)} eval photos",
        face_device=found_on(pd.read_csv(snakemake.input.faces)) if snakemake.input.faces else "cpu",
    )
    bundle.write(snakemake.output[0])
    log.info("ensemble bundle of %d members written to %s", len(members), snakemake.output[0])


run_job(main, snakemake.log[0])

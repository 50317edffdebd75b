"""Snakemake job: one rung of a sweep's successive halving: the rung's variants ranked by
out-of-fold macro F1 on the sweep's folds, the best `keep` share marked to go on."""

import pandas as pd

from facemask.classes.decision import class_counts_to_match
from facemask.config.sweeps import Sweep
from facemask.config.typed import typed
from facemask.ensemble.fit import oof_by_model
from facemask.report.sweeps import ranked_blocks
from facemask.utils.files import read_member_tables, write_csv
from facemask.utils.logs import log, run_job


def main():
    params = snakemake.params.sweep
    sweep, rung = typed(Sweep, params["sweep"]), int(snakemake.wildcards.rung)
    tables = oof_by_model(read_member_tables(snakemake.params.members, snakemake.input.oof_logits))
    shares = class_counts_to_match(snakemake.input.train_index, params["match_class_shares"])
    variant_of = {sweep.rung_block(variant, rung): variant for variant in sweep.variants}
    ranked = [
        (variant_of[block], block, f1) for block, f1 in ranked_blocks(tables, shares, params["cut_models"])
    ]
    going_on = set(sweep.survivors([variant for variant, _, _ in ranked]))
    table = pd.DataFrame(ranked, columns=["variant", "block", "macro_f1"])
    table["goes_on"] = table["variant"].isin(going_on)
    write_csv(table, snakemake.output[0])
    log.info(
        "sweep %s, rung %d: %d of %d variants go on\n%s", sweep.name, rung, len(going_on), len(table), table
    )


run_job(main, snakemake.log[0])

"""Snakemake job: a sweep's ranking (ranking.csv, ranking.md) by out-of-fold macro F1 with person
bootstrap intervals of the gain over the base, and the winner as a model block (winner.yaml)."""

import pandas as pd

from facemask.classes.decision import class_shares_to_match
from facemask.config.sweeps import Sweep, settings_text, winner_text
from facemask.config.typed import typed
from facemask.ensemble.fit import oof_by_model
from facemask.report.sweeps import stopped_rows, sweep_ranking
from facemask.utils.files import read_member_tables, write_csv, write_text
from facemask.utils.logs import log, run_job


def main():
    params = snakemake.params.sweep
    sweep = typed(Sweep, params["sweep"])
    members = [tuple(member) for member in snakemake.params.members]
    tables = oof_by_model(read_member_tables(snakemake.params.members, snakemake.input.oof_logits))
    seconds: dict[str, float] = {}
    for (block, _), benchmark in zip(members, snakemake.input.benchmarks, strict=True):
        seconds[block] = seconds.get(block, 0.0) + float(pd.read_csv(benchmark, sep="\t")["s"].iloc[0])
    shares = class_shares_to_match(snakemake.input.train_index, params["match_class_shares"])
    settings = {block: settings_text(sweep, block) for block in tables if block != sweep.base}
    ranking = sweep_ranking(tables, sweep.base, settings, seconds, shares, params["cut_models"])
    ranking = pd.concat([ranking, stopped_rows(sweep, [pd.read_csv(path) for path in snakemake.input.rungs])])
    ranking["rank"] = ranking["rank"].astype("Int64")
    write_csv(ranking, snakemake.output.csv)
    folds = sorted({fold for _, fold in members})
    header = (
        f"Sweep {sweep.name}: {len(sweep.variants)} variants of {sweep.base}, out of fold on folds {folds}"
    )
    markdown = f"{header}\n\n{ranking.to_markdown(index=False, floatfmt='.4f')}\n"
    write_text(markdown, snakemake.output.markdown)
    winner = ranking[ranking["verdict"] != "base"].iloc[0]
    summary = (
        f"winner {winner['block']} ({winner['settings']}), out-of-fold macro F1 {winner['macro_f1']:.4f}, "
        f"{winner['gain']:+.4f} [{winner['low']:+.4f}, {winner['high']:+.4f}] over {sweep.base}: "
        f"{winner['verdict']}"
    )
    write_text(winner_text(sweep, winner["block"], params["blocks"], summary), snakemake.output.winner)
    log.info("%s\n%s", markdown, summary)


run_job(main, snakemake.log[0])

"""Snakemake job: a sweep's ranking (ranking.csv, ranking.md) by out-of-fold macro F1 with person
bootstrap intervals of the gain over the base that hold for all its variants together, the
winner's gain on folds that did not pick it, and the winner as a model block (winner.yaml)."""

import pandas as pd

from facemask.classes.decision import class_counts_to_match
from facemask.config.sweeps import Sweep, settings_text, winner_text
from facemask.config.typed import typed
from facemask.ensemble.fit import oof_by_model
from facemask.report.sweeps import stopped_rows, sweep_ranking
from facemask.utils.files import read_member_tables, write_csv, write_text
from facemask.utils.logs import log, run_job


def variant_seconds(sweep: Sweep, members: list[tuple], benchmarks: list[str]) -> dict[str, float]:
    """The train jobs' time of each variant (its rungs' and its own, over folds) and of the base,
    from Snakemake's benchmark files of the (block, fold) `members`."""
    seconds: dict[str, float] = {}
    for (block, _), benchmark in zip(members, benchmarks, strict=True):
        name = block if block == sweep.base else sweep.variant_of(block)
        seconds[name] = seconds.get(name, 0.0) + float(pd.read_csv(benchmark, sep="\t")["s"].iloc[0])
    return seconds


def main():
    params = snakemake.params.sweep
    sweep = typed(Sweep, params["sweep"])
    members = [tuple(member) for member in snakemake.params.members]
    rung_members = [tuple(member) for member in snakemake.params.rung_members]
    tables = oof_by_model(read_member_tables(snakemake.params.members, snakemake.input.oof_logits))
    seconds = variant_seconds(
        sweep, [*members, *rung_members], [*snakemake.input.benchmarks, *snakemake.input.rung_benchmarks]
    )
    rung_seconds = variant_seconds(sweep, rung_members, snakemake.input.rung_benchmarks)
    shares = class_counts_to_match(snakemake.input.train_index, params["match_class_shares"])
    settings = {block: settings_text(sweep, block) for block in tables if block != sweep.base}
    ranked = sweep_ranking(
        tables, sweep.base, settings, seconds, shares, params["cut_models"], seed=snakemake.params.seed
    )
    stopped = stopped_rows(sweep, [pd.read_csv(path) for path in snakemake.input.rungs], seconds)
    ranking = pd.concat([ranked.table, stopped], ignore_index=True)
    ranking["rank"] = ranking["rank"].astype("Int64")
    write_csv(ranking, snakemake.output.csv)
    folds = sorted({fold for _, fold in members})
    variants_minutes = sum(seconds[variant] for variant in sweep.variants if variant in seconds) / 60
    rungs = f" ({sum(rung_seconds.values()) / 60:.1f} min of it the rungs')" if rung_seconds else ""
    header = (
        f"Sweep {sweep.name}: {len(sweep.variants)} variants of {sweep.base}, out of fold on folds {folds}; "
        f"the variants' train jobs took {variants_minutes:.1f} min{rungs}"
    )
    notes = "\n\n".join([header, *ranked.notes()])
    markdown = f"{notes}\n\n{ranking.to_markdown(index=False, floatfmt='.4f')}\n"
    write_text(markdown, snakemake.output.markdown)
    winner = ranking[ranking["verdict"] != "base"].iloc[0]
    honest = (
        f"; on folds that did not pick it {ranked.honest.text()}"
        if ranked.honest
        else "; optimistic (one fold: none left to score it on)"
    )
    summary = (
        f"winner {winner['block']} ({winner['settings']}), out-of-fold macro F1 {winner['macro_f1']:.4f}, "
        f"{winner['gain']:+.4f} [{winner['low']:+.4f}, {winner['high']:+.4f}] over {sweep.base} "
        f"(simultaneous over {ranked.family} variants): {winner['verdict']}{honest}"
    )
    write_text(winner_text(sweep, winner["block"], params["blocks"], summary), snakemake.output.winner)
    log.info("%s\n%s", markdown, summary)


run_job(main, snakemake.log[0])

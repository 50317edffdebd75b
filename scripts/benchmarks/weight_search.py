"""The fitted vote's weight search at the competition's size (`ensemble: {fit_weights: true}`): the
greedy ensemble selection of ensemble.weights.select_weights against the 0.1 grid on the simplex it replaced,
each with the class-share offsets of its time, timed as the workflow runs the fit (cv_summary:
a fit on all out-of-fold photos and one per held-out fold; ensemble_bundle fits on all once more).

The out-of-fold logits are synthetic: people x 7 photos (5 masked, 1 incorrect, 1 without), the
competition's rough gender and age shares, folds by person. Each model is a noisy copy of the
truth: a logit gains 5 when its class's mask is the photo's, 3 for its gender and 2 for its age
band (mask easy, age hard), plus noise shared by all models (the photos hard for all) and noise of
the model's own, of its own scale (models of many qualities, the better and worse ones mixed)."""

import contextlib
import itertools
import math
import time
from unittest import mock

import numpy as np
import pandas as pd
from scipy.special import softmax

from facemask.classes import decision
from facemask.classes.labels import LOGIT_COLUMNS, NUM_CLASSES, decode_class, encode_class
from facemask.classes.scores import macro_f1
from facemask.ensemble import fit as vote_fit
from facemask.ensemble import vote as ensemble_vote
from facemask.ensemble import weights as vote_weights
from facemask.ensemble.spec import VoteSpec

#: each model's own noise scale, in the order models join (the first 3, 5, 8 are voted)
NOISE_SCALES = (1.5, 2.1, 1.8, 2.4, 1.6, 2.2, 1.9, 2.3)
#: the scale of the noise all models share, and what a logit gains for the photo's mask, gender, age band
SHARED_NOISE, SIGNAL = 1.0, {"mask": 5.0, "gender": 3.0, "age": 2.0}
#: the competition's rough shares: female, and the age bands <30, 30-59, 60+
FEMALE, AGE_BANDS = 0.61, (0.47, 0.46, 0.07)
#: the search before: a grid of this step on the simplex
GRID_STEP = 0.1


def synthetic_oof(people: int, folds: int, models: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Out-of-fold tables of `models` models (logit columns, label, fold) over people x 7 photos."""
    rng = np.random.default_rng(seed)
    gender, age = (rng.random(people) < FEMALE).astype(int), rng.choice(3, size=people, p=AGE_BANDS)
    fold = rng.permutation(np.arange(people) % folds)
    tasks = {
        "mask": np.tile([0, 0, 0, 0, 0, 1, 2], people),
        "gender": np.repeat(gender, 7),
        "age": np.repeat(age, 7),
    }
    labels, classes = encode_class(*tasks.values()), decode_class(np.arange(NUM_CLASSES))
    truth = sum(
        SIGNAL[task] * (codes[:, None] == class_codes[None, :])
        for (task, codes), class_codes in zip(tasks.items(), classes, strict=True)
    )
    shared = rng.normal(scale=SHARED_NOISE, size=truth.shape)
    return {
        f"m{i}": pd.DataFrame(
            truth + shared + rng.normal(scale=NOISE_SCALES[i], size=truth.shape), columns=list(LOGIT_COLUMNS)
        ).assign(label=labels, fold=np.repeat(fold, 7))
        for i in range(models)
    }


def grid_fit_weights(member_logits, labels, shares=None, step: float = GRID_STEP) -> dict[str, float]:
    """The search before greedy selection: every point of a `step` grid on the simplex; ties to
    the most even weights."""
    names = list(member_logits)
    probabilities = np.stack(
        [softmax(np.asarray(member_logits[name], dtype=np.float64), axis=1) for name in names]
    )
    ticks = round(1 / step)
    best, best_key = None, None
    for combo in itertools.product(range(ticks + 1), repeat=len(names) - 1):
        if sum(combo) > ticks:
            continue
        weights = np.array([*combo, ticks - sum(combo)], dtype=float) / ticks
        predicted = decision.decide_classes(np.tensordot(weights, probabilities, axes=1), shares)
        key = (macro_f1(labels, predicted), -np.abs(weights - 1 / len(names)).sum())
        if best_key is None or key > best_key:
            best, best_key = weights, key
    return {name: float(weight) for name, weight in zip(names, best, strict=True)}


def full_argmax_offsets(log_probabilities, shares, steps: int = 300, step_size: float = 0.2):
    """The class-share offsets before: every photo decided again at each of the `steps` steps."""
    floor = 0.5 / len(log_probabilities)
    wanted = np.log(np.maximum(shares, floor))
    offsets, best, best_gap = np.zeros(log_probabilities.shape[1]), None, np.inf
    for _ in range(steps):
        predicted = decision.class_shares((log_probabilities + offsets).argmax(axis=1))
        gap = np.abs(predicted - shares).sum()
        if gap < best_gap:
            best, best_gap = offsets.copy(), gap
        offsets += step_size * (wanted - np.log(np.maximum(predicted, floor)))
    return best


#: search name -> (weight search, class-share offsets) patched into facemask.ensemble and classes
SEARCHES = {
    "grid 0.1, offsets before": (grid_fit_weights, full_argmax_offsets),
    "grid 0.1, offsets now": (grid_fit_weights, decision.class_share_offsets),
    "greedy 20 rounds, offsets now": (vote_weights.select_weights, decision.class_share_offsets),
}


def grid_votes(models: int, folds: int) -> int:
    """The votes the grid scores in the fit on all photos and the one per held-out fold."""
    return math.comb(round(1 / GRID_STEP) + models - 1, models - 1) * (folds + 1)


def fitted_vote(by_model: dict[str, pd.DataFrame], search: str) -> dict:
    """The fitted vote as the workflow runs it, with `search`: seconds, votes scored, its
    cross-fitted out-of-fold macro F1 and the weights fitted on all photos."""
    fit, offsets = SEARCHES[search]
    labels = next(iter(by_model.values()))["label"]
    shares, scored, decide = decision.class_shares(labels), [], decision.decide_classes
    counted = lambda *args: scored.append(1) or decide(*args)  # noqa: E731
    patched = [
        (vote_fit, "select_weights", fit),
        (decision, "class_share_offsets", offsets),
        (decision, "decide_classes", counted),
        (vote_weights, "decide_classes", counted),
    ]
    with contextlib.ExitStack() as stack:
        for module, name, replacement in patched:
            stack.enter_context(mock.patch.object(module, name, replacement))
        started = time.perf_counter()
        spec = VoteSpec({}, fit_weights=True)
        plan = vote_fit.fit_vote(by_model, spec, shares)
        probabilities = vote_fit.cross_fitted_vote(by_model, spec, shares)
        seconds = time.perf_counter() - started
    weights = " ".join(f"{weight:.2f}" for weight in plan.weights.values())
    return {
        "seconds": seconds,
        "votes": len(scored),
        "weights": weights,
        "macro_f1": macro_f1(labels, decide(probabilities, shares)),
    }


def offsets_alone(log_probabilities: np.ndarray, shares: np.ndarray, repeats: int) -> dict:
    """Seconds of one class-share offset fit, before and now (the best of `repeats`), on one vote;
    raises unless both give the same offsets."""
    seconds = {}
    for name, offsets in (("before", full_argmax_offsets), ("now", decision.class_share_offsets)):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            found = offsets(log_probabilities, shares)
            times.append(time.perf_counter() - started)
        seconds[name], seconds[f"{name}_offsets"] = min(times), found
    if not np.array_equal(seconds.pop("before_offsets"), seconds.pop("now_offsets")):
        raise AssertionError("the class-share offsets differ from those before")
    return {
        "search": "class-share offsets of the equal vote, before / now",
        "figure": "measured",
        "s_per_vote": f"{seconds['before']:.3f} / {seconds['now']:.3f}",
    }


def bench_weight_search(args) -> list[dict]:
    """Minutes and cross-fitted OOF macro F1 of the fitted vote with each search at each number of
    models in `args.weight_models`. A grid runs up to `args.grid_models` models with the offsets
    before and `args.grid_now_models` with today's; beyond, its minutes are extrapolated: its last
    measured seconds per vote x the votes its grid scores. For the quality, also the vote with
    equal weights and the best model alone (nothing fitted: no cross-fitting needed)."""
    rows, per_vote = [], {}
    limits = {"grid 0.1, offsets before": args.grid_models, "grid 0.1, offsets now": args.grid_now_models}
    for models in args.weight_models:
        by_model = synthetic_oof(args.oof_people, args.oof_folds, models)
        labels = by_model["m0"]["label"]
        shares = decision.class_shares(labels)
        logits = [table[list(LOGIT_COLUMNS)].to_numpy() for table in by_model.values()]
        base = {"models": models, "photos": len(labels), "folds": args.oof_folds}
        for name, votes in (
            ("equal weights", [ensemble_vote.soft_vote(logits)]),
            ("best model alone", [softmax(member, axis=1) for member in logits]),
        ):
            f1 = max(macro_f1(labels, decision.decide_classes(voted, shares)) for voted in votes)
            rows.append({**base, "search": name, "figure": "measured", "macro_f1": round(f1, 4)})
        rows.append(
            {
                **base,
                **offsets_alone(
                    decision.log_probabilities(ensemble_vote.soft_vote(logits)), shares, args.repeats
                ),
            }
        )
        for search in SEARCHES:
            if models <= limits.get(search, models):
                result = fitted_vote(by_model, search)
                per_vote[search] = result["seconds"] / result["votes"]
                rows.append(
                    {
                        **base,
                        "search": search,
                        "figure": "measured",
                        "votes": result["votes"],
                        "s_per_vote": round(per_vote[search], 4),
                        "minutes": round(result["seconds"] / 60, 2),
                        "macro_f1": round(result["macro_f1"], 4),
                        "weights": result["weights"],
                    }
                )
            elif search in per_vote:
                votes = grid_votes(models, args.oof_folds)
                rows.append(
                    {
                        **base,
                        "search": search,
                        "figure": "extrapolated",
                        "votes": votes,
                        "s_per_vote": round(per_vote[search], 4),
                        "minutes": round(per_vote[search] * votes / 60, 1),
                    }
                )
    return rows

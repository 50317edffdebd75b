"""The test suite's time by test, grouped by what each test checks, from the output of `pytest
--durations=0` (one line per setup, call and teardown), as Markdown: a summary by group, then one
row per test function (its parametrizations added up). A setup of over SHARED seconds builds a
shared run (the demo, the tiny run, the SLURM run) and is counted on a row of its own in the group
`shared runs`, named after the test that paid for it. Given two outputs, the columns are before
and after.

    python scripts/tools/test_durations.py before.log [after.log] [--wall BEFORE AFTER]
"""

import argparse
import re
from collections import defaultdict

#: a setup longer than this (seconds) builds a shared run
SHARED = 20.0
#: a line of `pytest --durations=0`: seconds, phase, file, test (with its parameters and xdist group)
DURATION = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+tests/(\w+)\.py::(\w+)")

#: what a test file checks (test_<name>.py); a test whose name says it learns is `learning`
GROUPS = {
    "wiring": (
        "workflow",
        "option_matrix",
        "predict_many",
        "predict_command",
        "config",
        "block_checks",
        "envs",
        "tracking",
        "benchmark",
    ),
    "faults": ("bad_input", "faults", "io_faults", "photo_modes"),
    "style": ("style",),
    "cluster": ("slurm",),
    "scale": ("scale",),
}
ORDER = ("shared runs", "learning", "wiring", "faults", "units", "style", "cluster", "scale")


def group_of(file: str, test: str) -> str:
    """The group of the test function `test` of the test module `file` (test_<name>)."""
    if test.startswith("(shared run)"):
        return "shared runs"
    if "learn" in test or file == "test_demo":
        return "learning"
    name = file.removeprefix("test_")
    return next((group for group, files in GROUPS.items() if name in files), "units")


def read_times(path: str) -> dict[tuple[str, str], tuple[int, float]]:
    """{(file, test function): (cases, seconds)} of a `pytest --durations=0` output; a long setup
    under (file, '(shared run) built for <test>')."""
    times: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0.0])
    with open(path) as lines:
        for line in lines:
            match = DURATION.match(line)
            if not match:
                continue
            seconds, phase, file, test = float(match[1]), match[2], match[3], match[4]
            if phase == "setup" and seconds > SHARED:
                times[file, f"(shared run) built for {test}"][0] += 1
                times[file, f"(shared run) built for {test}"][1] += seconds
                continue
            times[file, test][0] += phase == "call"
            times[file, test][1] += seconds
    return {key: (cases, seconds) for key, (cases, seconds) in times.items()}


def tables(runs: list[dict], wall: list[str] | None) -> str:
    """The summary by group and the table of every test shown, in Markdown."""
    keys = sorted({key for run in runs for key in run}, key=lambda key: (ORDER.index(group_of(*key)), key))
    heads = ["before", "after"] if len(runs) == 2 else ["time"]
    lines = ["| group | " + " | ".join(f"s {head}" for head in heads) + " |", "|---|" + "---:|" * len(runs)]
    for group in ORDER:
        sums = [sum(s for key, (_, s) in run.items() if group_of(*key) == group) for run in runs]
        lines.append(f"| {group} | " + " | ".join(f"{seconds:.0f}" for seconds in sums) + " |")
    lines.append(
        "| all (sum of test times) | "
        + " | ".join(f"{sum(s for _, s in run.values()):.0f}" for run in runs)
        + " |"
    )
    if wall:
        lines.append("| wall time of the run | " + " | ".join(wall) + " |")
    lines += ["", "| group | file | test | " + " | ".join(f"n {h} | s {h}" for h in heads) + " |"]
    lines.append("|---|---|---|" + "---:|---:|" * len(runs))
    for file, test in keys:
        cells = []
        for run in runs:
            cases, seconds = run.get((file, test), (0, None))
            cells += [str(cases) if cases else "-", "-" if seconds is None else f"{seconds:.1f}"]
        lines.append(f"| {group_of(file, test)} | {file} | {test} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "outputs", nargs="+", help="one or two outputs of pytest --durations=0: before [after]"
    )
    parser.add_argument("--wall", nargs="+", help="the wall time of each run, as it should read")
    args = parser.parse_args()
    print(tables([read_times(path) for path in args.outputs[:2]], args.wall))


if __name__ == "__main__":
    main()

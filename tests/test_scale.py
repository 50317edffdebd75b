"""Load: the data check and the image cache keep their memory flat however many photos there are
(scripts/scale_test.py, figures in docs/benchmarks.md). Reduced sizes by default; in CI (CI=true)
a quarter and a sixteenth of the competition's size (675 and 170 people x 7 photos + 3,150 and 790
eval photos, 7,875 and 1,980 photos at 384 x 512), decoded into a 96 x 96 cache: the growth
between them is measured over 5,895 photos, where a photo held in memory, 27 KB, stands well
above the growth allowed per photo. The full size, 31,500 photos, is the benchmark's
(`python scripts/scale_test.py`; minutes, and 2.5 GB of disk)."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.scale

SCRIPT = ROOT / "scripts" / "scale_test.py"
#: (training people, eval photos) of the two runs compared
SIZES = ((170, 790), (675, 3150)) if os.environ.get("CI") == "true" else ((10, 30), (50, 150))
#: the cache's height x width in the test: a photo held in memory would cost 27 KB, against the
#: 8 KB a photo allowed below
CACHE_SIDE = 96
#: what a job's peak memory may grow by per photo (its index rows); one decoded photo is 576 KB,
#: 36 KB at the check's 1/4 scale
GROWTH_PER_PHOTO_KB = 8


def scale_run(tmp_path, people: int, eval_photos: int) -> dict:
    out = tmp_path / f"{people}.json"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--people",
            str(people),
            "--eval-photos",
            str(eval_photos),
            "--drawn-people",
            "10",
            "--size",
            f"{CACHE_SIDE}x{CACHE_SIDE}",
            "--tmpdir",
            str(tmp_path),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_check_and_the_cache_hold_a_few_photos_in_memory_however_many_there_are(tmp_path):
    small, large = (scale_run(tmp_path, *size) for size in SIZES)
    assert large["photos"] == SIZES[1][0] * 7 + SIZES[1][1]
    assert large["cache_mb"] == round(large["photos"] * CACHE_SIDE**2 * 3 / 2**20)  # every photo, once
    for stage in ("check", "cache"):
        growth = (
            (large[stage]["peak_rss_mb"] - small[stage]["peak_rss_mb"])
            * 1024
            / (large["photos"] - small["photos"])
        )
        assert growth < GROWTH_PER_PHOTO_KB, (
            f"{stage}: {small[stage]} at {small['photos']} photos, {large[stage]} at {large['photos']}"
        )

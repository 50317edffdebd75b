"""The face finder at the competition's size: photos/s of finding the face of every 384 x 512 photo
(JPEG decoding included, `--workers` threads), by the cache job's former way (each decoding thread
runs MTCNN on one photo at a time: search side 160, smallest face 0.15 of it, channels-first) and by
ours (facemask.data.faces.find_faces: photos decoded by the threads, MTCNN over each batch of photos at
once, search side 128, smallest face 0.2 of it, channels-last), and the photos each finds a face in;
the competition's 31,500 photos extrapolated from each rate."""

import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from benchmarks.input_pipeline import full_size_data

from facemask.data.faces import DETECTORS, MTCNN_THRESHOLDS, find_faces, search_image, torch_threads
from facemask.data.photo_index import index_train_photos, read_photo

COMPETITION_PHOTOS = 31_500


def former_way(data: Path, paths: list[str], threads: int) -> list[bool]:
    """Whether a face is found in each photo, as the cache job found them before: each decoding
    thread searched one photo at a time (one MTCNN per thread, torch on one thread each)."""
    from facenet_pytorch import MTCNN

    local = threading.local()

    def find(path: str) -> bool:
        if not hasattr(local, "mtcnn"):
            local.mtcnn = MTCNN(min_face_size=24, thresholds=list(MTCNN_THRESHOLDS), device="cpu")
        search, _, _ = search_image(np.asarray(read_photo(data / path)), 160)
        with torch_threads(1):
            boxes, _ = local.mtcnn.detect(search)
        return boxes is not None

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(find, paths))


def bench_faces(args) -> list[dict]:
    """The former per-photo face search against the batched one, same photos, alternating."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.source) if args.source else full_size_data(Path(tmp) / "data", None, args.people)
        paths = list(index_train_photos(data, (30, 60))["path"])[: args.people * 7]
        rows = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            former = former_way(data, paths, args.workers)
            middle = time.perf_counter()
            ours = find_faces(data, paths, "mtcnn", args.workers, fallback=False)
            rows.append(
                {
                    "baseline": len(paths) / (middle - started),
                    "ours": len(paths) / (time.perf_counter() - middle),
                    "baseline_found": float(np.mean(former)),
                    "ours_found": float(ours["detector"].isin(DETECTORS).mean()),
                }
            )
    best = {key: max(row[key] for row in rows) for key in ("baseline", "ours")}
    return [
        {
            "benchmark": "face finder (MTCNN)",
            "photos": len(paths),
            "source": args.source or "demo generator, 384 x 512",
            "threads": args.workers,
            "baseline_photos_per_s": round(best["baseline"], 1),
            "ours_photos_per_s": round(best["ours"], 1),
            "ratio": round(best["ours"] / best["baseline"], 2),
            "baseline_found": round(rows[-1]["baseline_found"], 3),
            "ours_found": round(rows[-1]["ours_found"], 3),
            "competition_minutes_baseline": round(COMPETITION_PHOTOS / best["baseline"] / 60, 1),
            "competition_minutes_ours": round(COMPETITION_PHOTOS / best["ours"] / 60, 1),
            "runs": rows,
        }
    ]

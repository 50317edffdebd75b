"""The prepared-image cache, batch augmentation on the device, and one GPU per job."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw
from timm.optim import create_optimizer_v2

from facemask.config.blocks import Augmentation, Mixing
from facemask.config.sections import Crop
from facemask.data.augment import BatchAugment, BatchTransform, batch_transform
from facemask.data.cache import CENTRE_WIDTH, crop_box, prepare_photos
from facemask.data.faces import DETECTORS, FaceFinder, Mtcnn, find_faces, place_missed_faces
from facemask.data.loader import CachedPhotos, load_cache, photo_loader
from facemask.data.photo_index import index_train_photos, read_photo
from facemask.model.classifier import create_classifier, model_data_config
from facemask.model.heads import head_of
from facemask.model.inference import predict_logits
from facemask.train.epoch import TrainStep, create_mixup, train_one_epoch
from facemask.utils.errors import DataError, PipelineError

from .conftest import PORTRAIT, model_settings

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
#: the face crop of the config's defaults
FACE = Crop("face", 1.3, "mtcnn")
#: where the portrait's face is, located by hand (x, y in pixels)
FACE_POINTS = {"left eye": (218, 200), "right eye": (302, 197), "nose tip": (258, 240), "mouth": (258, 282)}


def test_the_cache_holds_every_photo_upright_and_resized_in_index_order(demo_dir, demo_cache):
    index = index_train_photos(demo_dir, (30, 60))
    pixels = np.load(demo_cache["train"], mmap_mode="r")
    assert pixels.shape == (len(index), 36, 36, 3) and pixels.dtype == np.uint8
    for row in (0, 7, len(index) - 1):
        expected = np.asarray(
            read_photo(demo_dir / index["path"][row]).resize((36, 36), Image.Resampling.BICUBIC)
        )
        assert np.abs(pixels[row].astype(int) - expected).mean() < 2, row


def masked_portrait() -> Image.Image:
    """The portrait with a drawn surgical mask from below the nose bridge to the chin, as the
    competition's masks and utkmask-dev's drawn ones hide the face."""
    photo = read_photo(PORTRAIT).copy()
    ImageDraw.Draw(photo).polygon(
        [(178, 225), (338, 225), (350, 290), (300, 345), (215, 345), (168, 290)], fill=(170, 200, 225)
    )
    return photo


@pytest.mark.parametrize("detector", DETECTORS)
def test_the_face_crop_finds_the_face_of_a_real_portrait_and_centres_the_crop_on_it(tmp_path, detector):
    (left, top, width, height), found_by = FaceFinder(detector).find(np.asarray(read_photo(PORTRAIT)))
    assert found_by == detector
    assert all(left < x < left + width and top < y < top + height for x, y in FACE_POINTS.values())
    assert 100 < width < 300  # her face (about 180 px wide), not the whole photo or a badge
    crops = prepare_photos(
        PORTRAIT.parent,
        [PORTRAIT.name],
        (64, 48),
        tmp_path / "crop.npy",
        Crop("face", 1.2, detector),
        faces=find_faces(PORTRAIT.parent, [PORTRAIT.name], detector),
    )
    crop = crops.iloc[0]
    assert crop["face_found"] and crop["detector"] == detector
    assert all(
        crop["left"] < x < crop["right"] and crop["top"] < y < crop["bottom"] for x, y in FACE_POINTS.values()
    )
    nose_x, nose_y = FACE_POINTS["nose tip"]
    assert (
        abs((crop["left"] + crop["right"]) / 2 - nose_x) < 30
        and abs((crop["top"] + crop["bottom"]) / 2 - nose_y) < 30
    )


def test_mtcnn_finds_a_masked_face_that_the_haar_cascade_misses(tmp_path):
    masked = np.asarray(masked_portrait())
    assert FaceFinder("haar").find(masked) == (None, None)  # why the cascade is only the fallback
    (left, top, width, height), found_by = FaceFinder("mtcnn").find(masked)
    assert found_by == "mtcnn"
    eyes = FACE_POINTS["left eye"], FACE_POINTS["right eye"]
    assert all(left < x < left + width and top < y < top + height for x, y in eyes) and 100 < width < 300


def test_the_haar_cascade_takes_over_where_mtcnn_finds_no_face(monkeypatch):
    monkeypatch.setattr(Mtcnn, "boxes", lambda self, images: [[] for _ in images])
    face, found_by = FaceFinder("mtcnn").find(np.asarray(read_photo(PORTRAIT)))
    assert found_by == "haar" and face is not None


def test_an_mtcnn_crop_without_facenet_pytorch_names_the_package_and_the_way_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import fails as when it is not installed
    with pytest.raises(
        PipelineError, match=r"facenet-pytorch.*pip install --no-deps facenet-pytorch.*crop.detector: haar"
    ):
        FaceFinder("mtcnn")


def test_face_crop_falls_back_to_a_centre_crop_and_counts_it(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 160), (90, 90, 90)).save(blank)
    faces = find_faces(tmp_path, ["blank.png"], "mtcnn")
    crops = prepare_photos(tmp_path, ["blank.png"], (40, 30), tmp_path / "out.npy", FACE, faces=faces)
    assert crops["face_found"].tolist() == [False] and crops["detector"].tolist() == [""]
    left, top, right, bottom = crops.loc[0, ["left", "top", "right", "bottom"]]
    assert right - left == pytest.approx(120 * CENTRE_WIDTH) and (bottom - top) / (
        right - left
    ) == pytest.approx(40 / 30)
    assert (left + right) / 2 == pytest.approx(60) and (top + bottom) / 2 == pytest.approx(80)


def test_a_centre_crop_keeps_the_centred_box_at_the_models_aspect(tmp_path):
    Image.new("RGB", (384, 512), (90, 90, 90)).save(tmp_path / "portrait.png")
    crops = prepare_photos(tmp_path, ["portrait.png"], (40, 40), tmp_path / "out.npy", Crop("centre"))
    left, top, right, bottom = crops.loc[0, ["left", "top", "right", "bottom"]]
    assert right - left == pytest.approx(384 * CENTRE_WIDTH) == pytest.approx(bottom - top)
    assert (left + right) / 2 == pytest.approx(192) and (top + bottom) / 2 == pytest.approx(256)
    assert crops["face_found"].isna().all()


def test_faces_found_in_batches_are_those_found_one_photo_at_a_time(demo_dir):
    photos = [str(path.relative_to(demo_dir)) for path in sorted(demo_dir.glob("eval/images/*"))[:12]]
    batched = find_faces(demo_dir, photos, "mtcnn", threads=2)
    finder = FaceFinder("mtcnn")
    for row, path in enumerate(photos):
        face, detector = finder.find(np.asarray(read_photo(demo_dir / path)))
        # a face missed alone is placed by its folder's faces in the table
        assert batched.loc[row, "detector"] == (detector or "") or batched.loc[row, "detector"] == "folder"
        if face is not None:
            found = batched.loc[row, ["face_left", "face_top", "face_width", "face_height"]]
            assert np.allclose(found.to_numpy(float), face, atol=1.0), path
    assert (batched["detector"] != "").any(), "no face found: the test shows nothing"


def test_a_missed_face_is_placed_where_its_folders_faces_of_its_size_are():
    box = ["face_left", "face_top", "face_width", "face_height"]
    faces = pd.DataFrame(
        [
            ("a/normal.jpg", 100, 50, 80, 100, "mtcnn"),
            ("a/incorrect_mask.jpg", 110, 60, 90, 110, "haar"),
            ("a/mask1.jpg", None, None, None, None, ""),  # a's two faces of its size: their median
            ("a/small.jpg", None, None, None, None, ""),  # a's only photo of its size
            ("b/mask1.jpg", None, None, None, None, ""),  # no face found in b
        ],
        columns=["path", *box, "detector"],
    )
    placed = place_missed_faces(faces, [(512, 384)] * 3 + [(256, 192), (512, 384)])
    assert placed["detector"].tolist() == ["mtcnn", "haar", "folder", "", ""]
    assert placed.loc[2, box].tolist() == [105, 55, 85, 105]
    assert placed.loc[[3, 4], box].isna().all(axis=None)


def test_a_face_table_of_other_photos_is_refused_by_name(demo_dir, tmp_path):
    photos = [str(path.relative_to(demo_dir)) for path in sorted(demo_dir.glob("eval/images/*"))[:3]]
    faces = find_faces(demo_dir, photos[:2], "haar")
    with pytest.raises(PipelineError, match=photos[2]):
        prepare_photos(demo_dir, photos, (36, 36), tmp_path / "out.npy", FACE, faces=faces)


@pytest.mark.parametrize("detector", DETECTORS)
def test_the_face_crop_finds_the_same_faces_with_any_number_of_threads(demo_dir, tmp_path, detector):
    """A detector shared by the decoding threads found other faces (OpenCV's cascade classifier is
    not safe to share), so that the cache, and so `facemask predict`, depended on the threads."""
    photos = [str(path.relative_to(demo_dir)) for path in sorted(demo_dir.glob("eval/images/*"))]
    caches = []
    for threads in (1, 4):
        caches.append(tmp_path / f"{threads}.npy")
        faces = find_faces(demo_dir, photos, detector, threads)
        crops = prepare_photos(demo_dir, photos, (36, 36), caches[-1], FACE, faces=faces)
        assert crops["face_found"].any(), "no face found: the test shows nothing"
    assert caches[0].read_bytes() == caches[1].read_bytes()


def test_a_face_crop_box_keeps_the_models_aspect_and_stays_inside_the_photo():
    crop = Crop("face", 2.0, "mtcnn")
    assert crop_box(384, 512, crop, (150, 180, 100, 100), 4 / 3) == pytest.approx(
        (100, 96.666, 300, 363.333), abs=1e-3
    )
    left, top, right, bottom = crop_box(384, 512, crop, (0, 0, 300, 300), 4 / 3)  # too big and at the corner
    assert left >= 0 and top >= 0 and right <= 384 and bottom <= 512
    assert (bottom - top) / (right - left) == pytest.approx(4 / 3)


def test_cached_photos_come_in_batches_in_the_order_asked_with_their_labels(tmp_path):
    pixels = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.uint8, shape=(10, 4, 3, 3))
    pixels[:] = np.arange(10, dtype=np.uint8)[:, None, None, None]
    pixels.flush()
    dataset = CachedPhotos(tmp_path / "c.npy", rows=[9, 2, 5, 0], labels=[90, 20, 50, 0])
    batches = list(photo_loader(dataset, batch_size=3, workers=1))
    assert [b[0].shape for b in batches] == [(3, 4, 3, 3), (1, 4, 3, 3)]
    assert torch.cat([b[0][:, 0, 0, 0] for b in batches]).tolist() == [9, 2, 5, 0]
    assert torch.cat([b[1] for b in batches]).tolist() == [90, 20, 50, 0]


def test_a_cache_held_in_memory_gives_the_same_shuffled_batches_as_the_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (12, 4, 3, 3), dtype=np.uint8)
    np.save(tmp_path / "c.npy", pixels)
    rows, labels = [11, 3, 7, 0, 5, 8, 2], [1, 2, 3, 4, 5, 6, 7]
    from_file = photo_loader(
        CachedPhotos(tmp_path / "c.npy", rows, labels), 3, workers=0, shuffle=True, seed=4
    )
    held = photo_loader(
        CachedPhotos(tmp_path / "c.npy", rows, labels, torch.from_numpy(pixels)),
        3,
        workers=2,
        shuffle=True,
        seed=4,
    )
    assert held.num_workers == 0  # sliced from the held tensor in this process; workers would read the file
    for (file_images, file_labels), (held_images, held_labels) in zip(from_file, held, strict=True):
        assert torch.equal(file_images, held_images) and torch.equal(file_labels, held_labels)


def test_a_cache_that_does_not_match_the_index_is_refused_by_name(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((3, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="c.npy: holds 3 photos.*stale"):
        CachedPhotos(tmp_path / "c.npy", rows=[0, 5], labels=[0, 0])


def test_the_eval_transform_resizes_and_normalises_to_float_images():
    images = torch.full((2, 36, 27, 3), 255, dtype=torch.uint8)
    out = BatchTransform((3, 32, 24), MEAN, STD)(images)
    assert out.shape == (2, 3, 32, 24) and out.dtype == torch.float32
    assert out.is_contiguous()  # on the CPU; channels-last on a GPU
    torch.testing.assert_close(out, torch.full_like(out, (1 - 0.5) / 0.25))


def test_augmentation_without_crop_flip_or_jitter_is_a_plain_resize():
    images = torch.randint(0, 256, (4, 36, 36, 3), dtype=torch.uint8)
    plain = BatchAugment((3, 36, 36), MEAN, STD, scale=(1, 1), ratio=(1, 1), hflip=0, color_jitter=0)(images)
    torch.testing.assert_close(plain, BatchTransform((3, 36, 36), MEAN, STD)(images), atol=1e-4, rtol=0)


def test_augmentation_flips_crops_and_jitters_each_photo_differently_and_repeatably():
    image = torch.randint(0, 256, (1, 40, 30, 3), dtype=torch.uint8).expand(16, -1, -1, -1)
    augment = batch_transform(
        {"input_size": (3, 32, 24), "mean": MEAN, "std": STD, "interpolation": "bicubic"},
        Augmentation(scale=(0.5, 1.0), ratio=(0.75, 1.33), hflip=0.5, color_jitter=0.4),
    )
    torch.manual_seed(0)
    first = augment(image)
    torch.manual_seed(0)
    assert torch.equal(first, augment(image))  # seeded by torch's generator: repeatable, resumable
    assert first.shape == (16, 3, 32, 24) and torch.isfinite(first).all()
    assert len({round(float(view.mean()), 4) for view in first}) == 16  # every photo its own draw
    flipped = BatchAugment(
        (3, 40, 30), MEAN, STD, scale=(1, 1), ratio=(0.75, 0.75), hflip=1.0, color_jitter=0
    )(image[:1])
    torch.testing.assert_close(
        flipped, BatchTransform((3, 40, 30), MEAN, STD)(image[:1]).flip(-1), atol=1e-4, rtol=0
    )


CLAIM = """
import json, os, sys, time
from facemask.utils.gpu_slots import claim_gpu
gpu = claim_gpu(sys.argv[1])
print(json.dumps({"gpu": gpu, "visible": os.environ["CUDA_VISIBLE_DEVICES"], "at": time.time()}), flush=True)
time.sleep(float(sys.argv[2]))
"""


def claim(lock_dir, hold_seconds: float) -> subprocess.Popen:
    """A job that takes a GPU and holds it for a while."""
    return subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(lock_dir), str(hold_seconds)], stdout=subprocess.PIPE, text=True
    )


def test_concurrent_jobs_on_a_multi_gpu_host_spread_evenly_over_the_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # a host with two GPUs, as far as the jobs can tell
    jobs = [claim(tmp_path, 3) for _ in range(3)]
    claims = [json.loads(job.stdout.readline()) for job in jobs]
    assert all(c["visible"] == c["gpu"] for c in claims)
    assert sorted(c["gpu"] for c in claims) == ["0", "0", "1"]  # the third shares a GPU, without waiting
    assert max(c["at"] for c in claims) - min(c["at"] for c in claims) < 2.5
    for job in jobs:
        job.communicate(timeout=60)


def test_a_new_job_takes_the_gpu_that_the_fewest_running_jobs_hold(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    jobs, placed = [], []
    for _ in range(3):  # one after the other: GPU 0 slot 0, GPU 1 slot 0, GPU 0 slot 1
        jobs.append(claim(tmp_path, 60))
        placed.append(json.loads(jobs[-1].stdout.readline())["gpu"])
    assert placed == ["0", "1", "0"]
    for job in jobs[:2]:  # killed: their slots free up; left, one job on GPU 0 (slot 1), none on GPU 1
        job.kill()
        job.wait(timeout=60)
    newcomer = claim(tmp_path, 0)
    assert json.loads(newcomer.communicate(timeout=60)[0])["gpu"] == "1"  # not GPU 0's free slot 0
    jobs[2].kill()
    jobs[2].wait(timeout=60)


def test_a_single_gpu_or_a_cluster_assigned_gpu_is_left_as_it_is(tmp_path, monkeypatch):
    from facemask.utils.gpu_slots import claim_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert claim_gpu(tmp_path) == "3" and not list(tmp_path.iterdir())


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a GPU: on the CPU nothing runs ahead of Python"
)
def test_on_a_gpu_training_and_inference_wait_for_it_only_at_the_end(tmp_path):
    """A step that reads a value back from the GPU (or copies pageable memory without
    non_blocking) makes Python wait for it, and the GPU then idles while the next step is queued."""
    device = torch.device("cuda")
    cache = tmp_path / "train.npy"
    np.save(cache, np.random.default_rng(0).integers(0, 256, (64, 40, 32, 3), dtype=np.uint8))
    labels = np.arange(64) % 18
    settings = model_settings(
        arch="resnet18", loss=[{"name": "focal", "class_weights": True}, {"name": "f1"}], head="multi"
    )
    model = create_classifier("resnet18", head="multi").to(device, memory_format=torch.channels_last)
    photos = CachedPhotos(cache, np.arange(64), labels, load_cache(cache, device))
    data_config = model_data_config(model, (32, 32))
    augment, plain = (
        batch_transform(data_config, settings.augment).to(device),
        batch_transform(data_config).to(device),
    )
    loss_fn, mixup = (
        head_of(settings, (30, 60)).loss(torch.tensor(labels)),
        create_mixup(Mixing(mixup_alpha=1.0, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5)),
    )
    optimizer = create_optimizer_v2(model, opt="adam", lr=1e-4)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step = TrainStep(
                model, augment, loss_fn, optimizer, device, mixup, clip_grad_norm=1.0, precision="bf16"
            )
            train_one_epoch(step, photo_loader(photos, 8, 0, shuffle=True), 1)
            trained = len(caught)
            predict_logits(model, photo_loader(photos, 8, 0), plain, device, "bf16")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    messages = [str(warning.message) for warning in caught]
    assert trained == 1 and len(messages) == 2, (
        messages
    )  # the epoch's losses read once; the logits copied once

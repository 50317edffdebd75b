"""The face crop answers the same on every device: the faces table records where each face was
found, the bundle the device of the submission's faces, and `facemask predict` finds faces there
(a GPU faked where there is none: what is checked is the device asked for); rule find_faces takes
a GPU slot like train and predict jobs, and its table is keyed by detector and device."""

import re
from pathlib import Path

import pytest
import torch

from facemask.config.sections import Crop, ImageCache, TestTimeAugmentation
from facemask.data import faces as faces_module
from facemask.data.faces import find_faces, found_on
from facemask.ensemble.bundle import Bundle, BundleMember
from facemask.ensemble.vote import Vote
from facemask.model.classifier import create_classifier, model_data_config, save_checkpoint
from facemask.predict import photos as photos_module
from facemask.predict.photos import predict_photos
from facemask.utils.files import Member

from .conftest import PORTRAIT, TINY, demo_work_folder, snakemake

FACE_CROP = ImageCache(1.125, Crop("face", 1.3, "mtcnn"))


def test_each_face_found_records_its_device_and_the_table_says_where_mtcnn_ran():
    table = find_faces(PORTRAIT.parent, [PORTRAIT.name], "mtcnn", device="cpu")
    assert list(table["device"]) == ["cpu"] and found_on(table) == "cpu"
    assert found_on(table.assign(device=["cuda"])) == "cuda"
    assert found_on(table.drop(columns="device")) == "cpu"  # a table from before the device was kept


def face_bundle(folder: Path, face_device: str) -> Bundle:
    """A one-member bundle of timm's test network (untrained) that crops to the face, its faces
    found on `face_device`."""
    model = create_classifier("test_efficientnet")
    meta = {"arch": "test_efficientnet", "head": "single", "model_kwargs": {}, "epoch": 1, "fold": 0}
    meta |= {"data_config": model_data_config(model, (32, 32)), "val_f1": 0.5, "precision": "fp32"}
    checkpoint = folder / "checkpoint.pt"
    save_checkpoint(checkpoint, model, meta | {"age_cuts": None})
    member = BundleMember.of(Member("tiny", 0), checkpoint, meta, 1.0, FACE_CROP)
    tta = TestTimeAugmentation(("HorizontalFlip",), "mean", 8)
    return Bundle((member,), Vote({"tiny": 1.0}), False, tta, (30, 60), face_device=face_device)


@pytest.mark.parametrize(
    ("recorded", "gpu_here", "searched_on", "warns"),
    [("cuda", True, "cuda", False), ("cpu", True, "cpu", False), ("cuda", False, "cpu", True)],
    ids=["GPU bundle on a GPU box", "CPU bundle on a GPU box", "GPU bundle without a GPU"],
)
def test_predict_finds_faces_on_the_device_the_bundle_records(
    recorded, gpu_here, searched_on, warns, tmp_path, monkeypatch, caplog
):
    bundle = face_bundle(tmp_path, recorded)
    bundle.write(tmp_path / "ensemble.json")
    assert Bundle.read(tmp_path / "ensemble.json").face_device == recorded
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu_here)
    asked = []

    def on_the_cpu(data_dir, paths, detector, threads, device="cpu"):  # a faked GPU finds as the CPU does
        asked.append(device)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the members predict on the CPU
        return find_faces(data_dir, paths, detector, threads, device="cpu")

    monkeypatch.setattr(photos_module, "find_faces", on_the_cpu)
    monkeypatch.chdir(PORTRAIT.parent)
    table = predict_photos(bundle, [Path(PORTRAIT.name)], device="cpu")
    assert asked == [searched_on] and len(table) == 1
    assert ("found by MTCNN on a GPU and torch sees none here" in caplog.text) == warns


def test_mtcnn_runs_on_the_device_it_is_given_not_a_silent_fallback(monkeypatch):
    made = {}

    class Recorder:
        def __init__(self, **kwargs):
            made.update(kwargs)
            self.pnet = self.rnet = self.onet = torch.nn.Identity()

    monkeypatch.setattr("facenet_pytorch.MTCNN", Recorder)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    faces_module.Mtcnn(device="cuda")
    assert made["device"] == "cuda"  # torch then says there is no GPU: the job's pick_device stops first


def rule_resources(dry_run_output: str, rule: str) -> str:
    """The `resources:` line of the first job of `rule` in a dry run's output."""
    return re.search(rf"^rule {rule}:\n(?:    .*\n)*?    resources: (.*)$", dry_run_output, re.MULTILINE)[1]


def test_find_faces_takes_a_gpu_slot_as_train_jobs_do_and_is_keyed_by_detector_and_device(tmp_path):
    work = demo_work_folder(tmp_path)
    (work / "face.yaml").write_text("cache: {crop: {kind: face}}\ndevice: cuda\n")
    mtcnn = snakemake(work, "results/tiny/faces/mtcnn-cuda/train.csv", "-n", configs=(*TINY, "face.yaml"))
    assert mtcnn.returncode == 0, mtcnn.stderr[-3000:]
    assert "gpu=1" in rule_resources(mtcnn.stdout, "find_faces")
    (work / "haar.yaml").write_text("cache: {crop: {kind: face, detector: haar}}\n")
    haar = snakemake(work, "results/tiny/faces/haar/train.csv", "-n", configs=(*TINY, "haar.yaml"))
    assert haar.returncode == 0, haar.stderr[-3000:]
    assert "gpu=1" not in rule_resources(haar.stdout, "find_faces")  # the cascade runs on the CPU

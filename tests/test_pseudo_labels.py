"""Pseudo-labels (config pseudo_labels, facemask.ensemble.pseudo_labels): each fold's labels voted by
that fold's members alone, the photos read from the eval cache beside the training photos, and a
run that learns from them."""

import numpy as np
import pandas as pd
import pytest
import torch

from facemask.classes.labels import LOGIT_COLUMNS, age_band, decode_class, encode_class
from facemask.classes.scores import task_scores
from facemask.data.loader import CachedPhotos, JoinedPhotos, photo_loader
from facemask.data.pseudo_photos import PseudoPhotos
from facemask.ensemble.pseudo_labels import choose_pseudo_labels
from facemask.ensemble.vote import Vote
from facemask.train.fold import TrainOutputs, train_fold
from facemask.utils.errors import PipelineError
from facemask.utils.files import Member

from .conftest import model_settings
from .test_recipes import TORCH_THREADS

PHOTOS = 40
IMAGE_IDS = [f"{i:03d}.jpg" for i in range(PHOTOS)]


def logit_table(logits: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(logits, columns=list(LOGIT_COLUMNS))
    table.insert(0, "ImageID", IMAGE_IDS)
    return table


def fold_logits(rng, sure: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Logits that are sure (8 nats ahead) of `classes` where `sure`, near uniform elsewhere."""
    logits = rng.normal(scale=0.1, size=(PHOTOS, 18))
    logits[np.flatnonzero(sure), classes[sure]] += 8
    return logits


@pytest.fixture
def two_folds():
    """Eval logits of 2 models x 2 folds: fold 0's members sure of the first half, fold 1's of the
    second, of the same classes; and training photos of every age."""
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 18, PHOTOS)
    halves = np.arange(PHOTOS) < PHOTOS // 2
    logits = {
        Member(model, fold): logit_table(fold_logits(rng, halves if fold == 0 else ~halves, classes))
        for model in ("a", "b")
        for fold in (0, 1)
    }
    train = pd.DataFrame({"age": np.arange(18, 81)})
    return logits, classes, halves, train


def test_each_folds_labels_are_its_own_members_confident_votes_with_an_age_of_their_band(two_folds):
    logits, classes, halves, train = two_folds
    labels = choose_pseudo_labels(logits, Vote({"a": 1, "b": 1}), IMAGE_IDS, train, threshold=0.9, seed=1)
    for fold, sure in ((0, halves), (1, ~halves)):
        chosen = labels[labels["fold"] == fold]
        assert list(chosen["ImageID"]) == list(np.asarray(IMAGE_IDS)[sure])
        assert list(chosen["label"]) == list(classes[sure])
        assert (chosen["confidence"] >= 0.9).all()
        bands = [age_band(age) for age in chosen["age"]]
        assert bands == list(decode_class(chosen["label"].to_numpy())[2])
    again = choose_pseudo_labels(logits, Vote({"a": 1, "b": 1}), IMAGE_IDS, train, threshold=0.9, seed=1)
    pd.testing.assert_frame_equal(labels, again)


def test_a_folds_labels_do_not_move_when_another_folds_members_change(two_folds):
    logits, _, _, train = two_folds
    vote = Vote({"a": 1, "b": 1})
    before = choose_pseudo_labels(logits, vote, IMAGE_IDS, train, threshold=0.6)
    changed = dict(logits)
    changed[Member("a", 0)] = logit_table(np.zeros((PHOTOS, 18)))  # fold 0 now unsure of everything
    after = choose_pseudo_labels(changed, vote, IMAGE_IDS, train, threshold=0.6)
    pd.testing.assert_frame_equal(
        before[before["fold"] == 1].reset_index(drop=True), after[after["fold"] == 1].reset_index(drop=True)
    )
    assert len(after[after["fold"] == 0]) < len(before[before["fold"] == 0])


def test_pseudo_photos_are_placed_by_the_eval_index_and_a_stale_table_is_an_error(tmp_path):
    eval_index = pd.DataFrame({"ImageID": ["x.jpg", "y.jpg", "z.jpg"]})
    eval_index["path"] = "eval/images/" + eval_index["ImageID"]
    label = int(encode_class(2, 1, 2))
    labels = pd.DataFrame(
        {
            "fold": [0, 1, 1],
            "ImageID": ["z.jpg", "x.jpg", "y.jpg"],
            "label": label,
            "confidence": 0.9,
            "age": 70,
        }
    )
    pseudo = PseudoPhotos.of_fold(labels, eval_index, 1, tmp_path / "eval.npy")
    assert list(pseudo.photos["row"]) == [0, 1] and list(pseudo.photos["path"]) == [
        "eval/images/x.jpg",
        "eval/images/y.jpg",
    ]
    assert list(pseudo.photos[["mask_label", "gender_label", "age_label"]].iloc[0]) == [2, 1, 2]
    assert len(PseudoPhotos.of_fold(labels, eval_index, 3, tmp_path / "eval.npy").photos) == 0
    with pytest.raises(PipelineError, match="'w.jpg'"):
        PseudoPhotos.of_fold(labels.assign(ImageID=["w.jpg", "x.jpg", "y.jpg"]), eval_index, 0, "eval.npy")


def test_a_joined_dataset_reads_each_photo_from_its_own_cache(tmp_path):
    first, second = tmp_path / "train.npy", tmp_path / "eval.npy"
    np.save(first, np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 2, 2, 3), np.uint8))
    np.save(
        second, (100 + np.arange(4, dtype=np.uint8))[:, None, None, None] * np.ones((4, 2, 2, 3), np.uint8)
    )
    joined = JoinedPhotos([CachedPhotos(first, [4, 1], [0, 1]), CachedPhotos(second, [3, 0, 2], [2, 3, 4])])
    assert len(joined) == 5
    images, labels = joined.__getitems__([4, 0, 2, 1])
    assert images[:, 0, 0, 0].tolist() == [102, 4, 103, 1] and labels.tolist() == [4, 0, 2, 1]
    seen = torch.cat([labels for _, labels in photo_loader(joined, 2, 0, shuffle=True, seed=3)])
    assert len(seen) == 4  # no last short batch


def test_a_run_with_two_labelled_people_learns_from_its_pseudo_photos(learnable, tmp_path):
    cache, index, folds = learnable
    others = folds[folds["fold"] != 0]
    gender = index.drop_duplicates("person").set_index("person")["gender_label"]
    men = [person for person in others["person"] if gender[person] == 0][:2]  # one gender: nothing to learn
    labelled = index[
        index["person"].isin(folds.loc[folds["fold"] == 0, "person"]) | index["person"].isin(men)
    ]
    pseudo_rows = index[~index.index.isin(labelled.index)]
    # the other people's photos, their true labels, read from the same cache as "eval" photos
    pseudo = PseudoPhotos(
        pseudo_rows[["path", "person", "label", "mask_label", "gender_label", "age", "age_label"]].assign(
            row=pseudo_rows.index.to_numpy()
        ),
        cache,
    )
    settings = model_settings(
        arch="resnet18",
        image_size=[48, 36],
        batch_size=16,
        epochs=8,
        optimizer={"lr": 2e-3},
        scheduler={"warmup_epochs": 0},
        loss=[{"name": "cross_entropy", "weight": 0.7}, {"name": "f1", "weight": 0.3}],
    )
    outputs = TrainOutputs(tmp_path / "checkpoint.pt", tmp_path / "oof.csv", tmp_path / "history.csv")
    own_cache = tmp_path / "labelled.npy"  # the labelled photos' cache, rows in their index's order
    np.save(own_cache, np.load(cache)[labelled.index.to_numpy()])
    train_fold(
        labelled.reset_index(drop=True),
        folds,
        0,
        settings,
        own_cache,
        outputs,
        threads=TORCH_THREADS,
        pseudo=pseudo,
    )
    oof = pd.read_csv(outputs.oof_logits, dtype={"person": str})
    assert set(oof["person"]) == set(folds.loc[folds["fold"] == 0, "person"])  # validated on fold 0 only
    scores = task_scores(oof["label"], oof.filter(like="logit_").to_numpy().argmax(1))
    # its own training photos show one gender: without the pseudo photos, gender F1 0.29 and macro
    # F1 0.02 (measured); with them 0.90 and 0.28
    assert scores["gender_f1"] > 0.7 and scores["macro_f1"] > 0.2, scores

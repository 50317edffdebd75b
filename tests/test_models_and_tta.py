"""Weights from the hub, a local file or none; checkpoints; batched TTA merged on probabilities."""

import pytest
import torch
import ttach

from facemask.model.classifier import create_backbone, create_classifier, load_checkpoint, save_checkpoint
from facemask.model.inference import BatchedTTA, tta_transforms
from facemask.utils.errors import PipelineError, WeightsError


def test_hub_weights_that_cannot_be_fetched_give_a_clear_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail at once, as offline
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # with nothing cached
    with pytest.raises(WeightsError, match="timm's hub.*local weights file"):
        create_classifier("resnet18.a1_in1k", pretrained=True)


def test_an_unknown_model_name_is_refused():
    with pytest.raises(PipelineError, match="not in timm's registry"):
        create_classifier("resnet_does_not_exist")


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        create_classifier("resnet18", pretrained=str(tmp_path / "nope.pth"))


def test_local_weights_load_into_the_backbone_with_a_fresh_18_class_head(tmp_path):
    source = create_backbone("resnet18", False, 1000, None)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model = create_classifier("resnet18", pretrained=str(tmp_path / "resnet18.pth"))
    assert model.get_classifier().out_features == 18
    assert torch.equal(model.conv1.weight, source.conv1.weight)


def test_a_checkpoint_reloads_the_same_model(tmp_path):
    model = create_classifier("resnet18").eval()
    meta = {
        "arch": "resnet18",
        "head": "single",
        "model_kwargs": {},
        "data_config": {"input_size": (3, 32, 32)},
        "epoch": 1,
    }
    save_checkpoint(tmp_path / "checkpoint.pt", model, meta)
    loaded, loaded_meta = load_checkpoint(tmp_path / "checkpoint.pt")
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(images), model(images))
    assert loaded_meta["data_config"] == meta["data_config"]


class Scorer(torch.nn.Module):
    """Logits that depend on where the bright pixels are, so a flip changes them."""

    def forward(self, images):
        width = images.shape[-1]
        return (
            torch.stack(
                [images[..., : width // 2].mean((1, 2, 3)), images[..., width // 2 :].mean((1, 2, 3))], 1
            )
            * 10
            - 3
        )


def test_flip_tta_is_the_log_of_the_mean_probability_of_both_views():
    images = torch.rand(4, 3, 8, 8)
    out = BatchedTTA(Scorer(), ["HorizontalFlip"], "mean")(images)
    views = [Scorer()(images).softmax(1), Scorer()(images.flip(-1)).softmax(1)]
    torch.testing.assert_close(out.exp(), (views[0] + views[1]) / 2)


class NegativeScorer(Scorer):
    """Scorer's logits, all far below zero: merging them instead of probabilities fails (gmean: NaN)."""

    def forward(self, images):
        return super().forward(images) - 100


@pytest.mark.parametrize(
    ("merge", "merged"),
    [
        ("mean", lambda views: views.mean(0)),
        ("gmean", lambda views: views.log().mean(0).exp()),
        ("tsharpen", lambda views: views.sqrt().mean(0)),
    ],
)
def test_every_merge_mode_merges_the_views_probabilities_even_on_negative_logits(merge, merged):
    images = torch.rand(3, 3, 8, 8)
    out = BatchedTTA(NegativeScorer(), ["HorizontalFlip"], merge)(images)
    views = torch.stack([Scorer()(images).double().softmax(1), Scorer()(images.flip(-1)).double().softmax(1)])
    expected = merged(views)
    torch.testing.assert_close(
        out.softmax(1).double(), expected / expected.sum(1, keepdim=True), rtol=1e-5, atol=1e-6
    )


def test_unknown_tta_transforms_and_merge_modes_are_refused():
    with pytest.raises(ValueError, match="TTA transform"):
        BatchedTTA(Scorer(), ["Explode"])
    with pytest.raises(ValueError, match="merge"):
        BatchedTTA(Scorer(), ["HorizontalFlip"], "max")


@pytest.mark.parametrize("one_pass", [True, False])
@pytest.mark.parametrize("merge", ["mean", "gmean", "tsharpen"])
@pytest.mark.parametrize(
    "transforms",
    [
        ["HorizontalFlip"],
        ["HorizontalFlip", {"Multiply": {"factors": [0.9, 1.1]}}],
        ["HorizontalFlip", {"Scale": {"scales": [1, 0.75]}}],  # views of two sizes: two forward passes
    ],
)
def test_batched_tta_equals_ttachs_one_pass_per_view(merge, transforms, one_pass):
    model = create_classifier("resnet18").eval()
    images = torch.randn(3, 3, 32, 32)
    sequential = ttach.ClassificationTTAWrapper(
        torch.nn.Sequential(model, torch.nn.Softmax(1)), tta_transforms(transforms), merge
    )
    with torch.no_grad():
        torch.testing.assert_close(
            BatchedTTA(model, transforms, merge, one_pass)(images).exp(),
            sequential(images),
            atol=1e-5,
            rtol=1e-4,
        )


@pytest.mark.parametrize(("one_pass", "passes"), [(True, [5 * 6]), (False, [5] * 6)])
def test_batched_tta_sends_all_views_of_a_batch_through_the_model_at_once_or_one_view_at_a_time(
    one_pass, passes
):
    batches = []

    class Recorder(Scorer):
        def forward(self, images):
            batches.append(len(images))
            return super().forward(images)

    spec = ["HorizontalFlip", {"Multiply": {"factors": [0.9, 1.1]}}]
    BatchedTTA(Recorder(), spec, one_pass=one_pass)(torch.rand(5, 3, 8, 8))
    assert len(tta_transforms(spec)) == 6  # ttach keeps the identity: 2 flips x 3 factors
    assert batches == passes

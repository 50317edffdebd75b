"""The config as typed, frozen objects (Settings, with a ModelBlock per model block: see
facemask.config.blocks), built once from the validated config: the JSON schema guards the YAML and
holds every default; past that the code reads fields, not keys. The TTA transforms, which go to
ttach as keyword arguments, stay mappings. A rule's params carry a slice as plain data
(as_config), which the job's script turns back into its type (facemask.config.typed)."""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facemask.config.blocks import ModelBlock, fitted_age_cuts
from facemask.config.sections import (
    DemoData,
    Ensemble,
    Folds,
    ImageCache,
    PseudoLabels,
    TestTimeAugmentation,
    Threads,
    Tracking,
)
from facemask.config.sweeps import Sweep, load_sweeps
from facemask.config.typed import typed


@dataclass(frozen=True)
class Settings:
    """The whole config as typed, frozen fields, built by from_config after the schema's check
    (which holds every default); the model blocks by name, less their eval-side keys: their vote
    weights (`ensemble_weights`) and whether their age cuts are fitted (`age_cut_models`)."""

    data_dir: str
    results_dir: str
    eval_labels: str | None
    predict_sets: Mapping[str, str]
    predict_dir: str | None
    skip_unreadable_photos: bool
    min_photo_side: int
    seed: int
    device: str
    precision: str
    age_bins: tuple[int, int]
    folds: Folds
    threads: Threads
    cache: ImageCache
    tta: TestTimeAugmentation
    ensemble: Ensemble
    tracking: Tracking
    demo: DemoData
    run_models: tuple[str, ...] | None
    pseudo_labels: PseudoLabels | None
    models: Mapping[str, ModelBlock]
    ensemble_weights: Mapping[str, float]
    age_cut_models: tuple[str, ...] = ()
    sweeps: Mapping[str, Sweep] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        """The settings of a config that the schema validated (defaults filled in); the blocks of
        its sweeps join its model blocks (see facemask.config.sweeps)."""
        sweeps, sweep_blocks = load_sweeps(config)
        models = {**config["models"], **sweep_blocks}
        pseudo = config.get("pseudo_labels")
        blocks = {name: ModelBlock.from_config(block, config["precision"]) for name, block in models.items()}
        special = {
            "tracking": Tracking.from_config(config["tracking"]),
            "pseudo_labels": None if pseudo is None else typed(PseudoLabels, pseudo),
            "models": blocks,
            "ensemble_weights": {name: block["ensemble_weight"] for name, block in models.items()},
            "age_cut_models": fitted_age_cuts(models, blocks),
            "sweeps": sweeps,
        }
        return typed(cls, {**config, **special})

    @property
    def chosen_models(self) -> list[str]:
        """The model blocks that are trained and voted (`run_models`, else all but the sweeps')."""
        return list(self.run_models or (name for name in self.models if self.sweep_of(name) is None))

    def sweep_of(self, block: str) -> Sweep | None:
        """The sweep that made the model block `block`, if one did."""
        return next((sweep for sweep in self.sweeps.values() if block in sweep.blocks), None)

    @property
    def face_finder(self) -> str:
        """What the faces found for the face crop depend on, as a folder name: the detector and,
        for MTCNN (which runs torch, whose boxes may differ by device), the device setting."""
        crop = self.cache.crop
        return f"{crop.detector}-{self.device}" if crop.runs_torch else f"{crop.detector}"

    @property
    def pseudo_models(self) -> list[str]:
        """The model blocks of the second round (pseudo_labels.models, else every block run);
        none when pseudo_labels is off."""
        if self.pseudo_labels is None:
            return []
        return list(self.pseudo_labels.models or self.chosen_models)

"""The competition's data layout: index the photos, read them, and transform them for a model."""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from PIL import Image, ImageOps
from timm.data import create_transform

from facemask.errors import DataError
from facemask.labels import GENDER_CODES, MASK_BY_PHOTO, age_band, check_age_bins, encode_class

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
INFO_COLUMNS = ("ImageID", "ans")


def parse_person_folder(name: str) -> dict:
    """Split a person folder name `<id>_<gender>_<race>_<age>` into its fields."""
    parts = name.split("_")
    if len(parts) < 4:
        raise DataError(f"person folder {name!r}: expected <id>_<gender>_<race>_<age>")
    person, gender, race, age = parts[0], parts[1], "_".join(parts[2:-1]), parts[-1]
    if gender not in GENDER_CODES:
        raise DataError(f"person folder {name!r}: gender {gender!r} is not one of {sorted(GENDER_CODES)}")
    if not age.isdigit():
        raise DataError(f"person folder {name!r}: age {age!r} is not a whole number of years")
    return {"id": person, "gender": gender, "race": race, "age": int(age)}


def read_csv_checked(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV as strings, or raise a DataError naming the file and what is missing."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from error
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    return table


def find_person_photos(folder: Path) -> dict[str, Path]:
    """The seven photos of a person folder by stem (`mask1` .. `normal`), any extension case."""
    photos: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        stem, suffix = file.stem, file.suffix.lower()
        if suffix not in PHOTO_SUFFIXES or stem not in MASK_BY_PHOTO:
            continue
        if stem in photos:
            raise DataError(f"{folder}: two photos named {stem!r} ({photos[stem].name}, {file.name})")
        photos[stem] = file
    missing = sorted(set(MASK_BY_PHOTO) - set(photos))
    if missing:
        raise DataError(f"{folder}: missing photo(s) {missing}")
    return photos


def index_train_photos(data_dir: str | Path, age_bins: Sequence[int]) -> pd.DataFrame:
    """One row per training photo: its path (relative to `data_dir`), person, gender, race, age,
    the three task labels and the 18-class label."""
    data_dir = Path(data_dir)
    age_bins = check_age_bins(age_bins)
    train_csv = data_dir / "train" / "train.csv"
    people = read_csv_checked(train_csv, TRAIN_COLUMNS)
    if people.empty:
        raise DataError(f"{train_csv}: no people listed")
    duplicated = people["id"][people["id"].duplicated()]
    if len(duplicated):
        raise DataError(f"{train_csv}: person id {duplicated.iloc[0]!r} is listed more than once")
    rows = []
    for person in people.itertuples(index=False):
        fields = parse_person_folder(person.path)
        listed = {"id": person.id, "gender": person.gender, "race": person.race, "age": person.age}
        if {k: str(v) for k, v in fields.items()} != listed:
            raise DataError(f"{train_csv}: row {listed} disagrees with its folder name {person.path!r}")
        folder = data_dir / "train" / "images" / person.path
        if not folder.is_dir():
            raise DataError(f"{folder}: person folder listed in {train_csv} does not exist")
        for stem, file in find_person_photos(folder).items():
            mask, gender, age = MASK_BY_PHOTO[stem], GENDER_CODES[fields["gender"]], age_band(fields["age"], age_bins)
            rows.append({
                "path": file.relative_to(data_dir).as_posix(),
                "person": fields["id"], "gender": fields["gender"], "race": fields["race"], "age": fields["age"],
                "photo": stem, "mask_label": mask, "gender_label": gender, "age_label": age,
                "label": int(encode_class(mask, gender, age)),
            })
    return pd.DataFrame(rows)


def index_eval_photos(data_dir: str | Path) -> pd.DataFrame:
    """The eval photos in `info.csv` order: ImageID and path (relative to `data_dir`)."""
    data_dir = Path(data_dir)
    info_csv = data_dir / "eval" / "info.csv"
    info = read_csv_checked(info_csv, INFO_COLUMNS)
    if info.empty:
        raise DataError(f"{info_csv}: no ImageID rows")
    for image_id in info["ImageID"]:
        if not image_id or Path(image_id).name != image_id or image_id in (".", ".."):
            raise DataError(f"{info_csv}: ImageID {image_id!r} is not a plain file name")
        if not (data_dir / "eval" / "images" / image_id).is_file():
            raise DataError(f"{info_csv}: photo {image_id!r} not found in {data_dir / 'eval' / 'images'}")
    duplicated = info["ImageID"][info["ImageID"].duplicated()]
    if len(duplicated):
        raise DataError(f"{info_csv}: ImageID {duplicated.iloc[0]!r} is listed more than once")
    return pd.DataFrame({"ImageID": info["ImageID"], "path": "eval/images/" + info["ImageID"]})


def read_photo(path: Path) -> Image.Image:
    """An RGB photo, turned upright by its EXIF orientation."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


class FacePhotoDataset(torch.utils.data.Dataset):
    """Photos under `root` at `paths` with integer `labels` (-1 where unknown), transformed."""

    def __init__(self, root: str | Path, paths: Sequence[str], labels: Sequence[int], transform):
        self.root, self.paths, self.labels, self.transform = Path(root), list(paths), list(labels), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(read_photo(self.root / self.paths[i])), self.labels[i]


def photo_transform(data_config: dict, augment: dict | None = None):
    """timm's transform for a model's data config: the augmenting one for training when `augment`
    is given (random resized crop, flip, colour jitter), else a plain resize for evaluation."""
    common = {
        "input_size": data_config["input_size"], "interpolation": data_config["interpolation"],
        "mean": data_config["mean"], "std": data_config["std"],
    }
    if augment is None:
        return create_transform(**common, is_training=False, crop_pct=1.0)
    return create_transform(
        **common, is_training=True, scale=tuple(augment["scale"]), ratio=tuple(augment["ratio"]),
        hflip=augment["hflip"], color_jitter=augment["color_jitter"],
    )


def photo_loader(dataset, batch_size: int, workers: int, shuffle: bool = False, seed: int = 0):
    """A DataLoader over `dataset`; when `shuffle` (training), a seeded order without a last
    short batch (a batch of one breaks batch norm)."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
        drop_last=shuffle and len(dataset) > batch_size,
    )

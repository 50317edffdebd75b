"""The competition's data layout: index and check the photos, read them, and load them in batches from the prepared-image cache."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps

from facemask.errors import DataError
from facemask.logs import log
from facemask.labels import GENDER_CODES, MASK_BY_PHOTO, age_band, check_age_bins, encode_class

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
INFO_COLUMNS = ("ImageID", "ans")
EXIF_ORIENTATION = 0x0112


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


def read_csv_checked(path: Path, columns: Sequence[str], key: str) -> pd.DataFrame:
    """Read a CSV as strings, or raise a DataError naming the file when it is missing, unreadable,
    lacks one of `columns`, has no rows, or lists a `key` value twice."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from error
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    if table.empty:
        raise DataError(f"{path}: no rows below the header")
    duplicated = table[key][table[key].duplicated()]
    if len(duplicated):
        raise DataError(f"{path}: {key} {duplicated.iloc[0]!r} is listed more than once")
    return table


@dataclass
class DataReport:
    """What the data check found: counts of what was accepted as is, converted, ignored or skipped."""

    people: int = 0
    train_photos: int = 0
    eval_photos: int = 0
    extensions: Counter = field(default_factory=Counter)
    converted_modes: Counter = field(default_factory=Counter)
    exif_rotated: int = 0
    ignored_files: list[str] = field(default_factory=list)
    unlisted_folders: list[str] = field(default_factory=list)
    skipped_unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain data for a JSON report: numbers, counts by kind, and listed files with their count."""
        plain = {"people": self.people, "train_photos": self.train_photos, "eval_photos": self.eval_photos,
                 "exif_rotated": self.exif_rotated, "extensions": dict(sorted(self.extensions.items())),
                 "converted_to_rgb": dict(sorted(self.converted_modes.items()))}
        for name in ("ignored_files", "unlisted_folders", "skipped_unreadable"):
            files = getattr(self, name)
            plain[name] = {"count": len(files), "files": files}
        return plain


def check_photo(path: Path, report: DataReport) -> None:
    """Decode `path` (a JPEG at reduced scale, which is fast) or raise a DataError saying why not;
    count photos that will be converted to RGB or turned upright by their EXIF orientation."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
                report.exif_rotated += 1
            if image.mode != "RGB":
                report.converted_modes[image.mode] += 1
            image.draft("RGB", (max(image.width // 4, 1), max(image.height // 4, 1)))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from error


def is_plain_name(name: str) -> bool:
    """True for a file or folder name that cannot lead out of its folder."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def find_person_photos(folder: Path, report: DataReport) -> dict[str, Path]:
    """The seven photos of a person folder by stem (`mask1` .. `normal`), any extension case;
    other files are ignored and counted in `report`."""
    photos: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        stem, suffix = file.stem, file.suffix.lower()
        if suffix not in PHOTO_SUFFIXES or stem not in MASK_BY_PHOTO or not file.is_file():
            report.ignored_files.append(str(file))
            continue
        if stem in photos:
            raise DataError(f"{folder}: two photos named {stem!r} ({photos[stem].name}, {file.name})")
        photos[stem] = file
    missing = sorted(set(MASK_BY_PHOTO) - set(photos))
    if missing:
        raise DataError(f"{folder}: missing photo(s) {missing}")
    return photos


def index_train_photos(
    data_dir: str | Path, age_bins: Sequence[int], report: DataReport | None = None, skip_unreadable: bool = False
) -> pd.DataFrame:
    """One row per training photo: its path (relative to `data_dir`), person, gender, race, age,
    the three task labels and the 18-class label. Every photo is decoded once to check it; an
    unreadable one is an error, or skipped and counted in `report` when `skip_unreadable`."""
    data_dir = Path(data_dir)
    report = DataReport() if report is None else report
    age_bins = check_age_bins(age_bins)
    train_csv = data_dir / "train" / "train.csv"
    images_dir = data_dir / "train" / "images"
    people = read_csv_checked(train_csv, TRAIN_COLUMNS, key="id")
    rows = []
    for line, person in enumerate(people.itertuples(index=False), start=2):
        if not is_plain_name(person.path):
            raise DataError(f"{train_csv} line {line}: path {person.path!r} is not a plain folder name")
        fields = parse_person_folder(person.path)
        listed = {"id": person.id, "gender": person.gender, "race": person.race, "age": person.age}
        if {k: str(v) for k, v in fields.items()} != listed:
            raise DataError(f"{train_csv} line {line}: row {listed} disagrees with its folder name {person.path!r}")
        folder = images_dir / person.path
        if not folder.is_dir():
            raise DataError(f"{folder}: person folder listed in {train_csv} does not exist")
        for stem, file in find_person_photos(folder, report).items():
            try:
                check_photo(file, report)
            except DataError:
                if not skip_unreadable:
                    raise
                report.skipped_unreadable.append(str(file))
                continue
            report.extensions[file.suffix.lower()] += 1
            mask, gender, age = MASK_BY_PHOTO[stem], GENDER_CODES[fields["gender"]], age_band(fields["age"], age_bins)
            rows.append({
                "path": file.relative_to(data_dir).as_posix(),
                "person": fields["id"], "gender": fields["gender"], "race": fields["race"], "age": fields["age"],
                "photo": stem, "mask_label": mask, "gender_label": gender, "age_label": age,
                "label": int(encode_class(mask, gender, age)),
            })
    listed_folders = set(people["path"])
    report.unlisted_folders += sorted(str(f) for f in images_dir.iterdir() if f.is_dir() and f.name not in listed_folders)
    report.people, report.train_photos = len(people), len(rows)
    return pd.DataFrame(rows)


def index_eval_photos(data_dir: str | Path, report: DataReport | None = None) -> pd.DataFrame:
    """The eval photos in `info.csv` order: ImageID and path (relative to `data_dir`); every
    photo must exist and decode, since the submission needs an answer for each."""
    data_dir = Path(data_dir)
    report = DataReport() if report is None else report
    info_csv = data_dir / "eval" / "info.csv"
    info = read_csv_checked(info_csv, INFO_COLUMNS, key="ImageID")
    for line, image_id in enumerate(info["ImageID"], start=2):
        if not is_plain_name(image_id):
            raise DataError(f"{info_csv} line {line}: ImageID {image_id!r} is not a plain file name")
        photo = data_dir / "eval" / "images" / image_id
        if not photo.is_file():
            raise DataError(f"{info_csv} line {line}: photo {image_id!r} not found in {photo.parent}")
        check_photo(photo, report)
    report.eval_photos = len(info)
    return pd.DataFrame({"ImageID": info["ImageID"], "path": "eval/images/" + info["ImageID"]})


def read_photo(path: Path, at_least: int | None = None) -> Image.Image:
    """An RGB photo, turned upright by its EXIF orientation; a JPEG is decoded at a reduced scale
    when both sides stay at least `at_least` pixels (much faster for small model inputs)."""
    with Image.open(path) as image:
        if at_least:
            image.draft("RGB", (at_least, at_least))
        return ImageOps.exif_transpose(image).convert("RGB")


class CachedPhotos(torch.utils.data.Dataset):
    """Rows `rows` of a prepared-image cache (see facemask.cache) with integer `labels` (-1 where
    unknown). A batch is one read of the memory-mapped array: uint8 (batch, height, width, 3).
    With `held`, the whole cache already in memory (on a GPU, see `load_cache`), a batch is sliced
    from it instead, in the loading process: no reads, no copies, no loader workers."""

    def __init__(self, cache: str | Path, rows: Sequence[int], labels: Sequence[int], held: torch.Tensor | None = None):
        self.cache, self.rows = Path(cache), np.asarray(rows, dtype=np.int64)
        self.labels = torch.tensor(np.array(labels, dtype=np.int64))
        self.held, self.pixels = held, None  # pixels: the memory-mapped file, opened on first use by the process that reads
        if held is not None:
            self.labels, self.held_rows = self.labels.to(held.device), torch.from_numpy(self.rows).to(held.device)
        photos = np.load(self.cache, mmap_mode="r").shape[0]
        if len(self.rows) and not 0 <= self.rows.min() <= self.rows.max() < photos:
            raise DataError(f"{self.cache}: holds {photos} photos, not the {self.rows.max() + 1}+ of the photo index; "
                            "it is stale: delete it and rerun")

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        return self.__dict__ | {"pixels": None}  # workers open the file themselves

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.held is not None:
            picked = torch.as_tensor(indices).to(self.held.device, non_blocking=True)  # no wait for the GPU
            return self.held[self.held_rows[picked]], self.labels[picked]
        if self.pixels is None:
            self.pixels = np.load(self.cache, mmap_mode="r")  # pages load on first touch, then stay in the OS cache
        rows = self.rows[np.asarray(indices)]
        order = np.argsort(rows, kind="stable")  # read the file front to back
        images = np.empty((len(rows), *self.pixels.shape[1:]), dtype=np.uint8)
        images[order] = self.pixels[rows[order]]
        return torch.from_numpy(images), self.labels[np.asarray(indices)]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([i])
        return images[0], labels[0]


def load_cache(cache: str | Path, device: torch.device, share_of_free_memory: float = 0.5) -> torch.Tensor | None:
    """The whole image cache as one uint8 tensor on `device` (a GPU), when it takes at most
    `share_of_free_memory` of the GPU's free memory; else None (batches are then read from the file)."""
    if device.type != "cuda":
        return None
    pixels = np.load(cache, mmap_mode="r")
    free, _ = torch.cuda.mem_get_info(device)
    if pixels.nbytes > share_of_free_memory * free:
        log.info("image cache %s (%.1f GiB) is over %.0f%% of the GPU's free %.1f GiB: reading it with loader workers",
                 cache, pixels.nbytes / 2**30, share_of_free_memory * 100, free / 2**30)
        return None
    on_device = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
    log.info("image cache %s (%.1f GiB) held on %s", cache, pixels.nbytes / 2**30, device)
    return on_device


def whole_batch(batch):
    """The collate function of CachedPhotos loaders: a batch arrives already stacked."""
    return batch


def photo_loader(dataset, batch_size: int, workers: int, shuffle: bool = False, seed: int = 0, sample_weights=None):
    """A DataLoader over `dataset`. For training (`shuffle`): a seeded order, or a seeded draw with
    replacement in proportion to `sample_weights` when given, and no last short batch (a batch of
    one breaks batch norm). Batches come in pinned memory when a GPU is used, for asynchronous copies,
    unless they are sliced from a cache held in memory (no workers then)."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    sampler = None
    if sample_weights is not None:
        sampler = torch.utils.data.WeightedRandomSampler(sample_weights, len(dataset), replacement=True, generator=generator)
    held = getattr(dataset, "held", None) is not None
    if held:
        workers = 0  # batches are sliced from the held cache, in this process
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler, generator=generator,
        num_workers=workers, pin_memory=torch.cuda.is_available() and not held, persistent_workers=workers > 0,
        drop_last=shuffle and len(dataset) > batch_size, collate_fn=whole_batch,
    )

"""The competition's data layout: check and index the photos, and read one photo (no torch needed)."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from facemask.utils.errors import DataError
from facemask.classes.labels import GENDER_CODES, MASK_BY_PHOTO, age_band, checked_age_cuts, encode_class
from facemask.utils.logs import Progress, log

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
#: the columns info.csv must have: its `ans` column, which the submission fills in, may be left out
INFO_COLUMNS = ("ImageID",)
EXIF_ORIENTATION = 0x0112
#: the image modes (as PIL opens them) that `to_rgb` decodes; any other is refused by the data check
PHOTO_MODES = (
    "1",
    "L",
    "LA",
    "P",
    "PA",
    "RGB",
    "RGBA",
    "RGBX",
    "CMYK",
    "YCbCr",
    "I;16",
    "I;16L",
    "I;16B",
    "I;16N",
    "I",
    "F",
)
#: I and F carry no bit depth: their samples are read on the first of these scales that holds the brightest
FULL_SCALES = (1.0, 255.0, 65535.0, 2.0**31 - 1)
#: what shows through transparent pixels
ALPHA_BACKGROUND = (255, 255, 255)
#: photos smaller than this on a side are refused (the competition's are 384 x 512)
MIN_PHOTO_SIDE = 32


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
        plain = {
            "people": self.people,
            "train_photos": self.train_photos,
            "eval_photos": self.eval_photos,
            "exif_rotated": self.exif_rotated,
            "extensions": dict(sorted(self.extensions.items())),
            "converted_to_rgb": dict(sorted(self.converted_modes.items())),
        }
        for name in ("ignored_files", "unlisted_folders", "skipped_unreadable"):
            files = getattr(self, name)
            plain[name] = {"count": len(files), "files": files}
        return plain


def check_photo(path: Path, report: DataReport, min_side: int = MIN_PHOTO_SIDE) -> None:
    """Decode `path` as read_photo does (a JPEG at reduced scale, which is fast) or raise a
    DataError saying why not: unreadable, smaller than `min_side` pixels on a side, or of an image
    mode outside PHOTO_MODES; count photos converted to RGB or turned upright by their EXIF orientation."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            mode, rotated = image.mode, image.getexif().get(EXIF_ORIENTATION, 1) != 1
            if min(image.size) < min_side:
                raise DataError(
                    f"{path}: {image.width} x {image.height} pixels, too small "
                    f"(min_photo_side: {min_side} pixels on each side)"
                )
            if mode not in PHOTO_MODES:
                raise DataError(f"{path}: image mode {mode} is not one this pipeline decodes {PHOTO_MODES}")
            image.draft("RGB", (max(image.width // 4, 1), max(image.height // 4, 1)))
            to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from error
    report.exif_rotated += rotated
    if mode != "RGB":
        report.converted_modes[mode] += 1


def is_photo_file(path: Path) -> bool:
    """True for a file whose extension is a photo's (.jpg, .jpeg, .png, any case)."""
    return path.suffix.lower() in PHOTO_SUFFIXES


def is_plain_name(name: str) -> bool:
    """True for a file or folder name that cannot lead out of its folder."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def find_person_photos(folder: Path, report: DataReport) -> dict[str, Path]:
    """The seven photos of a person folder by stem (`mask1` .. `normal`), any extension case;
    other files are ignored and counted in `report`."""
    photos: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        stem = file.stem
        if not is_photo_file(file) or stem not in MASK_BY_PHOTO or not file.is_file():
            report.ignored_files.append(str(file))
            continue
        if stem in photos:
            raise DataError(f"{folder}: two photos named {stem!r} ({photos[stem].name}, {file.name})")
        photos[stem] = file
    missing = sorted(set(MASK_BY_PHOTO) - set(photos))
    if missing:
        raise DataError(f"{folder}: missing photo(s) {missing}")
    return photos


def check_person_row(person, where: str) -> dict:
    """The fields of a train.csv row (id, gender, race, age, path), checked against its folder
    name; `where`: the file and line, for the error."""
    if not is_plain_name(person.path):
        raise DataError(f"{where}: path {person.path!r} is not a plain folder name")
    fields = parse_person_folder(person.path)
    listed = {"id": person.id, "gender": person.gender, "race": person.race, "age": person.age}
    if {k: str(v) for k, v in fields.items()} != listed:
        raise DataError(f"{where}: row {listed} disagrees with its folder name {person.path!r}")
    return fields


def photo_row(path: str, stem: str, fields: dict, age_bins: Sequence[int]) -> dict:
    """A training photo's index row: path, person, gender, race, age, photo, task labels, class."""
    mask, gender, age = MASK_BY_PHOTO[stem], GENDER_CODES[fields["gender"]], age_band(fields["age"], age_bins)
    return {
        "path": path,
        "person": fields["id"],
        "gender": fields["gender"],
        "race": fields["race"],
        "age": fields["age"],
        "photo": stem,
        "mask_label": mask,
        "gender_label": gender,
        "age_label": age,
        "label": int(encode_class(mask, gender, age)),
    }


def index_train_photos(
    data_dir: str | Path,
    age_bins: Sequence[int],
    report: DataReport | None = None,
    skip_unreadable: bool = False,
    min_side: int = MIN_PHOTO_SIDE,
) -> pd.DataFrame:
    """One row per training photo: its path (relative to `data_dir`), person, gender, race, age,
    the three task labels and the 18-class label. Every photo is decoded once to check it; one that
    fails check_photo is an error, or skipped and counted in `report` when `skip_unreadable`."""
    data_dir = Path(data_dir)
    report = DataReport() if report is None else report
    age_bins = checked_age_cuts(age_bins)
    train_csv = data_dir / "train" / "train.csv"
    images_dir = data_dir / "train" / "images"
    people = read_csv_checked(train_csv, TRAIN_COLUMNS, key="id")
    rows, progress = [], Progress(len(people) * len(MASK_BY_PHOTO), "checking train photos")
    for line, person in enumerate(people.itertuples(index=False), start=2):
        fields = check_person_row(person, f"{train_csv} line {line}")
        folder = images_dir / person.path
        if not folder.is_dir():
            raise DataError(f"{folder}: person folder listed in {train_csv} does not exist")
        for number, (stem, file) in enumerate(find_person_photos(folder, report).items(), start=1):
            try:
                check_photo(file, report, min_side)
            except DataError as error:
                if not skip_unreadable:
                    raise
                log.warning("skipped: %s", error)
                report.skipped_unreadable.append(str(file))
            else:
                report.extensions[file.suffix.lower()] += 1
                rows.append(photo_row(file.relative_to(data_dir).as_posix(), stem, fields, age_bins))
            progress.update((line - 2) * len(MASK_BY_PHOTO) + number, 1)
    listed_folders = set(people["path"])
    report.unlisted_folders += sorted(
        str(f) for f in images_dir.iterdir() if f.is_dir() and f.name not in listed_folders
    )
    report.people, report.train_photos = len(people), len(rows)
    return pd.DataFrame(rows)


def index_eval_photos(
    data_dir: str | Path, report: DataReport | None = None, min_side: int = MIN_PHOTO_SIDE
) -> pd.DataFrame:
    """The eval photos in `info.csv` order: ImageID and path (relative to `data_dir`); every
    photo must exist and pass check_photo, since the submission needs an answer for each."""
    data_dir = Path(data_dir)
    report = DataReport() if report is None else report
    info_csv = data_dir / "eval" / "info.csv"
    info = read_csv_checked(info_csv, INFO_COLUMNS, key="ImageID")
    progress = Progress(len(info), "checking eval photos")
    for line, image_id in enumerate(info["ImageID"], start=2):
        if not is_plain_name(image_id):
            raise DataError(f"{info_csv} line {line}: ImageID {image_id!r} is not a plain file name")
        photo = data_dir / "eval" / "images" / image_id
        if not photo.is_file():
            raise DataError(f"{info_csv} line {line}: photo {image_id!r} not found in {photo.parent}")
        check_photo(photo, report, min_side)
        progress.update(line - 1, 1)
    report.eval_photos = len(info)
    return pd.DataFrame({"ImageID": info["ImageID"], "path": "eval/images/" + info["ImageID"]})


def read_photo(path: Path, at_least: int | None = None) -> Image.Image:
    """A photo as 8-bit RGB (see to_rgb), turned upright by its EXIF orientation; a JPEG is decoded
    at a reduced scale when both sides stay at least `at_least` pixels (much faster for small model
    inputs)."""
    with Image.open(path) as image:
        if at_least:
            image.draft("RGB", (at_least, at_least))
        return to_rgb(ImageOps.exif_transpose(image))


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB pixels of an image in one of PHOTO_MODES: deeper samples scaled (not clipped) to
    0..255, transparency composited on ALPHA_BACKGROUND, palette, CMYK and YCbCr converted by PIL."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = Image.fromarray(grey_8bit(np.asarray(image), image.mode))
    if image.has_transparency_data:
        background = Image.new("RGBA", image.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def grey_8bit(samples: np.ndarray, mode: str) -> np.ndarray:
    """Greyscale samples of mode I;16 (any byte order; full scale 65535), I or F (full scale: the
    first of FULL_SCALES that holds the brightest sample) as uint8 0..255, rounded."""
    samples = np.nan_to_num(samples.astype(np.float64))
    brightest = samples.max(initial=0.0)
    full_scale = (
        65535.0
        if mode.startswith("I;16")
        else next((s for s in FULL_SCALES if brightest <= s), FULL_SCALES[-1])
    )
    return np.rint(np.clip(samples, 0.0, full_scale) * (255.0 / full_scale)).astype(np.uint8)

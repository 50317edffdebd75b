"""A deterministic synthetic data set in the competition's exact layout, for the demo and tests.

Each person is a drawn face whose cues carry the labels: hair style shows gender (short for men,
long for women), a mask covers nose and mouth (worn), only mouth and chin (incorrect) or nothing,
and the age in years (18 to 80) shows as on real faces, a little more with every year and at each
person's own pace: greying hair, forehead lines, crow's feet and folds, duller skin, age spots.
Ages follow the competition's imbalance (AGE_BAND_SHARES); the >= 60 band thins out towards 80.
"""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from facemask.utils.files import write_csv
from facemask.classes.labels import GENDER_CODES, MASK_BY_PHOTO, age_band, encode_class
from facemask.config.defaults import schema_default

SKIN_TONES = {
    "Asian": (236, 200, 165),
    "White": (245, 215, 195),
    "Black": (120, 80, 55),
    "Hispanic": (200, 160, 120),
}
MASK_STYLES = ((245, 245, 245), (150, 200, 235), (35, 35, 40), (230, 160, 190), (120, 170, 110))
TRAIN_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".PNG", ".Jpeg")
AGE_BAND_SHARES = (0.45, 0.42, 0.13)
#: the first and last age of each band
AGE_BAND_YEARS = ((18, 29), (30, 59), (60, 80))
MALE_SHARE = 0.4
GREY_HAIR = (228, 228, 232)
#: how far each person's greying, wrinkles and skin run ahead of (or behind) their years, as a
#: share of the way from 18 to 80
AGE_PACE_SD = (0.08, 0.08, 0.06)
AGE_SPOTS = 10


def draw_age(rng: np.random.Generator) -> int:
    """An age in years: a band by AGE_BAND_SHARES, then a year in it, uniform in the bands
    below 60 and thinning out from 60 to 80, as real ages do."""
    band = rng.choice(len(AGE_BAND_YEARS), p=AGE_BAND_SHARES)
    first, last = AGE_BAND_YEARS[band]
    share = rng.beta(1, 2) if band == len(AGE_BAND_YEARS) - 1 else rng.random()
    return min(first + int((last + 1 - first) * share), last)


def draw_person(rng: np.random.Generator) -> dict:
    """A person's fixed traits: gender, race, age, their young look and the pace they age at."""
    gender = "male" if rng.random() < MALE_SHARE else "female"
    age = draw_age(rng)
    race = str(rng.choice(list(SKIN_TONES)))
    dark = rng.normal(45, 12) + rng.normal(12, 6) * np.array((1, 0, -1))  # black to brown
    spots = rng.uniform((-0.6, -0.35, 0.35), (0.6, 0.35, 1), size=(AGE_SPOTS, 3))  # (x, y, onset)
    return {
        "gender": gender,
        "age": age,
        "race": race,
        "hair": tuple(int(c) for c in np.clip(dark, 0, 255)),
        "skin": tuple(int(np.clip(c + rng.normal(0, 8), 0, 255)) for c in SKIN_TONES[race]),
        "face": (rng.normal(0, 0.02), rng.normal(0, 0.02), rng.uniform(0.95, 1.05)),
        "pace": tuple(float(p) for p in rng.normal(0, AGE_PACE_SD)),
        "spots": tuple(tuple(float(c) for c in spot) for spot in spots),
    }


def aged_look(person: dict) -> dict:
    """The look of `person` at their age: hair and skin colours, wrinkles (0 to 1) and the age
    spots shown, each growing smoothly with the years from 18 to 80 at the person's own pace."""
    first, last = AGE_BAND_YEARS[0][0], AGE_BAND_YEARS[-1][1]
    years = (person["age"] - first) / (last - first)
    grey, wrinkles, dull = (
        float(np.clip(cue + pace, 0, 1))
        for cue, pace in zip((years**1.2, 1.2 * years - 0.2, years), person["pace"], strict=True)
    )
    hair = (1 - grey) * np.asarray(person["hair"]) + grey * np.asarray(GREY_HAIR)
    skin = np.asarray(person["skin"], dtype=float)
    skin = ((1 - 0.4 * dull) * skin + 0.4 * dull * skin.mean()) * (1 - 0.12 * dull)
    return {
        "hair": tuple(int(c) for c in hair),
        "skin": tuple(int(c) for c in skin),
        "wrinkles": wrinkles,
        "spots": [(u, v) for u, v, onset in person["spots"] if years + person["pace"][2] > onset],
    }


def shade(colour: tuple, darker: float) -> tuple[int, ...]:
    """`colour` darkened by the share `darker`."""
    return tuple(int(c * (1 - darker)) for c in colour)


def draw_age_marks(draw: ImageDraw.ImageDraw, look: dict, cx: float, cy: float, rx: float, ry: float) -> None:
    """Forehead lines, crow's feet and nose-to-mouth folds that fade in and darken as the wrinkles
    grow, and the age spots; strokes scale with the face, to show at the demo's training size."""
    wrinkles, skin, width = look["wrinkles"], look["skin"], max(1, round(rx / 16))
    for row in range(3):
        y, half = cy - ry * (0.4 - 0.09 * row), rx * (0.45 - 0.05 * row)
        fill = shade(skin, 0.45 * np.clip(3.5 * wrinkles - row, 0, 1))
        draw.line((cx - half, y, cx + half, y), fill=fill, width=width)
    for side in (-1, 1):
        corner = cx + side * rx * 0.52
        for ray in range(3):
            fill = shade(skin, 0.4 * np.clip(3.5 * wrinkles - ray, 0, 1))
            end = (corner + side * rx * 0.2, cy - ry * (0.12 + 0.08 * (ray - 1)))
            draw.line((corner, cy - ry * 0.12, *end), fill=fill, width=width)
        fold = (cx + side * rx * 0.32, cy + ry * 0.08, cx + side * rx * 0.52, cy + ry * 0.48)
        draw.line(fold, fill=shade(skin, 0.4 * wrinkles), width=width)
    radius = max(1.0, rx * 0.05)
    for u, v in look["spots"]:
        x, y = cx + u * rx, cy + v * ry
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=shade(skin, 0.3))


def draw_photo(person: dict, photo: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """One photo (`mask1`..`mask5`, `incorrect_mask` or `normal`) of `person`."""
    background = tuple(int(c) for c in rng.integers(60, 220, size=3))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    look, (dx, dy, scale) = aged_look(person), person["face"]
    cx = width * (0.5 + dx + rng.normal(0, 0.015))
    cy = height * (0.5 + dy + rng.normal(0, 0.015))
    rx, ry = width * 0.27 * scale, height * 0.28 * scale
    if person["gender"] == "female":
        draw.rounded_rectangle(
            (cx - rx * 1.3, cy - ry * 1.2, cx + rx * 1.3, cy + ry * 1.25),
            radius=rx * 0.6,
            fill=look["hair"],
        )
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=look["skin"])
    draw.chord((cx - rx * 1.05, cy - ry * 1.15, cx + rx * 1.05, cy + ry * 0.3), 180, 360, fill=look["hair"])
    draw_age_marks(draw, look, cx, cy, rx, ry)
    for side in (-1, 1):
        draw.ellipse(
            (cx + side * rx * 0.4 - 2, cy - ry * 0.12 - 2, cx + side * rx * 0.4 + 2, cy - ry * 0.12 + 2),
            fill=(20, 20, 20),
        )
    draw.polygon(
        ((cx, cy - ry * 0.05), (cx - rx * 0.22, cy + ry * 0.25), (cx + rx * 0.22, cy + ry * 0.25)),
        fill=(150, 70, 60),
    )
    draw.ellipse((cx - rx * 0.4, cy + ry * 0.36, cx + rx * 0.4, cy + ry * 0.52), fill=(190, 30, 45))
    mask = MASK_BY_PHOTO[photo]
    if mask != 2:
        style = MASK_STYLES[int(photo[-1]) - 1] if mask == 0 else MASK_STYLES[rng.integers(len(MASK_STYLES))]
        top = cy - ry * 0.1 if mask == 0 else cy + ry * 0.58
        draw.rounded_rectangle(
            (cx - rx * 0.85, top, cx + rx * 0.85, cy + ry * 0.95), radius=rx * 0.3, fill=style
        )
        for strap in (-1, 1):
            draw.line(
                (cx + strap * rx * 0.85, top + ry * 0.1, cx + strap * rx * 1.05, top - ry * 0.15),
                fill=style,
                width=2,
            )
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, size=(height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def save_photo(image: Image.Image, path: Path) -> None:
    """Save as JPEG or PNG by the file's extension, whatever its case."""
    image.save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG", quality=90)


def make_demo_data(
    out_dir: str | Path,
    train_people: int = schema_default("demo.train_people"),
    eval_people: int = schema_default("demo.eval_people"),
    width: int = schema_default("demo.width"),
    height: int = schema_default("demo.height"),
    seed: int = schema_default("demo.seed"),
) -> None:
    """Write `train/` (train.csv, a folder of 7 photos per person, mixed extensions) and `eval/`
    (info.csv, hashed flat photo names, and labels.csv with the true answers) under `out_dir`."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(1, train_people + 1):
        person = draw_person(rng)
        folder = f"{number:06d}_{person['gender']}_{person['race']}_{person['age']}"
        rows.append(
            {
                "id": f"{number:06d}",
                "gender": person["gender"],
                "race": person["race"],
                "age": person["age"],
                "path": folder,
            }
        )
        (out_dir / "train" / "images" / folder).mkdir(parents=True, exist_ok=True)
        for photo in MASK_BY_PHOTO:
            suffix = TRAIN_SUFFIXES[rng.integers(len(TRAIN_SUFFIXES))]
            save_photo(
                draw_photo(person, photo, width, height, rng),
                out_dir / "train" / "images" / folder / f"{photo}{suffix}",
            )
    write_csv(pd.DataFrame(rows), out_dir / "train" / "train.csv")

    (out_dir / "eval" / "images").mkdir(parents=True, exist_ok=True)
    answers = []
    for number in range(train_people + 1, train_people + eval_people + 1):
        person = draw_person(rng)
        for photo in MASK_BY_PHOTO:
            image_id = hashlib.sha1(f"{seed}/{number}/{photo}".encode()).hexdigest() + ".jpg"
            save_photo(draw_photo(person, photo, width, height, rng), out_dir / "eval" / "images" / image_id)
            label = encode_class(
                MASK_BY_PHOTO[photo], GENDER_CODES[person["gender"]], age_band(person["age"])
            )
            answers.append({"ImageID": image_id, "ans": int(label), "person": f"{number:06d}"})
    answers = pd.DataFrame(answers).sample(frac=1, random_state=seed).reset_index(drop=True)
    write_csv(answers.assign(ans=0)[["ImageID", "ans"]], out_dir / "eval" / "info.csv")
    write_csv(answers, out_dir / "eval" / "labels.csv")


def make_full_size_data(
    out_dir: str | Path,
    train_people: int = 2700,
    eval_photos: int = 12_600,
    width: int = 384,
    height: int = 512,
    drawn_people: int = 40,
    seed: int = 0,
) -> None:
    """A data set of the competition's size and resolution, made fast for load tests: `drawn_people`
    people are drawn as make_demo_data draws them (one in 20 as PNG, the rest JPEG); every other
    person and eval photo is a copy of their files, under the competition's names."""
    out_dir, rng = Path(out_dir), np.random.default_rng(seed)
    drawn: list[tuple[dict, Path]] = []  # (person, folder) of each drawn person
    rows: list[dict] = []  # train.csv
    for number in range(1, train_people + 1):
        source: Path | None = None
        if number <= drawn_people:
            person = draw_person(rng)
        else:
            person, source = drawn[(number - 1) % drawn_people]
        folder = (
            out_dir / "train" / "images" / f"{number:06d}_{person['gender']}_{person['race']}_{person['age']}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        if source is None:
            for photo in MASK_BY_PHOTO:
                save_photo(
                    draw_photo(person, photo, width, height, rng),
                    folder / f"{photo}{'.png' if number % 20 == 0 else '.jpg'}",
                )
            drawn.append((person, folder))
        else:
            for file in source.iterdir():
                shutil.copyfile(file, folder / file.name)
        fields = {key: person[key] for key in ("gender", "race", "age")}
        rows.append({"id": f"{number:06d}", **fields, "path": folder.name})
    write_csv(pd.DataFrame(rows), out_dir / "train" / "train.csv")
    (out_dir / "eval" / "images").mkdir(parents=True, exist_ok=True)
    jpegs = sorted(file for _, folder in drawn for file in folder.glob("*.jpg"))
    image_ids = [
        hashlib.sha1(f"{seed}/eval/{number}".encode()).hexdigest() + ".jpg" for number in range(eval_photos)
    ]
    for number, image_id in enumerate(image_ids):
        shutil.copyfile(jpegs[number % len(jpegs)], out_dir / "eval" / "images" / image_id)
    write_csv(pd.DataFrame({"ImageID": image_ids, "ans": 0}), out_dir / "eval" / "info.csv")

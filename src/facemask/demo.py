"""A deterministic synthetic data set in the competition's exact layout, for the demo and tests.

Each person is a drawn face whose cues carry the labels: hair style shows gender (short for men,
long for women), hair colour and forehead lines show age (dark when young, greying with age,
white at 60), and a mask covers nose and mouth (worn), only mouth and chin (incorrect) or nothing.
Ages follow the competition's imbalance: the >= 60 band is rare and holds only people aged 60.
"""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from facemask.files import write_csv
from facemask.labels import GENDER_CODES, MASK_BY_PHOTO, age_band, encode_class

SKIN_TONES = {
    "Asian": (236, 200, 165),
    "White": (245, 215, 195),
    "Black": (120, 80, 55),
    "Hispanic": (200, 160, 120),
}
MASK_STYLES = ((245, 245, 245), (150, 200, 235), (35, 35, 40), (230, 160, 190), (120, 170, 110))
TRAIN_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".PNG", ".Jpeg")
AGE_BAND_SHARES = (0.45, 0.42, 0.13)
MALE_SHARE = 0.4


def draw_person(rng: np.random.Generator) -> dict:
    """A person's fixed traits: gender, race, age and the look that goes with them."""
    gender = "male" if rng.random() < MALE_SHARE else "female"
    band = rng.choice(3, p=AGE_BAND_SHARES)
    age = int(rng.integers(18, 30) if band == 0 else rng.integers(30, 60) if band == 1 else 60)
    race = str(rng.choice(list(SKIN_TONES)))
    grey = np.clip((age - 18) / 42, 0, 1) * 190 + 40 + rng.normal(0, 12)
    tint = rng.normal(0, 10, size=3) * (1 - np.clip((age - 18) / 42, 0, 1))
    hair = tuple(int(np.clip(grey + t + d, 0, 255)) for t, d in zip(tint, (10, 0, -10), strict=True))
    return {
        "gender": gender,
        "age": age,
        "race": race,
        "hair": hair,
        "skin": tuple(int(np.clip(c + rng.normal(0, 8), 0, 255)) for c in SKIN_TONES[race]),
        "face": (rng.normal(0, 0.02), rng.normal(0, 0.02), rng.uniform(0.95, 1.05)),
    }


def draw_photo(person: dict, photo: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """One photo (`mask1`..`mask5`, `incorrect_mask` or `normal`) of `person`."""
    background = tuple(int(c) for c in rng.integers(60, 220, size=3))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    dx, dy, scale = person["face"]
    cx = width * (0.5 + dx + rng.normal(0, 0.015))
    cy = height * (0.5 + dy + rng.normal(0, 0.015))
    rx, ry = width * 0.27 * scale, height * 0.28 * scale
    if person["gender"] == "female":
        draw.rounded_rectangle(
            (cx - rx * 1.3, cy - ry * 1.2, cx + rx * 1.3, cy + ry * 1.25),
            radius=rx * 0.6,
            fill=person["hair"],
        )
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=person["skin"])
    draw.chord((cx - rx * 1.05, cy - ry * 1.15, cx + rx * 1.05, cy + ry * 0.3), 180, 360, fill=person["hair"])
    for line in range(max(0, (person["age"] - 35) // 8)):
        y = cy - ry * (0.45 - 0.07 * line)
        draw.line((cx - rx * 0.45, y, cx + rx * 0.45, y), fill=(90, 60, 50), width=1)
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
    train_people: int = 60,
    eval_people: int = 30,
    width: int = 96,
    height: int = 128,
    seed: int = 0,
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

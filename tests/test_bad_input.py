"""Bad input gets a clear error naming the file and the problem, or a documented, counted skip."""

import shutil

import pandas as pd
import pytest
import yaml
from PIL import Image

from facemask.data.photo_index import DataReport, index_eval_photos, index_train_photos, read_photo
from facemask.utils.errors import DataError

from .conftest import demo_work_folder, snakemake


@pytest.fixture
def data(demo_dir, tmp_path):
    """A private copy of the generated data set to break."""
    return shutil.copytree(demo_dir, tmp_path / "data")


def person_folder(data, number=0):
    return sorted((data / "train" / "images").iterdir())[number]


def photo(data, stem, number=0):
    return next(person_folder(data, number).glob(f"{stem}.*"))


def edit_csv(path, change):
    """Replace the CSV at `path` by `change(table)`."""
    change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)


def edit_train_csv(data, row, **values):
    """Set `values` in one row of train.csv."""

    def change(people):
        for column, value in values.items():
            people.loc[row, column] = value
        return people

    edit_csv(data / "train" / "train.csv", change)


def index_both(data, skip_unreadable=False, min_side=32):
    report = DataReport()
    train = index_train_photos(data, (30, 60), report, skip_unreadable=skip_unreadable, min_side=min_side)
    evaluation = index_eval_photos(data, report, min_side=min_side)
    return train, evaluation, report


# photos ------------------------------------------------------------------------------------------


def test_a_corrupt_jpeg_is_an_error_naming_it(data):
    bad = photo(data, "mask2")
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" * 20)
    with pytest.raises(DataError, match=f"{bad.name}: not a readable image"):
        index_both(data)


def test_a_truncated_jpeg_is_an_error_naming_it(data):
    bad = photo(data, "normal")
    Image.new("RGB", (96, 128), "red").save(bad, format="JPEG")
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(DataError, match=f"{bad.name}: not a readable image"):
        index_both(data)


def test_a_zero_byte_photo_is_an_error_naming_it(data):
    bad = photo(data, "mask5")
    bad.write_bytes(b"")
    with pytest.raises(DataError, match=f"{bad.name}: empty file"):
        index_both(data)


def test_unreadable_training_photos_can_be_skipped_and_are_counted(data):
    bad = photo(data, "mask5")
    bad.write_bytes(b"")
    train, _, report = index_both(data, skip_unreadable=True)
    assert report.to_dict()["skipped_unreadable"] == {"count": 1, "files": [str(bad)]}
    assert len(train) == 7 * 12 - 1 and bad.relative_to(data).as_posix() not in set(train["path"])


def test_an_unreadable_eval_photo_is_always_an_error(data):
    info = pd.read_csv(data / "eval" / "info.csv", dtype=str)
    bad = data / "eval" / "images" / info["ImageID"][3]
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match=info["ImageID"][3]):
        index_both(data, skip_unreadable=True)


@pytest.mark.parametrize("size", [(1, 1), (31, 400), (400, 31)])
def test_a_photo_under_min_photo_side_is_an_error_naming_it(data, size):
    bad = photo(data, "mask4")
    Image.new("RGB", size, "red").save(bad, format="PNG")
    with pytest.raises(DataError, match=f"{bad.name}: {size[0]} x {size[1]} pixels, too small"):
        index_both(data)
    index_both(data, min_side=1)  # the limit is config (min_photo_side)


def test_a_tiny_training_photo_can_be_skipped_and_is_counted_but_a_tiny_eval_photo_cannot(data):
    tiny = photo(data, "normal", 3)
    Image.new("RGB", (1, 1), "red").save(tiny, format="PNG")
    train, _, report = index_both(data, skip_unreadable=True)
    assert (
        report.to_dict()["skipped_unreadable"] == {"count": 1, "files": [str(tiny)]}
        and len(train) == 7 * 12 - 1
    )
    eval_photo = sorted((data / "eval" / "images").iterdir())[0]
    Image.new("RGB", (16, 16), "red").save(eval_photo, format="PNG")
    with pytest.raises(DataError, match=f"{eval_photo.name}: 16 x 16 pixels, too small"):
        index_both(data, skip_unreadable=True)


def test_an_image_mode_that_is_not_decoded_is_an_error_naming_it(data):
    bad = photo(data, "mask2")
    Image.new("LAB", (96, 128), (50, 0, 0)).save(bad, format="TIFF")
    with pytest.raises(DataError, match=f"{bad.name}: image mode LAB is not one this pipeline decodes"):
        index_both(data)


def test_an_exif_rotated_photo_is_turned_upright_and_counted(data):
    target = photo(data, "mask1")
    target.unlink()
    rotated = target.with_suffix(".jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.new("RGB", (128, 96), "blue").save(rotated, exif=exif.tobytes())
    _, _, report = index_both(data)
    assert report.exif_rotated == 1
    assert read_photo(rotated).size == (96, 128)


# person folders ---------------------------------------------------------------------------------


def test_a_person_folder_missing_a_photo_is_an_error_naming_it(data):
    folder = person_folder(data)
    next(folder.glob("normal.*")).unlink()
    with pytest.raises(DataError, match=f"{folder.name}.*missing photo.*normal"):
        index_both(data)


def test_an_extra_unknown_file_is_ignored_and_counted(data):
    extra = person_folder(data, 2) / "notes.txt"
    extra.write_text("taken on a Tuesday")
    (person_folder(data, 3) / "mask6.jpg").write_bytes(photo(data, "mask1").read_bytes())
    train, _, report = index_both(data)
    assert report.to_dict()["ignored_files"]["count"] == 2
    assert len(train) == 7 * 12


def test_two_files_for_one_photo_name_are_an_error(data):
    original = photo(data, "mask1")
    Image.open(original).save(
        original.with_name("mask1.png")
        if original.suffix.lower() != ".png"
        else original.with_name("mask1.jpg")
    )
    with pytest.raises(DataError, match="two photos named 'mask1'"):
        index_both(data)


@pytest.mark.parametrize(
    ("name", "fields", "problem"),
    [
        ("000001_woman_Asian_45", {"gender": "woman"}, "gender 'woman'"),
        ("000001_female_Asian_forty", {"age": "forty"}, "age 'forty'"),
        ("000001_female_45", {"race": ""}, "expected <id>_<gender>_<race>_<age>"),
    ],
)
def test_a_folder_name_that_does_not_parse_is_an_error_naming_it(data, name, fields, problem):
    folder = person_folder(data)
    folder.rename(folder.with_name(name))
    edit_train_csv(data, 0, path=name, **fields)
    with pytest.raises(DataError, match=f"{name}.*{problem}"):
        index_both(data)


def test_train_csv_disagreeing_with_the_folder_name_is_an_error(data):
    edit_train_csv(data, 4, age="99")
    with pytest.raises(DataError, match="line 6.*disagrees with its folder name"):
        index_both(data)


def test_a_listed_folder_that_does_not_exist_is_an_error(data):
    folder = person_folder(data, 5)
    shutil.rmtree(folder)
    with pytest.raises(DataError, match=f"{folder.name}: person folder listed in .* does not exist"):
        index_both(data)


def test_a_folder_not_listed_in_train_csv_is_left_out_and_counted(data):
    edit_csv(data / "train" / "train.csv", lambda people: people.drop(index=7))
    train, _, report = index_both(data)
    assert report.to_dict()["unlisted_folders"]["count"] == 1
    assert len(train) == 7 * 11


def test_duplicate_person_ids_are_an_error(data):
    edit_train_csv(data, 2, id=pd.read_csv(data / "train" / "train.csv", dtype=str)["id"][1])
    with pytest.raises(DataError, match="listed more than once"):
        index_both(data)


def test_a_train_csv_path_leading_out_of_the_data_folder_is_refused(data):
    edit_train_csv(data, 0, path="../../000001_female_Asian_45")
    with pytest.raises(DataError, match="not a plain folder name"):
        index_both(data)


def test_a_train_csv_missing_a_column_is_an_error_naming_it(data):
    edit_csv(data / "train" / "train.csv", lambda people: people.drop(columns="race"))
    with pytest.raises(DataError, match=r"train.csv: missing column\(s\) \['race'\]"):
        index_both(data)


# info.csv ----------------------------------------------------------------------------------------


def test_info_csv_naming_a_missing_photo_is_an_error(data):
    edit_csv(
        data / "eval" / "info.csv",
        lambda info: pd.concat([info, pd.DataFrame({"ImageID": ["nothere.jpg"], "ans": ["0"]})]),
    )
    with pytest.raises(DataError, match="'nothere.jpg' not found"):
        index_both(data)


@pytest.mark.parametrize("image_id", ["../train/train.csv", "sub/dir.jpg", "..", "a\\b.jpg"])
def test_an_image_id_with_a_path_separator_or_dots_is_refused(data, image_id):
    edit_csv(
        data / "eval" / "info.csv",
        lambda info: info.assign(ImageID=info["ImageID"].where(info.index != 1, image_id)),
    )
    with pytest.raises(DataError, match="not a plain file name"):
        index_both(data)


def test_an_info_csv_with_no_rows_is_an_error(data):
    edit_csv(data / "eval" / "info.csv", lambda info: info.iloc[:0])
    with pytest.raises(DataError, match="info.csv: no rows below the header"):
        index_both(data)


def test_an_info_csv_listing_a_photo_twice_is_an_error(data):
    edit_csv(data / "eval" / "info.csv", lambda info: pd.concat([info, info.iloc[:1]]))
    with pytest.raises(DataError, match="info.csv: ImageID .* is listed more than once"):
        index_both(data)


def test_an_empty_info_csv_file_is_an_error(data):
    (data / "eval" / "info.csv").write_text("")
    with pytest.raises(DataError, match="info.csv: not a readable CSV"):
        index_both(data)


def test_an_info_csv_without_the_ans_column_is_valid_input(data):
    edit_csv(data / "eval" / "info.csv", lambda info: info.drop(columns="ans"))
    _, evaluation, report = index_both(data)
    assert list(evaluation["ImageID"]) == list(pd.read_csv(data / "eval" / "info.csv", dtype=str)["ImageID"])
    assert report.eval_photos == 4 * 7


def test_an_info_csv_without_the_image_id_column_is_an_error_naming_it(data):
    edit_csv(data / "eval" / "info.csv", lambda info: info.rename(columns={"ImageID": "image"}))
    with pytest.raises(DataError, match=r"info.csv: missing column\(s\) \['ImageID'\]"):
        index_both(data)


# the workflow (dry runs: nothing trains) -----------------------------------------------------------


def workflow_run(data, tmp_path, *args, **config):
    """Snakemake in a work folder on the data set `data`, with the demo config updated by `config`."""
    work = demo_work_folder(tmp_path)
    (work / "more.yaml").write_text(yaml.safe_dump({"data_dir": str(data), "eval_labels": None, **config}))
    return snakemake(work, *args, configs=("demo.yaml", "more.yaml"))


FOLD = "results/demo/train/resnet34/fold0/checkpoint.pt"


def test_one_fold_trains_without_the_eval_side_which_stops_the_submission_naming_its_file(data, tmp_path):
    shutil.rmtree(data / "eval")
    train = workflow_run(data, tmp_path, FOLD, "--dry-run")
    assert train.returncode == 0, train.stdout + train.stderr
    assert "index/train_photos.csv" in train.stdout and "eval" not in train.stdout
    submission = workflow_run(data, tmp_path, "submission", "--dry-run")
    assert submission.returncode != 0 and f"{data}/eval/info.csv" in submission.stdout + submission.stderr


def test_an_unreadable_eval_photo_stops_the_eval_index_naming_it_but_no_training(data, tmp_path):
    bad = sorted((data / "eval" / "images").iterdir())[2]
    bad.write_bytes(b"garbage")
    train = workflow_run(data, tmp_path, FOLD, "--dry-run")
    assert train.returncode == 0 and "index/eval_photos.csv" not in train.stdout, train.stdout + train.stderr
    index = workflow_run(data, tmp_path, "results/demo/index/eval_photos.csv")
    assert index.returncode != 0 and f"{bad}: not a readable image" in index.stderr, index.stderr


def test_predict_set_names_are_names_not_patterns(data, tmp_path):
    folders = {"c++": str(data / "eval" / "images"), "photos.v2": str(data / "train" / "images")}
    run = workflow_run(data, tmp_path, "predict", "--dry-run", predict_sets=folders)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in folders:
        assert f"results/demo/predictions/{name}/predictions.csv" in run.stdout


def test_predict_dir_named_like_another_predict_set_is_an_error_naming_both(data, tmp_path):
    photos = [data / "one" / "photos", data / "two" / "photos"]
    for folder in photos:
        shutil.copytree(data / "eval" / "images", folder)
    run = workflow_run(
        data,
        tmp_path,
        "predict",
        "--dry-run",
        predict_sets={"photos": str(photos[0])},
        predict_dir=str(photos[1]),
    )
    message = run.stdout + run.stderr
    assert run.returncode != 0 and f"predict_dir '{photos[1]}' would be the predict set 'photos'" in message
    assert f"predict_sets already gives to '{photos[0]}'" in message and "a name of its own" in message

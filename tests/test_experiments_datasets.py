"""Datasets: the Ionosphere cache with its checksum (offline), CSV/NPZ parsing, the split."""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import pytest

from datafiles import IONOSPHERE_CSV
from lrlab.experiments import datasets
from lrlab.experiments.datasets import (
    IONOSPHERE_SHA256,
    DatasetError,
    batch_order,
    load_dataset,
    split_dataset,
)

SHARED = IONOSPHERE_CSV


def no_network(*args, **kwargs):
    raise OSError("network disabled in tests")


def test_shared_csv_is_the_uci_file_without_its_final_newline():
    data = SHARED.read_bytes()
    assert not data.endswith(b"\n")
    assert hashlib.sha256(data + b"\n").hexdigest() == IONOSPHERE_SHA256


def test_ionosphere_from_the_cache_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets.urllib.request, "urlopen", no_network)
    (tmp_path / "ionosphere.data").write_bytes(SHARED.read_bytes() + b"\n")
    ds = load_dataset("ionosphere")
    assert ds.x.shape == (351, 34) and ds.task == "binary" and ds.classes == ("b", "g")
    assert int(ds.y.sum()) == 225  # 225 good, 126 bad (ionosphere.names)
    ref = load_dataset(f"csv:{SHARED}")
    np.testing.assert_array_equal(ds.x, ref.x)


def test_ionosphere_download_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    good = SHARED.read_bytes() + b"\n"
    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(good))
    assert load_dataset("ionosphere").n == 351
    assert (tmp_path / "ionosphere.data").read_bytes() == good
    # a corrupted cache is fetched again; a corrupted download is refused and not kept
    (tmp_path / "ionosphere.data").write_bytes(b"1,2,g\n")
    monkeypatch.setattr(
        datasets.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"tampered")
    )
    with pytest.raises(DatasetError, match=r"has sha256 [0-9a-f]{64}, expected 46d52186"):
        load_dataset("ionosphere")
    assert not list(tmp_path.glob("*.part"))


def test_ionosphere_unreachable_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets.urllib.request, "urlopen", no_network)
    with pytest.raises(DatasetError) as info:
        load_dataset("ionosphere")
    msg = str(info.value)
    assert "\n" not in msg
    assert "could not download" in msg and str(tmp_path / "ionosphere.data") in msg


def test_the_shared_copy_without_final_newline_is_accepted_offline(tmp_path, monkeypatch):
    data = SHARED.read_bytes()
    assert hashlib.sha256(data).hexdigest() == datasets.IONOSPHERE_SHA256_NO_FINAL_NEWLINE
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets.urllib.request, "urlopen", no_network)
    (tmp_path / "ionosphere.data").write_bytes(data)  # what "put the file at ..." suggests
    assert load_dataset("ionosphere").x.shape == (351, 34)


def test_a_refused_file_is_named_with_its_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets.urllib.request, "urlopen", no_network)
    damaged = SHARED.read_bytes()[:-1]
    (tmp_path / "ionosphere.data").write_bytes(damaged)
    with pytest.raises(DatasetError) as info:
        load_dataset("ionosphere")
    target = tmp_path / "ionosphere.data"
    assert str(info.value) == (
        f"could not download {datasets.IONOSPHERE_URL} (network disabled in tests); the file "
        f"at {target} is refused: its sha256 is {hashlib.sha256(damaged).hexdigest()}, "
        f"expected {IONOSPHERE_SHA256} (another or a damaged copy); put the original there "
        "or use dataset = 'csv:PATH'"
    )


def test_keras_dataset_unreachable(monkeypatch):
    import keras

    def fail():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fail)
    with pytest.raises(DatasetError, match="keras:mnist is not available .*npz:PATH"):
        load_dataset("keras:mnist")


def test_csv_header_target_and_labels(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("label,a,b\nyes,1,2\nno,3,4\nyes,5,6\nmaybe,7,8\n")
    ds = load_dataset(f"csv:{f}", target="label")
    assert ds.classes == ("maybe", "no", "yes") and ds.y.tolist() == [2, 1, 2, 0]
    np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4], [5, 6], [7, 8]])
    assert load_dataset(f"csv:{f}", target=0).y.tolist() == [2, 1, 2, 0]
    with pytest.raises(DatasetError, match="no column named 'lable'; did you mean 'label'"):
        load_dataset(f"csv:{f}", target="lable")


def test_csv_numeric_target_task_inference(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("\n".join(f"{i},{i * 0.37:.3f}" for i in range(80)))
    assert load_dataset(f"csv:{f}").task == "regression"
    g = tmp_path / "c.csv"
    g.write_text("\n".join(f"{i},{i % 3}" for i in range(30)))
    ds = load_dataset(f"csv:{g}")
    assert ds.task == "multiclass" and ds.classes == ("0", "1", "2")
    assert load_dataset(f"csv:{g}", task="regression").y.dtype == np.float32


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("a,b,y\n1,x,g\n2,3,b\n", ["line 2, column 1 ('b')", "'x', not a number"]),
        ("1,2,g\n3,,b\n", ["line 2, column 1 is empty"]),
        ("1,2,g\n3,4\n", ["line 2 has 2 columns, expected 3"]),
        ("", ["holds no rows"]),
        ("1,2,g\n", ["has 1 class"]),
    ],
)
def test_csv_errors_are_one_line(tmp_path, content, words):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(DatasetError) as info:
        load_dataset(f"csv:{f}")
    assert "\n" not in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_npz(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, x=np.arange(12.0).reshape(6, 2), y=np.array(["a", "b"] * 3))
    ds = load_dataset(f"npz:{f}")
    assert ds.classes == ("a", "b") and ds.x.dtype == np.float32
    np.savez(tmp_path / "e.npz", features=np.zeros((2, 2)))
    with pytest.raises(DatasetError, match="needs arrays named 'x' and 'y'"):
        load_dataset(f"npz:{tmp_path / 'e.npz'}")


def test_tail_split_is_keras_validation_split():
    ds = load_dataset(f"csv:{SHARED}")
    s = split_dataset(ds, validation=0.33, method="tail", standardize=False)
    assert len(s.y_train) == 235 and len(s.y_val) == 116  # Keras: floor(351 * 0.67)
    np.testing.assert_array_equal(s.x_val, ds.x[235:])


def test_stratified_split_is_seeded_and_standardized_on_train_only():
    ds = load_dataset("breast_cancer")
    a = split_dataset(ds, validation=0.25, seed=1)
    b = split_dataset(ds, validation=0.25, seed=1)
    c = split_dataset(ds, validation=0.25, seed=2)
    np.testing.assert_array_equal(a.val_rows, b.val_rows)
    assert not np.array_equal(a.val_rows, c.val_rows)
    assert len(a.y_train) == math.floor(569 * 0.75)
    assert set(a.train_rows) | set(a.val_rows) == set(range(569))
    # class shares kept (212 malignant of 569)
    assert abs(np.mean(a.y_val == 0) - 212 / 569) < 0.01
    # z-score from the training rows: exact there, not on validation
    assert np.allclose(a.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(a.x_train.std(axis=0), 1, atol=1e-3)
    raw = ds.x[a.train_rows].astype(np.float64)
    expected = (ds.x[a.val_rows] - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(a.x_val, expected, rtol=1e-4, atol=1e-4)


def test_constant_feature_is_not_divided_by_zero():
    ds = load_dataset(f"csv:{SHARED}")  # column 1 of Ionosphere is always 0
    s = split_dataset(ds, validation=0.33, seed=0)
    assert np.all(np.isfinite(s.x_train)) and np.all(s.x_train[:, 1] == 0)


def test_digits_keep_their_image_shape():
    ds = load_dataset("digits", limit=100)
    assert ds.x.shape == (100, 8, 8, 1) and ds.n_classes == 10


def test_batch_order_is_a_seeded_permutation_per_epoch():
    a = batch_order(3, 0, 50)
    assert sorted(a.tolist()) == list(range(50))
    np.testing.assert_array_equal(a, batch_order(3, 0, 50))
    assert not np.array_equal(a, batch_order(3, 1, 50))
    assert not np.array_equal(a, batch_order(4, 0, 50))

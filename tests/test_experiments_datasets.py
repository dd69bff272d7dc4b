"""Datasets: the Ionosphere cache with its checksum (offline), CSV/NPZ parsing, the split."""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datafiles import IONOSPHERE_CSV
from lrlab.experiments import datasets, tabular
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


# --------------------------------------------------------------------------- hostile data
# (issue 14: data loading validates before it guesses; a data row is never dropped)
SPECIAL_CELLS = ["", "nan", "NaN", " nan ", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e39"]
BODY = [[0.5, -1.0, 2.0, "g"], [1.5, 0.0, -2.0, "b"], [2.5, 1.0, 4.0, "g"], [3.5, 2.0, 0.25, "b"]]


def csv_text(rows, *, header=None, bom=False, newline="\n"):
    lines = ([",".join(header)] if header else []) + [",".join(map(str, r)) for r in rows]
    return ("\ufeff" if bom else "") + newline.join(lines) + newline


first_cells = st.lists(
    st.one_of(st.sampled_from(SPECIAL_CELLS), st.floats(-1e6, 1e6, allow_nan=False).map(repr)),
    min_size=3,
    max_size=3,
)


@given(
    cells=first_cells,
    label=st.sampled_from(["g", "b", "", "nan", "inf", "NA", "?"]),
    header=st.sampled_from([None, ["a", "b", "c", "y"], ["x 1", "x_2", "Z", "label"]]),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_no_data_row_is_ever_dropped_whatever_its_cells(
    tmp_path_factory, cells, label, header, bom, newline
):
    """The first data row is loaded, or refused naming its line: never taken for a header.

    On the old rule a first row with an empty, nan, inf or 1e400 cell, or a BOM on a file
    without a header, made that row a 'header' and it vanished.
    """
    f = tmp_path_factory.mktemp("csv") / "d.csv"
    f.write_bytes(
        csv_text([[*cells, label], *BODY], header=header, bom=bom, newline=newline).encode()
    )
    line = 2 if header else 1
    bad_feature = any(
        c.strip() in SPECIAL_CELLS or not math.isfinite(float(c)) or abs(float(c)) > 3.4e38
        for c in cells
    )
    if bad_feature or label not in ("g", "b"):
        with pytest.raises(DatasetError) as info:
            load_dataset(f"csv:{f}")
        msg = str(info.value)
        assert f": line {line}," in msg and "\n" not in msg, msg
        return
    ds = load_dataset(f"csv:{f}")
    assert ds.n == 1 + len(BODY)  # every row, the first included
    np.testing.assert_array_equal(ds.x[0], np.float32([float(c) for c in cells]))
    assert ds.classes == ("b", "g") and ds.y[0] == ds.classes.index(label)
    if header:
        assert load_dataset(f"csv:{f}", target=header[-1]).n == ds.n  # BOM not in the name


@pytest.mark.parametrize("bad", ["", "nan", "inf", "-inf", "1e400", "NA", "N/A", "?", "NULL"])
@pytest.mark.parametrize("where", [0, 3, 11])
def test_a_missing_target_is_an_error_naming_its_line(tmp_path, bad, where):
    """A blank or nan label is not a class of its own, nor a blank target a regression
    target turned into thousands of classes."""
    for name, value in (("binary", lambda i: "gb"[i % 2]), ("reg", lambda i: f"{i * 0.37:.2f}")):
        rows = [[i, i * 2, value(i)] for i in range(12)]
        rows[where][-1] = bad
        f = tmp_path / f"{name}.csv"
        f.write_text(csv_text(rows))
        with pytest.raises(DatasetError) as info:
            load_dataset(f"csv:{f}")
        assert f"line {where + 1}, target column 2 " in str(info.value)
        assert "every row needs a target" in str(info.value)


def test_a_regression_file_with_one_text_target_asks_for_the_task(tmp_path):
    rows = [[i, i * 0.37 + 0.001] for i in range(300)]
    rows[7][-1] = "0.3.7"  # a typo: the column is no longer all numbers
    f = tmp_path / "r.csv"
    f.write_text(csv_text(rows))
    with pytest.raises(DatasetError) as info:
        load_dataset(f"csv:{f}")
    msg = str(info.value)
    assert "300 distinct labels, more than 50 for task 'auto'" in msg
    assert "set task = 'multiclass'" in msg and "'0.3.7'" in msg
    ds = load_dataset(f"csv:{f}", task="multiclass")  # asked for explicitly: classes
    assert ds.n_classes == 300
    words = tmp_path / "w.csv"
    words.write_text(csv_text([[i, f"w{i}"] for i in range(51)]))
    with pytest.raises(DatasetError, match="51 distinct labels, more than 50"):
        load_dataset(f"csv:{words}")
    assert load_dataset(f"csv:{tmp_path / 'w.csv'}", task="multiclass").n_classes == 51


def test_a_header_of_numbers_is_data_and_refused_with_a_hint(tmp_path):
    """``0,1,y`` (pandas without an index) is no header by the rule; it must not become a
    third class 'y'. An index column's empty name is refused the same way."""
    body = csv_text([[i, i + 1, i % 2] for i in range(10)])
    for first, words in (("0,1,y", "line 1 has the target 'y'"), (",a,y", "line 1, column 0")):
        f = tmp_path / "h.csv"
        f.write_text(f"{first}\n{body}")
        with pytest.raises(DatasetError) as info:
            load_dataset(f"csv:{f}")
        assert words in str(info.value) and "give every column a non-numeric name" in str(
            info.value
        )


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    f = tmp_path / "latin1.csv"
    body = "".join(f"{i},{i},g\n{i},{i},b\n" for i in range(2000))  # decoded ahead in chunks
    f.write_bytes(body.encode() + "3,4,caf\u00e9\n".encode("latin-1") + b"1,2,g\n")
    with pytest.raises(DatasetError, match="latin1.csv: line 4001 is not UTF-8 text"):
        load_dataset(f"csv:{f}")


def test_feature_errors_name_line_and_column_anywhere(tmp_path):
    rows = [[i, i * 2, "gb"[i % 2]] for i in range(9)]
    rows[6][1] = "1e39"  # beyond float32
    f = tmp_path / "d.csv"
    f.write_text(csv_text(rows, header=["a", "b", "y"]))
    with pytest.raises(DatasetError, match=r"line 8, column 1 \('b'\) holds '1e39', not a finite"):
        load_dataset(f"csv:{f}")


def test_from_arrays_and_npz_refuse_missing_targets_naming_the_row(tmp_path):
    x = np.arange(8.0).reshape(4, 2)
    with pytest.raises(DatasetError, match="the target of row 2 is nan"):
        datasets.from_arrays(x, [0.0, 1.0, np.nan, 1.0])
    with pytest.raises(DatasetError, match="the target of row 1 is empty"):
        datasets.from_arrays(x, ["a", "", "a", "b"])
    np.savez(tmp_path / "d.npz", x=x, y=np.array([1.0, np.inf, 0.0, 1.0]))
    with pytest.raises(DatasetError, match="the target of row 1 is inf"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _npz_cases() -> dict[str, tuple[bytes, str]]:
    good = _zip_bytes({"x.npy": _npy(np.zeros((4, 2))), "y.npy": _npy(np.arange(4))})
    huge_header = io.BytesIO()  # claims 2**31 x 1024 float32 (8 GiB), holds nothing
    np.lib.format.write_array_header_1_0(
        huge_header, {"descr": "<f4", "fortran_order": False, "shape": (2**31 + 1, 1024)}
    )
    short_header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        short_header, {"descr": "<f8", "fortran_order": False, "shape": (1000, 2)}
    )
    flipped = bytearray(good)
    flipped[60] ^= 0xFF  # inside x.npy's data: its CRC no longer matches
    return {
        "empty": (b"", "not an .npz file"),
        "text": (b"x,y\n1,2\n", "not an .npz file"),
        "npy": (_npy(np.zeros(3)), "a .npy file (one array)"),
        "truncated": (good[: len(good) // 2], "truncated or damaged"),
        "bad crc": (bytes(flipped), "cannot read"),
        "pickled objects": (
            _zip_bytes({"x.npy": _npy(np.zeros((2, 2))), "y.npy": _npy(np.array([{}, 1]))}),
            "holds Python objects",
        ),
        "huge array": (
            _zip_bytes({"x.npy": huge_header.getvalue(), "y.npy": _npy(np.arange(4))}),
            "over the limit of 8 GiB",
        ),
        "short data": (
            _zip_bytes(
                {"x.npy": short_header.getvalue() + b"\0" * 80, "y.npy": _npy(np.arange(4))}
            ),
            "is truncated",
        ),
    }


@pytest.mark.parametrize("case", sorted(_npz_cases()))
def test_a_garbage_npz_is_one_line(tmp_path, case):
    data, words = _npz_cases()[case]
    f = tmp_path / "bad.npz"
    f.write_bytes(data)
    with pytest.raises(DatasetError) as info:
        load_dataset(f"npz:{f}")
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "size", "limit"), [("csv", 600 << 20, "512 MiB"), ("npz", 5 << 30, "4 GiB")]
)
def test_input_files_over_the_size_limit_are_refused_before_reading(tmp_path, kind, size, limit):
    f = tmp_path / f"big.{kind}"
    with open(f, "wb") as out:
        out.truncate(size)  # sparse: the size is real, no disk is used
    with pytest.raises(DatasetError) as info:
        load_dataset(f"{kind}:{f}")
    assert f"over the limit of {limit}" in str(info.value)


def test_a_file_without_line_breaks_is_refused_not_parsed_into_one_huge_row(tmp_path):
    f = tmp_path / "one-line.csv"
    f.write_text("1," * (tabular.MAX_CSV_LINE // 2 + 1) + "g\n")
    with pytest.raises(DatasetError, match="line 1 is over the limit of 4,194,304 characters"):
        load_dataset(f"csv:{f}")


LOAD = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
    "from lrlab.experiments.datasets import load_dataset, DatasetError\n"
    "try: load_dataset(sys.argv[1])\n"
    "except DatasetError as err: print(err)"
)


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_devices_fifos_and_folders_are_not_read(tmp_path, kind):
    """In a child process with 3 GiB of address space and a timeout, so reading
    ``/dev/zero`` to its end, or waiting for a FIFO's writer, fails instead of hanging."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: a blocking open would wait forever
    cases = [("/dev/zero", "a character device"), (fifo, "a FIFO"), (tmp_path, "a folder")]
    for path, what in cases:
        proc = subprocess.run(
            [sys.executable, "-c", LOAD, f"{kind}:{path}"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
        assert re.fullmatch(f"{path} is {what}.*, not a regular file; .*\n", proc.stdout)


def test_the_download_is_capped_and_never_written_unless_its_checksum_matches(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path))
    asked = []

    class Endless(io.RawIOBase):
        def read(self, n=-1):
            asked.append(n)
            return b"1" * min(n, 1 << 20)

    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout: Endless())
    with pytest.raises(DatasetError, match="has sha256"):
        load_dataset("ionosphere")
    assert asked == [datasets.MAX_DOWNLOAD_BYTES + 1] and not list(tmp_path.iterdir())

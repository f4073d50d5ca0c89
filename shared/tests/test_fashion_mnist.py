"""The Fashion-MNIST reader on fixture files in the released IDX format, well-formed and malformed."""

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from shared.errors import CorruptDataError, DatasetNotFoundError
from shared.fashion_mnist import (
    ENV_VAR,
    FashionMNIST,
    FashionMNISTDataModule,
    load_split,
    nearest_class_mean,
    read_idx,
    resolve_root,
)

FIXTURES = Path(__file__).parent / "fixtures" / "fashion-mnist"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    root = tmp_path / "fmnist"
    shutil.copytree(FIXTURES, root)
    return root


def test_reads_fixture_split_with_header_shapes():
    images, labels = load_split("train", FIXTURES)
    assert images.shape == (20, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (20,) and labels.dtype == np.int64 and labels.max() <= 9
    test_images, _ = load_split("test", FIXTURES)
    assert test_images.shape == (10, 28, 28)


def test_idx_payload_is_read_after_the_header(tmp_path: Path):
    path = tmp_path / "tiny-idx3-ubyte"
    payload = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path.write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 3, 4) + payload.tobytes())
    np.testing.assert_array_equal(read_idx(path), payload)


def test_uncompressed_files_are_found_too(tmp_path: Path):
    for gz in FIXTURES.glob("*.gz"):
        (tmp_path / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    images, _ = load_split("test", tmp_path)
    np.testing.assert_array_equal(images, load_split("test", FIXTURES)[0])


def test_truncated_file_names_the_file_and_the_sizes(data_copy: Path):
    path = data_copy / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte\.gz has 15596 bytes .* truncated"):
        load_split("train", data_copy)


def test_cut_gzip_stream_is_reported(data_copy: Path):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CorruptDataError, match="t10k-labels-idx1-ubyte.gz could not be read"):
        load_split("test", data_copy)


def test_wrong_magic_is_reported(tmp_path: Path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(CorruptDataError, match="not an IDX file of unsigned bytes"):
        read_idx(path)


def test_mismatched_image_and_label_counts(data_copy: Path):
    labels = data_copy / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3])))
    with pytest.raises(CorruptDataError, match=r"expected \(N, 28, 28\) images and N labels"):
        load_split("train", data_copy)


def test_missing_folder_and_missing_file(tmp_path: Path, data_copy: Path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_split("train", tmp_path / "nowhere")
    (data_copy / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"t10k-images-idx3-ubyte\(\.gz\) not found"):
        load_split("test", data_copy)


def test_environment_variable_sets_the_root(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV_VAR, str(FIXTURES))
    assert resolve_root() == FIXTURES
    assert resolve_root("/elsewhere") == Path("/elsewhere")


def test_dataset_normalises_resizes_and_repeats_channels():
    plain = FashionMNIST("test", data_dir=FIXTURES)
    x, y = plain[0]
    assert x.shape == (1, 28, 28) and y.dtype.is_floating_point is False
    raw = load_split("test", FIXTURES)[0][0]
    np.testing.assert_allclose(x[0].numpy(), (raw / 255 - 0.2860) / 0.3530, rtol=1e-5, atol=1e-6)
    rgb = FashionMNIST("test", data_dir=FIXTURES, channels=3, image_size=32, subset=4)
    assert len(rgb) == 4 and rgb[0][0].shape == (3, 32, 32)


def test_datamodule_batches():
    dm = FashionMNISTDataModule(data_dir=str(FIXTURES), batch_size=4, train_subset=8)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 28, 28) and y.shape == (4,)
    assert len(dm.val_dataloader().dataset) == 10


def test_the_installed_debian_files_hold_the_full_dataset():
    """`make install` installs dataset-fashion-mnist; this reads its real headers and sizes."""
    images, labels = load_split("test")
    assert images.shape == (10_000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10


def test_nearest_class_mean_matches_a_brute_force_count(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV_VAR, str(FIXTURES))
    train_x, train_y = load_split("train", FIXTURES)
    test_x, test_y = load_split("test", FIXTURES)
    classes = sorted(set(train_y.tolist()))
    means = {k: train_x[train_y == k].reshape(-1, 784).astype(np.float64).mean(0) for k in classes}
    right = 0
    for image, label in zip(test_x.reshape(-1, 784).astype(np.float64), test_y, strict=True):
        right += min(classes, key=lambda k: np.sum((image - means[k]) ** 2)) == label
    assert nearest_class_mean(0, None, None) == pytest.approx(100 * right / len(test_y), abs=1e-4)
    assert 0 <= nearest_class_mean(1, 12, 6) <= 100

"""MOTChallenge files: the fixture folders in the exact layouts, malformed files, round trips."""

from pathlib import Path

import numpy as np
import pytest

from projects.stgt.mot import (
    Sequence,
    load_sequence,
    motmetrics_data,
    read_det,
    read_gt,
    read_tracks,
    write_sequence,
    write_tracks,
)
from shared.errors import CorruptDataError, DatasetNotFoundError

FIXTURES = Path(__file__).parent / "fixtures"
BAD = FIXTURES / "malformed"


def test_mot17_sequence_folder():
    seq = load_sequence(FIXTURES / "MOT17" / "train" / "MOT17-02-FRCNN")
    assert (seq.name, seq.length, seq.width, seq.height, seq.frame_rate) == ("MOT17-02-FRCNN", 30, 640, 480, 25)
    assert seq.det.shape[1] == 6 and seq.gt.shape[1] == 9
    assert set(np.unique(seq.gt[:, 7])) == {1, 7, 8, 9}  # pedestrians, static person, distractor, occluder
    assert seq.image_path(1).is_file() and seq.image_path(1).name == "000001.jpg"
    first = seq.frame_det(1)
    assert first.shape[1] == 5 and (first[:, 4] <= 1).all()
    text = (FIXTURES / "MOT17/train/MOT17-02-FRCNN/det/det.txt").read_text().splitlines()[0].split(",")
    row = seq.det[0]
    assert row[0] == int(text[0]) and row[1:6] == pytest.approx([float(v) for v in text[2:7]])


def test_mot15_ground_truth_has_no_classes():
    seq = load_sequence(FIXTURES / "MOT15" / "train" / "TUD-mini")
    assert (seq.gt[:, 7] == -1).all() and (seq.gt[:, 8] == 1).all() and (seq.gt[:, 6] == 1).all()


def test_motmetrics_tud_files_read():
    gt = read_gt(motmetrics_data("TUD-Campus") / "gt.txt")
    assert gt.shape == (359, 9) and len(np.unique(gt[:, 1])) == 8 and gt[:, 0].max() == 71
    assert read_tracks(motmetrics_data("TUD-Campus") / "test.txt").shape[1] == 7


@pytest.mark.parametrize(("name", "reader", "words"), [
    ("det_short_row.txt", read_det, ["line 2", "4 columns"]),
    ("det_not_a_number.txt", read_det, ["line 2", "not a number"]),
    ("gt_duplicate_id.txt", read_gt, ["id 1", "frame 1"]),
    ("gt_negative_size.txt", read_gt, ["line 2", "negative width"]),
    ("gt_frame_zero.txt", read_gt, ["line 1", "1-based"]),
])
def test_malformed_rows_name_file_and_line(name, reader, words):
    with pytest.raises(CorruptDataError) as exc:
        reader(BAD / name)
    assert name in str(exc.value)
    for w in words:
        assert w in str(exc.value)


def test_malformed_sequence_folders():
    with pytest.raises(CorruptDataError, match="imHeight missing"):
        load_sequence(BAD / "seq_missing_key")
    with pytest.raises(CorruptDataError, match="det/det.txt: frame 4 is past seqLength=3"):
        load_sequence(BAD / "seq_frame_past_end")
    with pytest.raises(DatasetNotFoundError, match="not a MOTChallenge sequence folder"):
        load_sequence(BAD)


def test_eight_column_ground_truth_keeps_its_class_and_lengths_must_be_whole(tmp_path: Path):
    (tmp_path / "gt.txt").write_text("1,1,10,20,30,60,1,7\n")
    gt = read_gt(tmp_path / "gt.txt")
    assert gt[0, 7] == 7 and gt[0, 8] == 1
    seq = tmp_path / "S"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text("1,-1,10,20,30,60,0.9,-1,-1,-1\n")
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=S\nimDir=img1\nframeRate=25\nseqLength=30.5\n"
                                     "imWidth=640\nimHeight=480\nimExt=.jpg\n")
    with pytest.raises(CorruptDataError, match="seqLength = '30.5' must be a positive whole number"):
        load_sequence(seq)


def test_detections_with_appearance_embeddings(tmp_path: Path):
    seq = load_sequence(FIXTURES / "MOT17" / "train" / "MOT17-04-FRCNN")
    seq.det_feat = np.random.default_rng(0).normal(size=(len(seq.det), 6))
    again = load_sequence(write_sequence(tmp_path / "with_feat", seq))
    np.testing.assert_allclose(again.det_feat, seq.det_feat, atol=1e-5)
    assert again.frame_feat(3).shape == (len(again.frame_det(3)), 6)
    assert load_sequence(FIXTURES / "MOT17" / "train" / "MOT17-04-FRCNN").det_feat is None
    (tmp_path / "ragged.txt").write_text("1,-1,10,20,30,60,0.9,-1,-1,-1,0.1,0.2\n\n2,-1,10,20,30,60,0.9,-1,-1,-1,0.1\n")
    with pytest.raises(CorruptDataError, match="ragged.txt, line 3: 11 columns but line 1 has 12"):
        read_det(tmp_path / "ragged.txt", features=True)


def test_write_and_read_back(tmp_path: Path):
    seq = load_sequence(FIXTURES / "MOT17" / "train" / "MOT17-04-FRCNN")
    again = load_sequence(write_sequence(tmp_path / "copy", seq))
    np.testing.assert_allclose(again.det, seq.det, atol=1e-2)
    np.testing.assert_allclose(again.gt, seq.gt, atol=1e-2)
    rows = np.array([[2, 5, 1.5, 2.5, 10, 20, 0.9], [1, 3, 0, 0, 5, 5, 1.0]])
    back = read_tracks(write_tracks(tmp_path / "res.txt", rows))
    np.testing.assert_allclose(back, rows[[1, 0]], atol=1e-4)  # sorted by frame
    empty = Sequence("x", 25, 3, 10, 10)
    assert load_sequence(write_sequence(tmp_path / "empty", empty), det_file=None).det.shape == (0, 6)

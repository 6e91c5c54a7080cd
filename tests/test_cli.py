"""The command line: bad input gives one clear line and a non-zero exit."""

import subprocess
import sys
import zipfile

import pytest


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "transfer_automl.cli", *args],
                          capture_output=True, text=True, timeout=timeout)


def _one_error_line(proc):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_help_everywhere():
    for args in ([], ["fit"], ["predict"], ["demo"]):
        proc = cli(*args, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout


def _bad_inputs(tmp_path):
    from PIL import Image

    empty = tmp_path / "empty"
    empty.mkdir()
    one = tmp_path / "one_class" / "cat"
    one.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8)).save(one / f"{i}.png")
    few = tmp_path / "few"
    for name, n in (("a", 3), ("b", 1)):
        (few / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(few / name / f"{i}.png")
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("a/x.png", b"data")
        zf.writestr("../evil.png", b"data")
    outside = tmp_path / "outside"
    outside.mkdir()
    linked = tmp_path / "linked"
    for name in ("a", "b"):
        (linked / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8)).save(linked / name / f"{i}.png")
    (linked / "a" / "escape").symlink_to(outside)
    notzip = tmp_path / "file.txt"
    notzip.write_text("hello")
    return {
        "missing": (tmp_path / "nope", "does not exist"),
        "empty": (empty, "image"),
        "one class": (tmp_path / "one_class", "1 class"),
        "tiny class": (few, "'b'"),
        "zip slip": (slip, "outside"),
        "symlink out": (linked, "symbolic link"),
        "not a folder": (notzip, "zip"),
    }


def test_bad_dataset_inputs_fail_with_one_line(tmp_path):
    for case, (path, expected) in _bad_inputs(tmp_path).items():
        proc = cli("fit", str(path), "--cache-dir", str(tmp_path / "cache"))
        line = _one_error_line(proc)
        assert line.startswith("error:"), (case, line)
        assert expected.lower() in line.lower(), (case, line)


def test_bad_option_values(tmp_path):
    proc = cli("fit", str(tmp_path), "--max-trials", "0")
    assert proc.returncode == 2 and "max-trials" in proc.stderr
    proc = cli("fit", str(tmp_path), "--executor", "mars")
    assert proc.returncode == 2 and "executor" in proc.stderr


def test_predict_on_a_non_model_directory(tmp_path):
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(img)
    line = _one_error_line(cli("predict", str(tmp_path), str(img)))
    assert "not an exported model" in line


def test_version_and_fixed_choices_fail_before_any_work(tmp_path):
    from transfer_automl import __version__

    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"transfer-automl {__version__}"
    (tmp_path / "a").mkdir()
    for args, option in ((["--warm-start", "bogus"], "--warm-start"),
                         (["--executor", "mars"], "--executor"),
                         (["--executor", "local", "--spark-master", "local[2]"],
                          "--spark-master")):
        proc = cli("fit", str(tmp_path), "--no-kb", *args, timeout=60)
        assert proc.returncode == 2, proc.stderr  # a usage error, before the data is read
        assert option in proc.stderr and "Searching" not in proc.stdout


def test_a_missing_run_is_named_for_the_command_that_wanted_it(tmp_path):
    proc = cli("history", "nope", "--cache-dir", str(tmp_path))
    assert "history: no run 'nope'" in _one_error_line(proc)


@pytest.mark.slow
def test_fit_through_a_pipe_prints_one_leaderboard_line_per_trial(colour_folder, cache_root):
    proc = cli("fit", str(colour_folder), "--max-trials", "2", "--time-budget", "600",
               "--no-kb", "--cache-dir", str(cache_root), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = lines.index("\t".join(("trial", "status", "val_acc", "epochs", "cost_s", "fidelity",
                                    "origin", "diagnosis", "configuration")))
    board = lines[header + 1:header + 3]  # one line per trial, each with every column
    assert all(len(line.split("\t")) == 9 for line in board)
    assert {line.split("\t")[0] for line in board} == {"t000", "t001"}
    assert any(line.startswith("test accuracy:") for line in lines)

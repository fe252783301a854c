"""The command line never destroys data and never dumps a traceback.

Oracles: the input files' bytes (unchanged), ``os.stat`` modes against the umask, a subprocess that is
sent SIGTERM/SIGHUP/SIGINT in the middle of a write (then the folder's listing), the files' own magic
bytes, numpy counts of the readable labels, and a shell pipeline into ``head``.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from voxweight.cli import main

ROOT = Path(__file__).resolve().parents[2]


def write(path, array, dtype=np.uint8, zooms=(1.0, 1.0, 2.0)):
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=dtype), np.diag([*zooms, 1.0])), str(path))
    return path


@pytest.fixture
def label(tmp_path):
    array = np.zeros((10, 9, 8), dtype=np.uint8)
    array[1:4, 1:4, 1:4] = 1
    array[6:9, 5:8, 4:7] = 2
    return write(tmp_path / "label.nii.gz", array)


def commands(label: Path, out: Path) -> dict[str, list[str]]:
    return {
        "weights": ["weights", str(label), str(out), "--class-balance"],
        "preview": ["preview", str(label), "--out", str(out)],
        "stats": ["stats", str(label), "--no-progress", "--json", str(out)],
    }


@pytest.mark.parametrize("command", ["weights", "preview", "stats"])
@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "other spelling"])
def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path, label, command, how, capsys):
    before = label.read_bytes()
    out = {"same path": label, "symlink": tmp_path / "link.nii.gz", "hard link": tmp_path / "hard.nii.gz",
           "other spelling": tmp_path / "." / "label.nii.gz"}[how]
    if how == "symlink":
        out.symlink_to(label)
    if how == "hard link":
        os.link(label, out)
    assert main(commands(label, out)[command]) == 2
    assert "expected a file other than the inputs" in capsys.readouterr().err
    assert label.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file either


def test_preview_weights_or_image_as_output_is_refused(tmp_path, label, capsys):
    png = tmp_path / "w.png"
    png.write_bytes(b"not yet a figure")
    for option in ("--weights", "--image"):
        assert main(["preview", str(label), option, str(png), "--out", str(png)]) == 2
        assert png.read_bytes() == b"not yet a figure"
    assert "expected a file other than the inputs" in capsys.readouterr().err


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, label, umask):
    previous = os.umask(umask)
    try:
        for suffix, command in (("w.nii.gz", "weights"), ("p.png", "preview"), ("s.json", "stats")):
            out = tmp_path / suffix
            assert main(commands(label, out)[command]) in (0,)
            assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask, command
            os.chmod(out, 0o604)  # replacing a file keeps its mode, as writing into it would
            assert main(commands(label, out)[command]) == 0
            assert stat.S_IMODE(os.stat(out).st_mode) == 0o604, command
    finally:
        os.umask(previous)


SLOW_WRITE = textwrap.dedent("""
    import signal, sys, time
    from voxweight.cli.atomic import atomic_path
    # as in a terminal: a shell's background job (CI) starts with SIGINT ignored, nohup with SIGHUP ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_bytes(b"partial")
        print("writing", flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path, signum):
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"the old file")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert len(list(tmp_path.iterdir())) == 2  # the temporary file is there during the write
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    if signum != signal.SIGINT:
        assert proc.returncode == 128 + signum and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]
    assert target.read_bytes() == b"the old file"


def test_an_ignored_signal_stays_ignored_during_a_write(tmp_path):
    """Under nohup (SIGHUP ignored) a write does not make SIGHUP fatal; the handler is SIG_IGN throughout."""
    from voxweight.cli.atomic import atomic_path

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_the_signal_handlers_are_restored_after_a_write(tmp_path):
    from voxweight.cli.atomic import atomic_path

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {s: signal.getsignal(s) for s in before} == before
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("x")
        raise RuntimeError("boom")
    assert {s: signal.getsignal(s) for s in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def bad_inputs(tmp_path: Path, label: Path) -> dict[str, Path]:
    """One member of each class of unusable input."""
    data = gzip.decompress(label.read_bytes())
    files = {
        "truncated": tmp_path / "truncated.nii.gz", "truncated plain": tmp_path / "truncated.nii",
        "empty": tmp_path / "empty.nii.gz", "garbage": tmp_path / "garbage.nii.gz", "text": tmp_path / "notes.nii",
        "directory": tmp_path / "folder.nii.gz",
    }
    files["truncated"].write_bytes(gzip.compress(data)[: len(gzip.compress(data)) // 2])
    files["truncated plain"].write_bytes(data[: 352 + 40])
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(np.random.default_rng(0).bytes(500))
    files["text"].write_text("this is not an image\n" * 30)
    files["directory"].mkdir()
    files["4D"] = write(tmp_path / "four.nii.gz", np.zeros((4, 4, 4, 2)))
    return files


@pytest.mark.parametrize("command", ["weights", "preview", "preview --weights", "preview --image", "stats"])
def test_every_data_error_names_its_file_and_exits_1(tmp_path, label, command, capsys):
    for kind, bad in bad_inputs(tmp_path, label).items():
        out = tmp_path / ("o.png" if command.startswith("preview") else "o.nii.gz")
        argv = {
            "weights": ["weights", str(bad), str(out), "--class-balance"],
            "preview": ["preview", str(bad), "--out", str(out)],
            "preview --weights": ["preview", str(label), "--weights", str(bad), "--out", str(out)],
            "preview --image": ["preview", str(label), "--image", str(bad), "--out", str(out)],
            "stats": ["stats", str(bad), "--no-progress"],
        }[command]
        if command == "stats" and kind == "directory":
            argv[1] = str(tmp_path / "folder.nii.gz")  # a directory without label files: named too
        assert main(argv) == 1, kind
        err = capsys.readouterr().err
        assert f"error: {bad}" in err or (kind == "directory" and str(bad) in err), (kind, err)
        assert "Traceback" not in err
        assert not out.exists()


def test_an_overflowing_sigma_is_a_data_error(label, tmp_path, capsys):
    assert main(["weights", str(label), str(tmp_path / "w.nii.gz"), "--boundary", "unet", "--sigma", "1e308"]) == 1
    assert f"error: {label}: --sigma" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["weights", "{label}", "{tmp}/w.png", "--class-balance"],
                                  ["weights", "{tmp}/missing.nii.gz", "{tmp}/w.mgz", "--class-balance"],
                                  ["preview", "{label}", "--out", "{tmp}/x.jpg"],
                                  ["preview", "{tmp}/missing.nii.gz", "--out", "{tmp}/x.nii.gz"]])
def test_an_output_format_the_writer_cannot_produce_is_refused_before_any_work(tmp_path, label, argv, capsys):
    argv = [a.format(label=label, tmp=tmp_path) for a in argv]
    assert main(argv) == 2  # even before reading a missing label
    assert "expected a file name ending in" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label.nii.gz"]


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF"),
                                               (".PNG", b"\x89PNG")])
def test_preview_writes_the_format_its_extension_names(tmp_path, label, suffix, magic):
    out = tmp_path / f"preview{suffix}"
    assert main(["preview", str(label), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


def test_stats_counts_skipped_files_and_labels_beyond_num_classes(tmp_path, capsys):
    folder = tmp_path / "labels"
    folder.mkdir()
    good = np.array([[[0, 1], [1, 2]]], dtype=np.uint8)
    write(folder / "a.nii.gz", good)
    write(folder / "b.nii.gz", np.array([[[0, 7], [1, 1]]], dtype=np.uint8))  # 7 >= --num-classes 3
    (folder / "c.nii.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    out = tmp_path / "s.json"
    assert main(["stats", str(folder), "--num-classes", "3", "--no-progress", "--json", str(out)]) == 1
    captured = capsys.readouterr()
    assert "counted 1 of 3 files, skipped 2" in captured.out
    assert "b.nii.gz" in captured.err and "[0, 2]" in captured.err  # the out-of-range label, reported
    payload = json.loads(out.read_text())
    assert payload["positives"] == np.bincount(good.ravel(), minlength=3).tolist()  # numpy's counts, b not in
    assert sorted(Path(p).name for p, _ in payload["skipped"]) == ["b.nii.gz", "c.nii.gz"]
    assert main(["stats", str(folder), "--num-classes", "3", "--no-progress", "--allow-skipped"]) == 0
    assert "skipped 2" in capsys.readouterr().out
    assert main(["stats", str(folder / "a.nii.gz"), "--no-progress"]) == 0


def test_stats_into_head_ends_quietly(tmp_path):
    write(tmp_path / "a.nii.gz", np.eye(6)[None].repeat(3, 0))
    script = (f"set -o pipefail; {sys.executable} -m voxweight stats {tmp_path / 'a.nii.gz'} --num-classes 20000 "
              f"--no-progress | head -n 2")
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    assert proc.stderr == ""  # no BrokenPipeError, no "Exception ignored"

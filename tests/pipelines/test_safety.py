"""A pipeline file cannot run code unless the caller says so.

Oracle: every attack would create a marker file if any of it ran (``os.system("touch ...")``,
``subprocess.run``, ``open(..., "w")``, ...). In safe mode the ``ValueError`` names the key path and the
marker does not exist; with ``trusted=True`` the same file creates the marker (the attack is real). The
shipped pipelines build the same transforms in both modes (hand-written class list, outputs compared).
"""

from __future__ import annotations

import contextlib
import traceback
import warnings

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxweight.pipelines import list_pipelines, load_pipeline
from voxweight.pipelines.load import config_dir

BENIGN = [
    {"_target_": "voxweight.transforms.ClassBalanceWeightd", "keys": "label", "fg_weight": "@fg", "bg_weight": 1.0},
    {"_target_": "monai.transforms.EnsureTyped", "keys": ["label"], "dtype": "$torch.float32"},
    {"_target_": "ToTensord", "keys": "label"},
]


def _config() -> dict:
    return {"fg": 2.0, "pipeline": {"_target_": "Compose", "transforms": [dict(t) for t in BENIGN]}}


def _item(config: dict, index: int) -> dict:
    return config["pipeline"]["transforms"][index]


def _write(tmp_path, config: dict):
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _open_expr(marker) -> str:
    return f"$open({str(marker)!r}, 'w').close()"


# name -> (edit the config in place, expected key path); each edit would create the marker if it ran.
ATTACKS = {
    "os.system": (lambda c, m: c["pipeline"]["transforms"].append(
        {"_target_": "os.system", "command": f"touch {m}"}), "pipeline#transforms#3#_target_"),
    "subprocess.run": (lambda c, m: c["pipeline"]["transforms"].append(
        {"_target_": "subprocess.run", "args": ["touch", str(m)]}), "pipeline#transforms#3#_target_"),
    "builtins.open": (lambda c, m: c["pipeline"]["transforms"].append(
        {"_target_": "builtins.open", "file": str(m), "mode": "w"}), "pipeline#transforms#3#_target_"),
    "prefix trick": (lambda c, m: c["pipeline"]["transforms"].append(
        {"_target_": "monai.transforms.utils_create_transform_ims.os.system", "command": f"touch {m}"}),
        "pipeline#transforms#3#_target_"),
    "expression setting": (lambda c, m: c.update(fg=_open_expr(m) + " or 2.0"), "fg"),
    "expression in list": (lambda c, m: _item(c, 1).update(keys=["label", _open_expr(m) + " or 'x'"]),
                           "pipeline#transforms#1#keys#1"),
    "expression argument": (lambda c, m: _item(c, 0).update(bg_weight=_open_expr(m) + " or 1.0"),
                            "pipeline#transforms#0#bg_weight"),
    "expression import": (lambda c, m: c.update(fg="$import os"), "fg"),
    "_requires_": (lambda c, m: _item(c, 2).update(_requires_=_open_expr(m)), "pipeline#transforms#2#_requires_"),
    "_mode_": (lambda c, m: _item(c, 2).update(_mode_="callable", _requires_=_open_expr(m)),
               "pipeline#transforms#2#_mode_"),
    "_disabled_": (lambda c, m: _item(c, 0).update(_disabled_=False, _requires_=_open_expr(m)),
                   "pipeline#transforms#0#_disabled_"),
    "reader": (lambda c, m: c["pipeline"]["transforms"].insert(0, {
        "_target_": "LoadImaged", "keys": "label", "reader": "builtins.open", "file": str(m), "mode": "w"}),
        "pipeline#transforms#0#reader"),
    "nested target": (lambda c, m: _item(c, 0).update(fg_weight={"_target_": "os.system", "command": f"touch {m}"}),
                      "pipeline#transforms#0#fg_weight#_target_"),
    "callable target": (lambda c, m: _item(c, 2).update(_target_=_open_expr(m)), "pipeline#transforms#2#_target_"),
}
RUN_WHEN_TRUSTED = ["os.system", "subprocess.run", "builtins.open", "prefix trick", "expression setting",
                    "expression argument", "_requires_", "reader", "nested target"]


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_safe_mode_refuses_each_attack_naming_its_key_path_and_nothing_runs(tmp_path, attack):
    marker = tmp_path / "pwned"
    edit, key_path = ATTACKS[attack]
    config = _config()
    edit(config, marker)
    path = _write(tmp_path, config)
    with pytest.raises(ValueError, match=r"trusted=True") as info:
        load_pipeline(path)
    assert str(info.value).startswith(f"{key_path}: "), str(info.value)
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("attack", RUN_WHEN_TRUSTED)
def test_trusted_mode_runs_the_same_file(tmp_path, attack):
    """The attacks are real: with trusted=True, MONAI runs them (loading may then fail, the code has run)."""
    marker = tmp_path / "pwned"
    edit, _ = ATTACKS[attack]
    config = _config()
    edit(config, marker)
    path = _write(tmp_path, config)
    with contextlib.suppress(Exception), warnings.catch_warnings():  # e.g. Compose given os.system's exit code
        warnings.simplefilter("ignore")  # MONAI: "the reader should inherit ImageReader" (it got open's file)
        load_pipeline(path, trusted=True)
    assert marker.exists()


def test_target_given_by_an_override_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = _write(tmp_path, _config())
    payload = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    with pytest.raises(ValueError, match=r"^fg#_target_: .*given as the override fg="):
        load_pipeline(path, fg=dict(payload))
    with pytest.raises(ValueError, match=r"^sigma#_target_: "):
        load_pipeline("train_boundary", sigma=dict(payload))
    with pytest.raises(ValueError, match=r"^fg: a '\$' expression"):
        load_pipeline(path, fg=_open_expr(marker))
    assert not marker.exists()
    load_pipeline(path, trusted=True, fg={"_target_": "os.system", "command": f"touch {marker}"})  # fg = exit code 0
    assert marker.exists()


def test_allowed_items_pass_in_safe_mode(tmp_path):
    """Short MONAI names, full paths, Compose, dtype expressions, @ references and monai.data readers load."""
    config = _config()
    config["pipeline"]["transforms"].insert(0, {"_target_": "LoadImaged", "keys": "label", "reader": "NibabelReader"})
    pipe = load_pipeline(_write(tmp_path, config), fg=5.0)
    out = pipe.transforms[1]({"label": np.array([[0.0, 1.0]])})
    np.testing.assert_allclose(out["label_weight"], [[1.0, 5.0]])  # bg + (fg - bg) * t, by hand


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.sampled_from(["$__import__('os').system('touch {m}')", "$open('{m}', 'w')",
                                "$import subprocess", "%/etc/hostname", {"_target_": "os.system", "command": "x"},
                                {"_target_": "Compose", "_requires_": "$1"}]),
       where=st.lists(st.integers(0, 5), min_size=1, max_size=4), as_list=st.booleans())
def test_payload_anywhere_is_refused_at_its_path(tmp_path, payload, where, as_list):
    """Property: a payload dropped anywhere in a shipped pipeline is refused, the message names where."""
    marker = tmp_path / "pwned"
    payload = payload.format(m=marker) if isinstance(payload, str) else payload
    config = yaml.safe_load((config_dir() / "train_boundary.yaml").read_text())
    node, keys = config, []
    for step in where:  # walk down into dicts / lists as far as the indices lead
        children = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not children or not isinstance(node[children[step % len(children)]], dict | list):
            break
        key = children[step % len(children)]
        node, keys = node[key], [*keys, str(key)]
    if isinstance(node, list):
        node.append(payload)
        keys.append(str(len(node) - 1))
    else:
        node["injected"] = [payload] if as_list else payload
        keys += ["injected", "0"] if as_list else ["injected"]
    expected = "#".join(keys)
    if isinstance(payload, dict):
        expected += "#_target_" if payload["_target_"] == "os.system" else "#_requires_"
    with pytest.raises(ValueError) as info:
        load_pipeline(_write(tmp_path, config))
    assert str(info.value).startswith(f"{expected}: "), (expected, str(info.value))
    assert not marker.exists()


@pytest.mark.parametrize("text", [
    "pipeline: []\nl0: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(f"l{i + 1}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)),
    "pipeline: []\nloop: &a [*a]\n",
])
def test_alias_bombs_and_loops_are_refused_not_walked_forever(tmp_path, text):
    """Oracle: PyYAML builds a 10^9-leaf tree and a list containing itself; safe mode answers with a ValueError."""
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"expected a config of at most 100000 items nested at most 64 deep"):
        load_pipeline(path)


@pytest.mark.parametrize("text, got", [("", "None"), ("- 1\n- 2\n", "list"), ("3\n", "int"), ("a: [1\n", "parse")])
def test_empty_list_scalar_or_broken_file_names_the_file(tmp_path, text, got):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    for trusted in (False, True):
        with pytest.raises(ValueError, match="name_or_path: expected") as info:
            load_pipeline(path, trusted=trusted)
        assert str(path) in str(info.value) and got in str(info.value)


@pytest.mark.parametrize("override, message", [
    ({"sigma": -1}, r"^sigma: expected a finite number > 0, got -1\.0 \(building voxweight\.transforms\.Boundary"),
    ({"boundary_mode": "unnet"}, r"^mode: expected one of 'unet', 'distance', got 'unnet' \(did you mean 'unet'\?\)"),
])
def test_bad_override_value_raises_voxweights_message_on_top(override, message):
    with pytest.raises(ValueError, match=message) as info:
        load_pipeline("train_boundary", **override)
    shown = "".join(traceback.format_exception(info.value))
    assert "Failed to instantiate" not in shown and "_mode_=debug" not in shown
    assert "train_boundary.yaml" in str(info.value)


@pytest.mark.parametrize("override, message", [
    ({"pixdim": [1.0, 1.0]}, r"^pixdim: expected 3 values \(one per spatial axis\), got 2"),
    ({"pixdim": [1.0, 1.0, -2.0]}, r"^pixdim\[2\]: expected a finite number > 0"),
    ({"roi_size": [16, 16]}, r"^roi_size: expected 3 values \(one per spatial axis\), got 2"),
    ({"roi_size": [16, 16, 16, 16]}, r"^roi_size: expected 3 values"),
    ({"roi_size": [16, 0, 16]}, r"^roi_size\[1\]: expected an integer >= 1, got 0"),
])
def test_wrong_length_pixdim_or_roi_size_rejected_at_load_time(override, message):
    for trusted in (False, True):
        with pytest.raises(ValueError, match=message):
            load_pipeline("train_boundary", trusted=trusted, **override)


def test_trusted_must_be_a_bool():
    with pytest.raises(TypeError, match="trusted: expected True or False, got"):
        load_pipeline("inference", trusted="yes")


EXPECTED = {  # the shipped pipelines' transforms, written out by hand from the YAML files
    "inference": ["LoadImaged", "EnsureChannelFirstd", "Orientationd", "Spacingd", "NormalizeIntensityd",
                  "EnsureTyped"],
    "train_class_balanced": ["LoadImaged", "EnsureChannelFirstd", "Orientationd", "Spacingd", "NormalizeIntensityd",
                             "ClassBalanceWeightd", "SpatialPadd", "RandCropByPosNegLabeld", "RandFlipd", "RandFlipd",
                             "RandFlipd", "RandScaleIntensityd", "RandShiftIntensityd", "EnsureTyped"],
}
EXPECTED["train_boundary"] = [*EXPECTED["train_class_balanced"][:6], "BoundaryWeightd",
                              *EXPECTED["train_class_balanced"][6:]]
EXPECTED["train_tubular"] = [*EXPECTED["train_class_balanced"][:5], "TubedSkeletond",
                             *EXPECTED["train_class_balanced"][6:]]


@pytest.mark.parametrize("name", list_pipelines())
def test_shipped_pipelines_load_in_safe_mode_as_in_trusted_mode(name):
    """Oracle: the hand-written class list, and the trusted (full MONAI) build's transforms, attribute by attribute."""
    safe, trusted = load_pipeline(name), load_pipeline(name, trusted=True)
    assert [type(t).__name__ for t in safe.transforms] == EXPECTED[name]
    for a, b in zip(safe.transforms, trusted.transforms, strict=True):
        assert type(a) is type(b)
        assert sorted(vars(a)) == sorted(vars(b))
        for key, value in vars(a).items():
            if isinstance(value, int | float | str | bool | tuple | torch.dtype | type(None)):
                assert value == vars(b)[key], (name, type(a).__name__, key)

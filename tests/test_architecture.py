"""The layout keeps its rules: import contracts, no private names across modules, small modules, old paths.

Oracles: import-linter's own checker on the contracts in pyproject.toml; Python's ``ast`` over every
module's source; the public names as they stood before the layout moved (written out here by hand).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "voxweight"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 300

# The flat layout's public modules and names: each path must keep working (the alias modules).
OLD_PATHS = {
    "voxweight.distance": ["DISTANCE_BACKENDS", "distance_to_foreground", "distance_to_interface", "signed_distance"],
    "voxweight.weights": ["BOUNDARY_MODES", "boundary_weights", "class_balance_weights"],
    "voxweight.weights_multiclass": ["MULTICLASS_BALANCE_MODES", "multiclass_balance_weights"],
    "voxweight.losses": ["REDUCTIONS", "VoxelWeightedBCE", "voxel_weighted_bce"],
    "voxweight.losses_ce": ["VoxelWeightedCE", "voxel_weighted_ce"],
    "voxweight.calibration": ["debias_logits"],
    "voxweight.stats": ["LabelStats", "pos_weight_from_counts"],
    "voxweight.scan": ["list_label_files", "load_label", "scan_labels"],
    "voxweight.bench": ["BenchConfig", "BenchResult", "PairTiming", "format_results", "run_bench", "time_pair",
                        "time_paired"],
    "voxweight.demo": ["DemoReport", "DemoResult", "evaluate", "format_table", "load_test_volumes", "network",
                       "plain_tensor", "run_demo"],
    "voxweight.demo_data": ["synthetic_volume", "vessel_tree", "write_synthetic_dataset", "write_vessel_dataset"],
    "voxweight.demo_metrics": ["boundary_region", "expected_calibration_error", "overlap_scores"],
    "voxweight.pipelines": ["PIPELINE_KEY", "list_pipelines", "load_pipeline"],
    "voxweight.transforms": ["BoundaryWeight", "BoundaryWeightD", "BoundaryWeightDict", "BoundaryWeightd",
                             "ClassBalanceWeight", "ClassBalanceWeightD", "ClassBalanceWeightDict",
                             "ClassBalanceWeightd"],
    "voxweight.cli": ["build_parser", "main"],
}
TOP_LEVEL_API = ["BoundaryLoss", "BoundaryLossSchedule", "DeepSupervision", "DiceCESkeletonRecall",
                 "HausdorffDTLoss", "LabelStats", "SkeletonRecallLoss", "VoxelWeightedBCE", "VoxelWeightedCE",
                 "VoxelWeightedClDice", "VoxelWeightedDice", "VoxelWeightedDiceBCE", "VoxelWeightedDiceCE",
                 "__version__", "boundary_loss", "boundary_weights", "class_balance_weights", "crop_prevalence",
                 "debias_logits", "get_value_checks", "hausdorff_dt_loss", "list_pipelines", "load_pipeline",
                 "multiclass_balance_weights", "pos_weight_from_counts", "scan_labels", "set_value_checks",
                 "skeleton_recall_loss", "tubed_skeleton", "value_checks", "voxel_weighted_bce", "voxel_weighted_ce",
                 "voxel_weighted_cldice", "voxel_weighted_dice"]
ALIASES = ["calibration", "demo_data", "demo_metrics", "distance", "losses_ce", "scan", "weights", "weights_multiclass"]


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_import_contracts_hold():
    """import-linter: layers one way, no circles at any depth, private modules kept inside their package."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ", 0 broken." in proc.stdout, proc.stdout


def test_the_layers_contract_catches_an_import_that_runs_back_up(tmp_path):
    """The checker is real: a copy of the package with one upward import (maps -> losses) breaks the contract."""
    copy = tmp_path / "voxweight"
    subprocess.run(["cp", "-r", str(PACKAGE), str(copy)], check=True)
    labels = copy / "maps" / "labels.py"
    labels.write_text(labels.read_text() + "\nfrom voxweight.losses import reduce as _upward  # noqa\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert "voxweight.maps.labels -> voxweight.losses.reduce" in proc.stdout


def _imported_private_names(tree: ast.Module, module: str) -> list[str]:
    """``from voxweight.x import _y`` and ``voxweight.x._y`` attribute reads, in ``module``'s own code."""
    found = []
    package = module.rsplit(".", 1)[0] if not module.endswith("__init__") else module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([source] if source else []))
            if source.startswith("voxweight") and source != module:
                found += [f"{source}.{a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id == "voxweight":
                found.append(".".join(["voxweight", *reversed(chain)]))
    return found


@pytest.mark.parametrize("path", MODULES, ids=[_name(p) for p in MODULES])
def test_no_module_imports_another_modules_private_name(path):
    """A helper that two modules share is a public name of its module (no leading underscore)."""
    assert _imported_private_names(ast.parse(path.read_text()), _name(path)) == []


def test_the_private_name_check_finds_what_it_should():
    tree = ast.parse("from voxweight.maps.distance import _edt_call\nimport voxweight\nvoxweight.losses.fused._x\n"
                     "from voxweight._validate import describe\nfrom voxweight import __version__\n")
    assert _imported_private_names(tree, "voxweight.cli.stats") == ["voxweight.maps.distance._edt_call",
                                                                     "voxweight.losses.fused._x"]


@pytest.mark.parametrize("path", MODULES, ids=[_name(p) for p in MODULES])
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} lines: split it by what its parts do"


@pytest.mark.parametrize("alias", ALIASES)
def test_alias_modules_define_nothing(alias):
    """An alias of the flat layout only re-exports: new code cannot grow there."""
    tree = ast.parse((PACKAGE / f"{alias}.py").read_text())
    kinds = {type(node).__name__ for node in tree.body[1:]}  # after the docstring
    assert kinds <= {"ImportFrom", "Assign"}, kinds
    assert all(t.id == "__all__" for node in tree.body if isinstance(node, ast.Assign) for t in node.targets)


def test_top_level_api_is_unchanged():
    import voxweight

    assert sorted(voxweight.__all__) == sorted(TOP_LEVEL_API)
    assert all(getattr(voxweight, name) is not None for name in TOP_LEVEL_API)


@pytest.mark.parametrize("module", sorted(OLD_PATHS))
def test_old_public_paths_still_import_the_same_objects(module):
    """Every public module of the flat layout still imports, with the same objects the new homes hold."""
    mod = importlib.import_module(module)
    for name in OLD_PATHS[module]:
        assert hasattr(mod, name), f"{module}.{name}"
        assert name in getattr(mod, "__all__", [name]), f"{name} missing from {module}.__all__"
    import voxweight

    for name in set(OLD_PATHS[module]) & set(TOP_LEVEL_API):
        assert getattr(mod, name) is getattr(voxweight, name)


def test_import_voxweight_stays_light():
    """``import voxweight`` imports none of MONAI, matplotlib, the CLI, the bench or the demo."""
    code = ("import sys, voxweight; heavy = [m for m in ('monai', 'matplotlib', 'voxweight.cli', 'voxweight.bench', "
            "'voxweight.demo') if m in sys.modules]; print(heavy); assert not heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_subpackage_ships_in_the_wheel():
    """Oracle: the folders of voxweight/ holding an __init__.py; [tool.setuptools] packages must list each one
    (an editable install finds them anyway, a wheel built from the list would not)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = ROOT
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "voxweight").rglob("__init__.py")}
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"

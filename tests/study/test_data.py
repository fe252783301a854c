"""The study's datasets. Oracles: the files as nibabel reads them back against the generator re-run with the same
seed; scipy's labelling and dilation for connectivity and touching; physical second moments for round objects;
hand-made MSD / nnU-Net folders for ``find_cases``; a hypothesis property (and numpy's permutation) for the split."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

from voxweight.study.data import (
    SYNTHETIC_KINDS,
    CaseArrays,
    find_cases,
    load_case,
    split_cases,
    synthetic_case,
    write_synthetic_study,
)

SMALL = {"shape": (16, 16, 8), "spacing": (1.0, 1.0, 2.0)}


def touching_pairs(instances: np.ndarray, structure: np.ndarray | None = None, iterations: int = 1
                   ) -> set[tuple[int, int]]:
    """Pairs of distinct ids where one id, dilated (scipy's 6-connected cross by default), overlaps the other."""
    pairs = set()
    for i in np.unique(instances[instances > 0]).tolist():
        grown = ndi.binary_dilation(instances == i, structure=structure, iterations=iterations)
        around = np.unique(instances[grown]).tolist()
        pairs |= {(min(i, j), max(i, j)) for j in around if j not in (0, i)}
    return pairs


def read(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    return {kind: write_synthetic_study(tmp_path_factory.mktemp(kind), kind, 3, seed=0, **SMALL)
            for kind in SYNTHETIC_KINDS}


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_layout_dtypes_affine_and_imbalance(studies, kind):
    folder = studies[kind]
    names = [f"case_{i:03d}" for i in range(3)]
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [f"{n}_0000.nii.gz" for n in names]
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == [f"{n}.nii.gz" for n in names]
    assert (folder / "instancesTr").is_dir() == (kind != "vessels")
    assert not [p for p in folder.rglob(".*")]  # no temporary file left behind
    for name in names:
        image = nib.load(folder / "imagesTr" / f"{name}_0000.nii.gz")
        label = nib.load(folder / "labelsTr" / f"{name}.nii.gz")
        assert image.get_data_dtype() == np.float32 and label.get_data_dtype() == np.uint8
        np.testing.assert_allclose(image.affine, np.diag([1.0, 1.0, 2.0, 1.0]))
        np.testing.assert_allclose(label.affine, image.affine)
        assert image.header.get_zooms() == pytest.approx((1.0, 1.0, 2.0)) and image.shape == (16, 16, 8)
        lab = np.asarray(label.dataobj)
        assert set(np.unique(lab).tolist()) == {0, 1}
        assert 0.01 <= lab.mean() <= 0.05
        img = np.asarray(image.dataobj)
        assert np.isfinite(img).all() and img[lab > 0].mean() > img[lab == 0].mean() + 0.5
        if kind != "vessels":
            inst = nib.load(folder / "instancesTr" / f"{name}.nii.gz")
            assert inst.get_data_dtype() == np.uint16
            np.testing.assert_array_equal(np.asarray(inst.dataobj) > 0, lab > 0)


def test_touching_objects_are_separate_instances_one_voxel_apart(studies):
    """Each touching pair is two instances with a one-voxel border (full connectivity) between them, as annotated
    touching cells are: not in contact, within two voxels, and the binary label keeps them apart."""
    full = np.ones((3, 3, 3), bool)
    for case in find_cases(studies["touching"]):
        instances = read(case["instances"])
        ids = np.unique(instances[instances > 0]).tolist()
        assert ids == list(range(1, len(ids) + 1))
        assert all(ndi.label(instances == i)[1] == 1 for i in ids)  # each instance one 6-connected piece
        assert touching_pairs(instances, full) == set()  # the border: no face, edge or corner contact
        assert len(touching_pairs(instances, full, iterations=2)) >= 1  # but one voxel apart
        assert ndi.label(read(case["label"]), structure=full)[1] == len(ids)


def test_blobs_never_touch(studies):
    for case in find_cases(studies["blobs"]):
        instances = read(case["instances"])
        assert touching_pairs(instances) == set()
        assert ndi.label(instances > 0)[1] == instances.max() >= 2


def test_each_vessel_case_is_one_connected_component(studies):
    for case in find_cases(studies["vessels"]):
        assert "instances" not in case
        assert ndi.label(read(case["label"]))[1] == 1


@pytest.mark.parametrize("seed", [0, 1])
def test_objects_are_round_in_millimetres_on_thick_slices(seed):
    """Per blob, the coordinate spread in mm is alike on the 0.5 mm and the 1.5 mm axes (in voxels it is 1/3)."""
    steps = np.array([0.5, 0.5, 1.5])
    _, _, instances = synthetic_case("blobs", (80, 80, 27), tuple(steps), np.random.default_rng(seed))
    ratios = []
    for i in range(1, int(instances.max()) + 1):
        coords = np.argwhere(instances == i) * steps
        ratios.append(coords[:, 2].std() / coords[:, :2].std(axis=0).mean())
    assert len(ratios) >= 5 and 0.75 < np.median(ratios) < 1.33


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_files_are_the_generator_run_with_the_seed(tmp_path, kind):
    a = write_synthetic_study(tmp_path / "a", kind, 2, seed=5, **SMALL)
    b = write_synthetic_study(tmp_path / "b", kind, 2, seed=5, **SMALL)
    c = write_synthetic_study(tmp_path / "c", kind, 2, seed=6, **SMALL)
    rng = np.random.default_rng(5)
    for case_a, case_b, case_c in zip(find_cases(a), find_cases(b), find_cases(c), strict=True):
        image, label, instances = synthetic_case(kind, SMALL["shape"], SMALL["spacing"], rng)
        np.testing.assert_array_equal(read(case_a["image"]), image)
        np.testing.assert_array_equal(read(case_a["label"]), label)
        if instances is not None:
            np.testing.assert_array_equal(read(case_a["instances"]), instances)
        for key in case_a.keys() - {"name"}:
            np.testing.assert_array_equal(read(case_a[key]), read(case_b[key]))
        assert not np.array_equal(read(case_a["image"]), read(case_c["image"]))


def test_default_shape_foreground_and_an_isotropic_spacing_number(tmp_path):
    for kind in SYNTHETIC_KINDS:
        image, label, _ = synthetic_case(kind, (48, 48, 24), (1.0, 1.0, 2.0), np.random.default_rng(2))
        assert image.shape == label.shape == (48, 48, 24) and 0.01 <= label.mean() <= 0.05
    folder = write_synthetic_study(tmp_path, "blobs", 1, shape=(12, 10, 8), spacing=1.5)
    assert nib.load(folder / "imagesTr" / "case_000_0000.nii.gz").header.get_zooms() == pytest.approx((1.5,) * 3)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"kind": "blob"}, ValueError, r"kind: expected one of 'blobs', 'touching', 'vessels', got 'blob' \(did you mean "
                                   r"'blobs'\?\)"),
    ({"kind": 3}, ValueError, r"kind: expected one of"),
    ({"n": 0}, ValueError, r"n: expected an integer >= 1, got 0"),
    ({"n": 2.0}, TypeError, r"n: expected an integer >= 1"),
    ({"shape": (16, 16)}, ValueError, r"shape: expected 3 sizes"),
    ({"shape": (16, 16, 4)}, ValueError, r"shape: expected sizes >= 8, got \[16, 16, 4\]"),
    ({"shape": (16, 16, 8.0)}, TypeError, r"shape\[2\]: expected an integer"),
    ({"spacing": (1.0, 2.0)}, ValueError, r"spacing: expected 3 values"),
    ({"spacing": (1.0, 1.0, 0.0)}, ValueError, r"spacing\[2\]: expected a finite number > 0"),
    ({"seed": -1}, ValueError, r"seed: expected an integer >= 0, got -1"),
    ({"seed": 0.5}, TypeError, r"seed: expected an integer >= 0"),
])
def test_bad_arguments_name_the_argument(tmp_path, kwargs, error, match):
    args = {"kind": "blobs", "n": 1, **SMALL, **kwargs}
    with pytest.raises(error, match=match):
        write_synthetic_study(tmp_path / "x", args.pop("kind"), args.pop("n"), **args)
    assert not (tmp_path / "x").exists()  # checked before anything is written
    if set(kwargs) <= {"kind", "shape", "spacing"}:
        with pytest.raises(error, match=match):
            synthetic_case(args.get("kind", kwargs.get("kind", "blobs")), args["shape"], args["spacing"],
                           np.random.default_rng(0))


# --- find_cases -------------------------------------------------------------------------------------------------------


def make_folder(root, images=(), labels=(), instances=None):
    for sub, names in (("imagesTr", images), ("labelsTr", labels), ("instancesTr", instances)):
        if names is not None:
            (root / sub).mkdir(parents=True, exist_ok=True)
            for name in names:
                (root / sub / name).write_bytes(b"")
    return root


def test_find_cases_msd_names_hidden_files_ignored_and_nii_accepted(tmp_path):
    folder = make_folder(tmp_path, images=["la_004.nii.gz", "la_003.nii", "._la_003.nii", ".DS_Store", "notes.txt"],
                         labels=["la_003.nii.gz", "la_004.nii.gz", "._la_004.nii.gz", ".DS_Store"])
    (folder / "imagesTr" / "sub.nii.gz").mkdir()  # a folder, not a volume
    assert find_cases(folder) == [
        {"name": "la_003", "image": str(folder / "imagesTr" / "la_003.nii"),
         "label": str(folder / "labelsTr" / "la_003.nii.gz")},
        {"name": "la_004", "image": str(folder / "imagesTr" / "la_004.nii.gz"),
         "label": str(folder / "labelsTr" / "la_004.nii.gz")},
    ]


def test_find_cases_nnunet_names_with_instances_where_present(tmp_path):
    folder = make_folder(tmp_path, images=["b_0000.nii.gz", "a_0000.nii.gz"], labels=["a.nii.gz", "b.nii.gz"],
                         instances=["b.nii.gz", "._a.nii.gz"])
    cases = find_cases(str(folder))
    assert [c["name"] for c in cases] == ["a", "b"]
    assert "instances" not in cases[0] and cases[1]["instances"] == str(folder / "instancesTr" / "b.nii.gz")
    assert cases[1]["image"] == str(folder / "imagesTr" / "b_0000.nii.gz")


def test_a_four_digit_msd_name_with_its_own_label_is_not_a_channel(tmp_path):
    folder = make_folder(tmp_path, images=["case_0001.nii.gz", "case_0002.nii.gz"],
                         labels=["case_0001.nii.gz", "case_0002.nii.gz"])
    assert [c["name"] for c in find_cases(folder)] == ["case_0001", "case_0002"]


def test_find_cases_on_the_written_study(studies):
    cases = find_cases(studies["touching"])
    assert [c["name"] for c in cases] == ["case_000", "case_001", "case_002"]
    assert all(sorted(c) == ["image", "instances", "label", "name"] for c in cases)


def test_images_without_a_label_are_left_out_with_a_warning(tmp_path):
    folder = make_folder(tmp_path, images=["a.nii.gz", "b.nii.gz", "c.nii.gz"], labels=["a.nii.gz", "b.nii.gz"])
    with pytest.warns(UserWarning, match=r"1 image\(s\) without a label .* c\.nii\.gz"):
        assert [c["name"] for c in find_cases(folder)] == ["a", "b"]


@pytest.mark.parametrize(("images", "labels", "match"), [
    (None, ["a.nii.gz"], r"folder: expected imagesTr/ .* got no imagesTr/"),
    (["a.nii.gz", "b.nii.gz"], None, r"folder: expected labelsTr/ beside imagesTr/ with a <name>\.nii\.gz label per "
                                     r"image .* got a dataset folder without labels"),
    (["x_0000.nii.gz", "y.nii.gz"], ["p.nii.gz", "q.nii.gz"],
     r"no matching pair in .*; images: x_0000, y; labels: p, q"),
    ([], [], r"no matching pair in .*; images: none; labels: none"),
    (["a.nii.gz"], ["a.nii.gz", "b.nii.gz"], r"folder: expected at least 2 labelled cases .* got 1 in"),
    (["a_0000.nii.gz", "a_0001.nii.gz", "b_0000.nii.gz"], ["a.nii.gz", "b.nii.gz"],
     r"folder: expected one image channel per case .* got a_0001\.nii\.gz .* single-channel"),
    (["a.nii", "a.nii.gz", "b.nii"], ["a.nii.gz", "b.nii.gz"], r"folder: expected one file per case, got a\.nii "
                                                               r"and a\.nii\.gz"),
])
def test_find_cases_errors_name_the_folder(tmp_path, images, labels, match):
    folder = make_folder(tmp_path / "data", images=images, labels=labels)
    with pytest.raises(ValueError, match=match) as err:
        find_cases(folder)
    assert str(folder) in str(err.value)


def test_find_cases_on_a_missing_folder_or_a_file(tmp_path):
    with pytest.raises(ValueError, match=r"folder: expected a dataset folder .* \(not found\)"):
        find_cases(tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"folder: expected a dataset folder .* \(not a folder\)"):
        find_cases(tmp_path / "file")


# --- split_cases ------------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 60), fraction=st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
       seed=st.integers(0, 2**32))
def test_split_is_disjoint_covers_all_and_has_the_specified_sizes(n, fraction, seed):
    cases = [f"case{i}" for i in range(n)]
    before = list(cases)
    train, test = split_cases(cases, seed, test_fraction=fraction)
    assert cases == before  # not shuffled in place
    assert set(train).isdisjoint(test) and sorted(train + test) == sorted(cases)
    assert len(test) == min(n - 1, max(1, round(fraction * n))) and len(train) >= 1
    assert train == [c for c in cases if c in train] and test == [c for c in cases if c in test]  # order kept
    held = np.random.default_rng(seed).permutation(n)[: len(test)]
    assert set(test) == {cases[i] for i in held}
    assert split_cases(cases, seed, test_fraction=fraction) == (train, test)


def test_split_by_seed():
    cases = [{"name": f"c{i}"} for i in range(8)]
    assert split_cases(cases, 3) == split_cases(list(cases), np.int64(3))
    tests = {tuple(c["name"] for c in split_cases(cases, s)[1]) for s in range(10)}
    assert len(tests) > 1 and all(len(t) == 2 for t in tests)  # round(0.25 * 8)
    assert len(split_cases(cases[:2], 0, test_fraction=0.9)[0]) == 1  # at least one left to train


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    ((["a"], 0), {}, ValueError, r"cases: expected at least 2 cases .* got 1"),
    (({"a", "b"}, 0), {}, TypeError, r"cases: expected a sequence"),
    ((["a", "b"], -1), {}, ValueError, r"seed: expected an integer >= 0, got -1"),
    ((["a", "b"], 1.0), {}, TypeError, r"seed: expected an integer >= 0"),
    ((["a", "b"], 0), {"test_fraction": 0.0}, ValueError, r"test_fraction: expected a number in \(0, 1\), got 0\.0"),
    ((["a", "b"], 0), {"test_fraction": 1}, ValueError, r"test_fraction: expected a number in \(0, 1\), got 1"),
    ((["a", "b"], 0), {"test_fraction": float("nan")}, ValueError, r"test_fraction: expected a number in \(0, 1\)"),
    ((["a", "b"], 0), {"test_fraction": True}, TypeError, r"test_fraction: expected a number"),
    ((["a", "b"], 0), {"test_fraction": "0.2"}, TypeError, r"test_fraction: expected a number"),
])
def test_split_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        split_cases(*args, **kwargs)


# --- load_case --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_load_case_round_trip(studies, kind):
    rng = np.random.default_rng(0)
    for case in find_cases(studies[kind]):
        image, label, instances = synthetic_case(kind, SMALL["shape"], SMALL["spacing"], rng)
        arrays = load_case(case)
        assert isinstance(arrays, CaseArrays)
        assert arrays.image.dtype == np.float32 and arrays.label.dtype == bool
        np.testing.assert_array_equal(arrays.image, image)
        np.testing.assert_array_equal(arrays.label, label > 0)
        if instances is None:
            assert arrays.instances is None
        else:
            assert np.issubdtype(arrays.instances.dtype, np.integer)
            np.testing.assert_array_equal(arrays.instances, instances)
        assert arrays.spacing == (1.0, 1.0, 2.0) and all(isinstance(s, float) for s in arrays.spacing)
        np.testing.assert_allclose(arrays.affine, np.diag([1.0, 1.0, 2.0, 1.0]))
        assert arrays.affine.shape == (4, 4)


def save(path, array, zooms=(0.8, 0.8, 2.5)):
    nib.save(nib.Nifti1Image(array, np.diag([*zooms, 1.0])), path)
    return str(path)


def test_load_case_squeezes_a_trailing_axis_reads_any_label_above_zero_and_casts_the_image(tmp_path, rng):
    image = rng.integers(-1000, 1000, size=(6, 5, 4, 1)).astype(np.int16)  # CT-like: NIfTI-1 has no float16
    label = np.zeros((6, 5, 4), dtype=np.int16)
    label[1, 1, 1], label[2, 2, 2], label[3, 3, 3] = 2, 7, -1  # multi-label ids: foreground; -1 is not > 0
    case = {"image": save(tmp_path / "i.nii.gz", image), "label": save(tmp_path / "l.nii", label)}
    arrays = load_case(case)
    assert arrays.image.shape == (6, 5, 4) and arrays.image.dtype == np.float32
    np.testing.assert_array_equal(arrays.image, image[..., 0].astype(np.float32))
    assert arrays.label.sum() == 2 and arrays.label[1, 1, 1] and not arrays.label[3, 3, 3]
    assert arrays.instances is None and arrays.spacing == pytest.approx((0.8, 0.8, 2.5))
    empty = load_case({"image": case["image"], "label": save(tmp_path / "e.nii.gz", np.zeros((6, 5, 4), np.uint8))})
    assert not empty.label.any()  # an empty label is a valid case


@pytest.mark.parametrize(("image", "label", "instances", "match"), [
    (np.zeros((6, 5, 4, 2), np.float32), None, None, r"image: expected a 3-D volume \(one channel\), got shape "
                                                     r"\[6, 5, 4, 2\]"),
    (np.zeros((6, 5), np.float32), None, None, r"image: expected a 3-D volume"),
    (None, np.zeros((6, 5, 3), np.uint8), None, r"label: expected the image's shape \[6, 5, 4\], got \[6, 5, 3\]"),
    (np.full((6, 5, 4), np.nan, np.float32), None, None, r"image: expected finite values"),
    (None, None, np.full((6, 5, 4), 0.5, np.float32), r"instances: expected integer ids"),
    (None, None, np.full((6, 5, 4), -2, np.int16), r"instances: expected ids >= 0 .* got -2"),
    (None, None, np.zeros((5, 5, 4), np.uint16), r"instances: expected the image's shape"),
])
def test_load_case_errors_name_the_file(tmp_path, image, label, instances, match):
    paths = {"image": save(tmp_path / "i.nii.gz", np.zeros((6, 5, 4), np.float32) if image is None else image),
             "label": save(tmp_path / "l.nii.gz", np.zeros((6, 5, 4), np.uint8) if label is None else label)}
    if instances is not None:
        paths["instances"] = save(tmp_path / "n.nii.gz", instances)
    with pytest.raises(ValueError, match=match) as err:
        load_case(paths)
    assert str(tmp_path) in str(err.value)


def test_load_case_integer_valued_float_instances_and_bad_items(tmp_path):
    ids = np.zeros((6, 5, 4), np.float32)
    ids[1:3] = 2.0
    case = {"image": save(tmp_path / "i.nii.gz", np.zeros((6, 5, 4), np.float32)),
            "label": save(tmp_path / "l.nii.gz", (ids > 0).astype(np.uint8)),
            "instances": save(tmp_path / "n.nii.gz", ids)}
    arrays = load_case(case)
    assert np.issubdtype(arrays.instances.dtype, np.integer) and set(np.unique(arrays.instances)) == {0, 2}
    with pytest.raises(TypeError, match=r"case: expected a mapping with 'image' and 'label'"):
        load_case({"image": case["image"]})
    with pytest.raises(TypeError, match=r"case: expected a mapping"):
        load_case(case["image"])  # type: ignore[arg-type]


def test_load_case_refuses_a_header_without_a_spacing(tmp_path):
    """nibabel itself turns zero zooms into 1 and negative ones positive; a NaN zoom passes through to us."""
    header = nib.Nifti1Header()
    header.set_data_shape((6, 5, 4))
    header.set_data_dtype(np.float32)
    header["pixdim"][1:4] = [1.0, 1.0, np.nan]
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4), np.float32), None, header), tmp_path / "i.nii.gz")
    case = {"image": str(tmp_path / "i.nii.gz"), "label": save(tmp_path / "l.nii.gz", np.zeros((6, 5, 4), np.uint8))}
    with pytest.raises(ValueError, match=r"spacing\[2\]: expected a finite number > 0, got nan \(the zooms of ") as err:
        load_case(case)
    assert str(tmp_path / "i.nii.gz") in str(err.value)

"""The argument checks every part of voxweight shares: one behaviour, messages that name the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from voxweight._validate import as_weight_tensor, check_flag, check_positive_int, check_positive_number, plain_tensor


@given(st.integers(min_value=1, max_value=2**40))
def test_positive_int_accepts_every_integer_from_one(value):
    assert check_positive_int("k", value) == value
    assert check_positive_int("k", np.int64(value)) == value and type(check_positive_int("k", np.int64(value))) is int


@given(st.integers(max_value=0))
def test_positive_int_rejects_zero_and_below_naming_the_argument(value):
    with pytest.raises(ValueError, match=rf"^workers: expected an integer >= 1, got {value}$"):
        check_positive_int("workers", value)


@pytest.mark.parametrize("value", [True, False, 2.0, "3", None, [1]])
def test_positive_int_rejects_non_integers(value):
    with pytest.raises(TypeError, match=r"^n: expected an integer >= 1, got "):
        check_positive_int("n", value)


def test_positive_int_options_word_the_message_and_allow_none():
    assert check_positive_int("k", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"^k: expected a positive int or None, got 0$"):
        check_positive_int("k", 0, allow_none=True, expected="a positive int")


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_flag_accepts_bools_and_returns_a_python_bool(value):
    out = check_flag("strict", value)
    assert type(out) is bool and out == bool(value)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0, np.array([True])])
def test_flag_rejects_everything_else(value):
    with pytest.raises(TypeError, match=r"^strict: expected True or False, got "):
        check_flag("strict", value)
    with pytest.raises(TypeError, match=r"^multiclass: expected a bool, got "):
        check_flag("multiclass", value, expected="a bool")


def test_plain_tensor_strips_subclasses_and_shares_memory():
    from monai.data import MetaTensor

    meta = MetaTensor(torch.arange(4.0), affine=torch.eye(4))
    plain = plain_tensor(meta)
    assert type(plain) is torch.Tensor and plain.data_ptr() == meta.data_ptr()
    t = torch.zeros(2)
    assert plain_tensor(t) is t


@pytest.mark.parametrize(("value", "expected"), [(2, [2.0]), ([1, 2], [1.0, 2.0]), (np.array([0.5]), [0.5]),
                                                 (torch.tensor([3], dtype=torch.int64), [3.0])])
def test_weight_tensor_takes_like_dtype_and_device(value, expected):
    like = torch.zeros(1, dtype=torch.float64)
    out = as_weight_tensor("w", value, like=like)
    assert out.dtype == torch.float64 and out.reshape(-1).tolist() == expected


@pytest.mark.parametrize(("value", "error"), [(True, TypeError), ("1", TypeError), (["a"], TypeError),
                                              (torch.tensor([True]), TypeError), (torch.tensor([1j]), TypeError),
                                              (torch.zeros(1, device="meta"), ValueError)])
def test_weight_tensor_rejects_bad_values_naming_the_argument(value, error):
    with pytest.raises(error, match=r"^pos_weight: expected "):
        as_weight_tensor("pos_weight", value, like=torch.zeros(1))


@pytest.mark.parametrize("allow_zero", [False, True])
def test_an_int_too_large_for_a_float_is_a_value_error_naming_the_argument(allow_zero):
    need = ">= 0" if allow_zero else "> 0"
    message = rf"^sigma: expected a finite number {need}, got an int too large for a float$"
    with pytest.raises(ValueError, match=message):
        check_positive_number("sigma", 10**400, allow_zero=allow_zero)
    with pytest.raises(ValueError, match=r"^pos_weight: expected finite values, got a number too large for float64$"):
        as_weight_tensor("pos_weight", [1.0, 10**400], like=torch.zeros(1))


def test_every_caller_of_the_number_checks_gets_the_value_error():
    """The callers (maps, stats, losses) share the check, so none raises a bare OverflowError."""
    import voxweight

    label = np.zeros((4, 4), dtype=np.uint8)
    calls = [lambda: voxweight.boundary_weights(label, sigma=10**400, spatial_dims=2),
             lambda: voxweight.class_balance_weights(label.astype(np.float32), max_weight=10**400, spatial_dims=2),
             lambda: voxweight.pos_weight_from_counts([1, 2], 10, max_weight=10**400)]
    for call in calls:
        with pytest.raises(ValueError, match="got an int too large for a float"):
            call()

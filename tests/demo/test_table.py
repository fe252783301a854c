"""The demo's table states its threshold, prints every value it holds, and its legend defines every column."""

from __future__ import annotations

import dataclasses
import re

import pytest

from voxweight.demo.table import THRESHOLD, DemoResult, format_legend, format_table

ROW = DemoResult("class balance + boundary map", 0.702, 0.751, 0.658, 0.704, 0.435, 0.0182, 0.7712, 0.7154, 0.35,
                 0.9987)
PLAIN = DemoResult("plain BCE", 0.0, 0.0, 0.0, 0.0, 0.0334, 0.0334, 0.66, 0.64, 0.2, 0.45)


def test_header_states_the_threshold_and_groups_the_columns():
    groups, header, *_ = format_table([ROW]).splitlines()
    assert f"threshold {THRESHOLD:g} (debiased)" in groups
    # the "threshold 0.5" group spans exactly the four thresholded columns, the ECE group its two
    span = re.search(r"-+ threshold 0\.5 \(debiased\) -+", groups).span()
    assert header[span[0]:span[1]].split() == ["dice", "recall", "precision", "bnd.dice"]
    span = re.search(r"-+ ECE -+", groups).span()
    assert header[span[0]:span[1]].split() == ["raw", "debiased"]
    span = re.search(r"best thr\.", groups).span()
    assert header[span[0] - 2:span[1] + 2].split() == ["dice", "thr"]


def test_every_value_is_printed_in_its_column():
    """Oracle: the row parsed back from the text, column by column, equals the result rounded as printed."""
    text = format_table([ROW, PLAIN]).splitlines()
    assert len({len(line) for line in text[1:]}) == 1  # fixed width
    for line, result in zip(text[2:], [ROW, PLAIN], strict=True):
        assert line.startswith(result.name)
        numbers = [float(x) for x in line[len(result.name):].split()]
        expected = [result.dice, result.recall, result.precision, result.boundary_dice, result.average_precision,
                    result.best_dice, result.best_threshold, result.max_probability, result.ece_raw,
                    result.ece_debiased]
        assert numbers == pytest.approx(expected, abs=6e-3)
    assert {f.name for f in dataclasses.fields(DemoResult)} - {"name"} == {
        "dice", "recall", "precision", "boundary_dice", "average_precision", "best_dice", "best_threshold",
        "max_probability", "ece_raw", "ece_debiased"}


def test_legend_defines_every_column_once():
    legend = format_legend().splitlines()
    defined = [re.split(r"\s{2,}", line, maxsplit=1)[0] for line in legend]
    header = format_table([ROW]).splitlines()[1].split()
    assert header[1:] == ["dice", "recall", "precision", "bnd.dice", "AP", "dice", "thr", "max", "p", "raw",
                          "debiased"]
    # the same columns with the name of their group where the header shares a short name ("best thr.", "ECE")
    columns = ["dice", "recall", "precision", "bnd.dice", "AP", "best dice", "thr", "max p", "ECE raw", "ECE debiased"]
    assert sorted(defined) == sorted([*columns, "debiased"])
    assert len(defined) == len(set(defined))
    text = format_legend()
    assert "bnd.dice" in text and "2 mm" in text and "> 0.5" in text
    assert "0.05, 0.10, ..., 0.95" in text  # the grid of the best threshold is stated
    assert "debias_logits" in text

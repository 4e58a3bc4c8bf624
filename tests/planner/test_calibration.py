"""The planner against published throughput measurements (components/catalog/data/throughput_measurements.yaml)."""

import dataclasses

import pytest

from components.catalog import load_catalog
from components.catalog.measurements import load_measurements
from pathlib import Path

from components.planner.calibration import WITHIN, calibration_page, calibration_report, fit_efficiency, replay
from components.planner.constants import CALIBRATED


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def measurements():
    return load_measurements()


def test_the_table_is_broad_and_sourced(catalog, measurements):
    assert len(measurements) >= 12
    assert len({m.model for m in measurements}) >= 5
    assert len({m.gpu for m in measurements}) >= 4
    assert {1, 2, 8} <= {m.tensor_parallel_size for m in measurements}
    assert len({m.id for m in measurements}) == len(measurements)
    for m in measurements:
        assert m.model in catalog.models and m.gpu in catalog.gpus, m.id
        assert m.source.startswith("http") or "github" in m.source.lower(), m.id


def test_predicted_saturated_throughput_is_within_30_percent_for_most_measurements(catalog, measurements):
    report = calibration_report(catalog, measurements)
    print("\n" + report)
    replays = [replay(m, catalog) for m in measurements]
    within = [r for r in replays if abs(r.error) <= WITHIN]
    assert len(within) >= 0.8 * len(replays), report


def test_roofline_bound_is_never_below_a_measurement(catalog, measurements):
    for m in measurements:
        assert replay(m, catalog).upper_bound >= m.output_tokens_per_second, m.id


def test_calibrated_efficiencies_are_what_the_fit_chooses(catalog, measurements):
    fitted = fit_efficiency(measurements, catalog)
    assert dataclasses.asdict(fitted) == dataclasses.asdict(CALIBRATED)


def test_checked_in_calibration_page_is_current(catalog, measurements):
    page = Path(__file__).resolve().parents[2] / "docs" / "calibration.md"
    assert page.read_text() == calibration_page(catalog, measurements), "run `make docs`"

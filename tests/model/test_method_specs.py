"""Every registered method through the same interface checks (as pysteps'
``test_interfaces.py``), and a new method that is one spec and its own file (issue 32)."""

from __future__ import annotations

from datetime import UTC, datetime

import netCDF4
import numpy as np
import pytest

from model.methods import (
    EnsembleMethod,
    MethodKind,
    NowcastMethod,
    ProbabilisticMethod,
    get_method,
    get_spec,
    method_names,
    method_specs,
    probabilistic_names,
)
from model.methods.specs import register_method, unregister_method
from model.nets.architectures import PAPER
from service.formats.netcdf import method_reference
from tests.model.toy_method import SPEC as TOY

REFERENCE_WORDS = {  # what each method's citation must name: its own source, not another's
    "persistence": "persistence",
    "extrapolation": "Lucas-Kanade",
    "extrapolation-inflow": "upwind edge",
    "sprog": "Seed 2003",
    "steps": "Bowler",
    "convlstm-probability": "Theis",
    "convlstm": "Lagrangian",
    "eulerian-convlstm": "arXiv:1506.04214",
    "saconvlstm": "Self-Attention",
    "fclstm": "fully connected LSTM",
}


def test_every_method_has_one_spec_with_its_own_reference():
    specs = method_specs()
    assert set(specs) == set(method_names()) == set(REFERENCE_WORDS)
    references = [spec.reference for spec in specs.values()]
    assert len(set(references)) == len(references), "two methods cite the same thing"
    for name, spec in specs.items():
        assert spec.name == name and spec.summary and spec.factory.count(":") == 1
        assert REFERENCE_WORDS[name] in spec.reference, (name, spec.reference)
        assert method_reference(name) == spec.reference
        if name not in ("eulerian-convlstm", "persistence", "extrapolation", "fclstm"):
            # the pre-processing paper alone was the wrong citation of three methods
            assert spec.reference != f"grey-level pre-processing: {PAPER}"
    assert probabilistic_names() == ("steps", "convlstm-probability")


@pytest.mark.parametrize("name", sorted(REFERENCE_WORDS))
def test_every_method_is_built_by_its_spec_and_keeps_the_interface_its_kind_says(name):
    spec = get_spec(name)
    method = get_method(name)  # learned ones: their shipped checkpoint
    assert isinstance(method, NowcastMethod) and method.name == name
    assert isinstance(method, EnsembleMethod) == (spec.kind is MethodKind.ENSEMBLE)
    assert isinstance(method, ProbabilisticMethod) == (spec.kind is MethodKind.PROBABILISTIC)
    # a method that needs a checkpoint carries the trained network it loaded
    network = getattr(method, "network", method)
    assert spec.needs_checkpoint == hasattr(network, "model"), name
    if name in ("steps", "convlstm-probability", "saconvlstm"):
        return  # slow on a CPU; their outputs are tested in their own files
    rng = np.random.default_rng(0)
    inputs = (rng.random((1, 5, 100, 100)) * 0.6).astype(np.float32)
    out = method(inputs, 3)
    assert out.shape == (1, 3, 100, 100) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_a_new_method_is_one_spec_and_its_own_file_and_is_served_and_cited(tmp_path):
    from service.forecast import Forecast, RainConversion
    from service.formats.netcdf import forecast_to_netcdf
    from service.methods_runner import MethodRunner
    from service.settings import Settings

    register_method(TOY)
    try:
        assert "toy-halving" in method_names()
        with pytest.raises(ValueError, match="registered already"):
            register_method(TOY)
        settings = Settings(
            data_dir=tmp_path, methods=["persistence", "toy-halving"], publish_method="toy-halving"
        )
        runner = MethodRunner(settings)
        inputs = np.full((1, 5, 32, 32), 0.6, dtype=np.float32)
        (_persistence, toy) = runner.run(inputs, 4)
        assert toy.name == "toy-halving" and np.allclose(toy.grey, 0.3)
        forecast = Forecast(
            site_id="toy-1",
            method="toy-halving",
            issue_time=datetime(2026, 1, 1, tzinfo=UTC),
            cadence_min=5.0,
            grey=toy.grey[0],
            model_version=toy.version,
            norm_version="n1-test",
            conversion=RainConversion(dbz_min=-10.0, dbz_max=70.0, zr_a=200.0, zr_b=1.6),
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        path = tmp_path / "toy.nc"
        path.write_bytes(forecast_to_netcdf(forecast))
        with netCDF4.Dataset(path) as nc:
            assert nc.references == TOY.reference
    finally:
        unregister_method(TOY.name)
    assert "toy-halving" not in method_names()

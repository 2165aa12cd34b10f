"""How much of the Lagrangian network's change to the last frame a served forecast keeps,
lead by lead (the residual gate, training-choices round 6).

    field_k = last + gate_k * (network_k - last),   0 <= gate_k <= 1

``network_k`` is the network's Lagrangian field of lead k (grey at the issue time, before the
advection), ``last`` the last input frame. The blend is convex, so the field stays within the
inputs' range; a gate of 0 is exactly the zero start (the extrapolation nowcast with the
network's inflow), a gate of 1 the network as trained. The gate is selected out of sample by
`model.experiments.residual_gate` and stored in the checkpoint's meta as ``residual_gate``
(``by_lead``, ``use``, and how it was chosen); `model.methods.convlstm` applies it when ``use``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def check_gate(gate_by_lead: ArrayLike, n_leads: int) -> np.ndarray:
    """The gate as a float32 ``(n_leads,)`` array; ValueError unless it has ``n_leads`` finite
    values in [0, 1]."""
    gate = np.asarray(gate_by_lead, dtype=np.float32)
    if gate.shape != (n_leads,):
        raise ValueError(f"a residual gate needs {n_leads} values (one per lead), got {gate.shape}")
    if not np.all(np.isfinite(gate)) or gate.min() < 0.0 or gate.max() > 1.0:
        raise ValueError(f"residual gate values must lie in [0, 1], got {gate.tolist()}")
    return gate


def apply_residual_gate(
    fields_grey: np.ndarray, last_grey: np.ndarray, gate_by_lead: ArrayLike
) -> np.ndarray:
    """The gated Lagrangian fields.

    Args:
        fields_grey: ``(B, n_leads, H, W)`` the network's fields, grey in [0, 1].
        last_grey: ``(B, H, W)`` the last input frame, grey.
        gate_by_lead: ``n_leads`` values in [0, 1].

    Returns:
        ``(B, n_leads, H, W)`` float32 grey: ``last + gate_k * (fields_k - last)``.
    """
    gate = check_gate(gate_by_lead, fields_grey.shape[1])[None, :, None, None]
    last = last_grey[:, None].astype(np.float32)
    return (last + gate * (fields_grey.astype(np.float32) - last)).astype(np.float32)


def stored_gate(meta: dict[str, Any], n_leads: int) -> np.ndarray | None:
    """The checkpoint's residual gate when one is stored and marked for use, else None."""
    stored = meta.get("residual_gate") or {}
    if not stored.get("use"):
        return None
    return check_gate(stored["by_lead"], n_leads)

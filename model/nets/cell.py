"""The ConvLSTM cell (first tier), with the paper's peephole terms (METHOD.md).

    i  = sigmoid(W_xi * X + W_hi * H + W_ci o C  + b_i)
    f  = sigmoid(W_xf * X + W_hf * H + W_cf o C  + b_f)
    C' = f o C + i o tanh(W_xc * X + W_hc * H + b_c)
    o  = sigmoid(W_xo * X + W_ho * H + W_co o C' + b_o)
    H' = o o tanh(C')

``*`` is a convolution with "same" padding, ``o`` the Hadamard product.

Implementation choices:

- Fused gates: the eight convolutions ``W_x. * X + W_h. * H`` (and the four biases) are one
  ``Conv2d`` over ``concat([X, H])`` with ``4 * hidden`` output channels, in the gate order
  ``i, f, c (candidate), o``. Output channels ``[k * hidden, (k + 1) * hidden)`` belong to gate
  ``k``; input channels ``[0, in)`` are the ``W_x`` part, ``[in, in + hidden)`` the ``W_h``
  part.
- Peephole weights ``W_ci, W_cf, W_co`` are learned per channel AND per grid position, shape
  ``(1, hidden, h, w)`` (as in the paper, where they are full tensors of the state's shape),
  so the cell is tied to one grid size. They start at zero: at initialisation the cell is a
  peephole-free ConvLSTM. ``peephole=False`` drops them (no unused parameters).
- The forget-gate bias starts at 1.0 (the other biases at 0) so early training keeps memory.
- ``in_channels=0`` makes a cell without input (the paper's first forecaster layer): the
  fused convolution then reads ``H`` only and ``x`` must be ``None``.
- ``state_kernel_size`` different from ``kernel_size`` (the paper's 1 x 1 state-to-state
  ablation) splits the fused convolution in two: ``gates`` over ``X`` (with the biases) and
  ``state_gates`` over ``H``.
- Crops: a cell also steps on a sub-grid of its grid (training on random crops, which is
  ``(grid / crop)**2`` times cheaper); ``origin`` says where the sub-grid lies, and the
  peephole weights of that region are used, so the weights stay tied to absolute positions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, Tensor]
"""``(H, C)``: hidden and cell state, each ``(B, hidden, h, w)``."""


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer step on a ``grid_size`` grid.

    Args:
        in_channels: channels of the input ``X`` (0: a cell without input).
        hidden_channels: channels of ``H`` and ``C``.
        kernel_size: odd side of the square kernels ("same" padding).
        grid_size: ``(h, w)`` of the grid; needed for the per-position peephole weights.
        peephole: include the ``W_c o C`` terms.
        state_kernel_size: odd side of the state-to-state kernels; None: ``kernel_size``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        grid_size: tuple[int, int],
        peephole: bool = True,
        state_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        if in_channels < 0 or hidden_channels < 1:
            raise ValueError(
                f"in_channels must be >= 0 and hidden_channels >= 1, "
                f"got {in_channels} and {hidden_channels}"
            )
        state_kernel = kernel_size if state_kernel_size is None else state_kernel_size
        for size in (kernel_size, state_kernel):
            if size < 1 or size % 2 == 0:
                raise ValueError(f"kernel sizes must be positive odd ints, got {size}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.state_gates: nn.Conv2d | None = None
        if in_channels > 0 and state_kernel != kernel_size:
            self.gates = nn.Conv2d(
                in_channels, 4 * hidden_channels, kernel_size, padding=kernel_size // 2
            )
            self.state_gates = nn.Conv2d(
                hidden_channels,
                4 * hidden_channels,
                state_kernel,
                padding=state_kernel // 2,
                bias=False,
            )
        else:
            fused = kernel_size if in_channels > 0 else state_kernel
            self.gates = nn.Conv2d(
                in_channels + hidden_channels,
                4 * hidden_channels,
                fused,
                padding=fused // 2,
                bias=True,
            )
        bias = self.gates.bias
        assert bias is not None  # built with bias=True
        with torch.no_grad():
            bias.zero_()
            bias[hidden_channels : 2 * hidden_channels].fill_(1.0)
        self.w_ci: nn.Parameter | None
        self.w_cf: nn.Parameter | None
        self.w_co: nn.Parameter | None
        if peephole:
            shape = (1, hidden_channels, *self.grid_size)
            self.w_ci = nn.Parameter(torch.zeros(shape))
            self.w_cf = nn.Parameter(torch.zeros(shape))
            self.w_co = nn.Parameter(torch.zeros(shape))
        else:
            self.w_ci = self.w_cf = self.w_co = None

    @property
    def peephole(self) -> bool:
        return self.w_ci is not None

    def extra_repr(self) -> str:
        return f"grid_size={self.grid_size}, peephole={self.peephole}"

    def zero_state(
        self,
        batch: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        size: tuple[int, int] | None = None,
    ) -> State:
        """``(H, C)`` of zeros, each ``(batch, hidden, h, w)``; ``(h, w)`` is ``size`` (a
        crop) or the whole grid."""
        shape = (batch, self.hidden_channels, *(size or self.grid_size))
        return (
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(shape, device=device, dtype=dtype),
        )

    def check_region(self, origin: tuple[int, int], size: tuple[int, int]) -> None:
        """ValueError unless the ``size`` sub-grid at ``origin`` (grid cells) lies in the grid."""
        inside = all(
            o >= 0 and s >= 1 and o + s <= g
            for o, s, g in zip(origin, size, self.grid_size, strict=True)
        )
        if not inside:
            raise ValueError(
                f"a {tuple(size)} region at {tuple(origin)} is not inside the {self.grid_size} grid"
            )

    def _peepholes(
        self, origin: tuple[int, int], size: tuple[int, int]
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """The peephole weights ``(W_ci, W_cf, W_co)`` of the region, or None without them."""
        if self.w_ci is None or self.w_cf is None or self.w_co is None:
            return None
        weights = (self.w_ci, self.w_cf, self.w_co)
        if tuple(size) == self.grid_size:
            return weights
        (y, x), (h, w) = origin, size
        region = (slice(None), slice(None), slice(y, y + h), slice(x, x + w))
        return weights[0][region], weights[1][region], weights[2][region]

    def forward(
        self, x: Tensor | None, state: State | None, origin: tuple[int, int] = (0, 0)
    ) -> tuple[Tensor, State]:
        """One step.

        Args:
            x: input ``(B, in_channels, h, w)``, or ``None`` for a cell with ``in_channels=0``.
            state: ``(H, C)`` each ``(B, hidden, h, w)``, or ``None`` for zeros (needs ``x``).
            origin: grid cell (row, column) of the region's top-left corner when ``(h, w)`` is
                a crop of the grid; ``(0, 0)`` for the whole grid.

        Returns:
            ``(H', (H', C'))``: the new hidden state ``(B, hidden, h, w)`` and the new state.
        """
        if (x is None) != (self.in_channels == 0):
            raise ValueError(
                f"this cell has in_channels={self.in_channels}; "
                f"x must be {'None' if self.in_channels == 0 else 'a tensor'}"
            )
        if state is None:
            if x is None:
                raise ValueError("a cell without input needs an explicit state")
            state = self.zero_state(x.shape[0], x.device, x.dtype, (x.shape[-2], x.shape[-1]))
        h, c = state
        size = (h.shape[-2], h.shape[-1])
        if size != self.grid_size or origin != (0, 0):
            self.check_region(origin, size)
        if x is not None and (x.shape[1] != self.in_channels or x.shape[-2:] != size):
            raise ValueError(
                f"x must be (B, {self.in_channels}, {size[0]}, {size[1]}), got {tuple(x.shape)}"
            )
        if x is None:
            gates = self.gates(h)
        elif self.state_gates is not None:
            gates = self.gates(x) + self.state_gates(h)
        else:
            gates = self.gates(torch.cat([x, h], dim=1))
        i, f, g, o = gates.chunk(4, dim=1)
        peepholes = self._peepholes(origin, size)
        if peepholes is not None:
            w_ci, w_cf, w_co = peepholes
            i = i + w_ci * c
            f = f + w_cf * c
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if peepholes is not None:
            o = o + w_co * c_next
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return h_next, (h_next, c_next)

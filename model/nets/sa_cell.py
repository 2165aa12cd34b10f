"""The Self-Attention ConvLSTM cell (Lin et al., AAAI 2020): a ConvLSTM step, then a
self-attention memory (SAM) over all grid positions.

With ``H`` the ConvLSTM cell's new hidden state and ``M`` the memory, both ``(B, C, h, w)``,
and ``N = h * w`` positions:

    Q = W_q * H,  K_h = W_k * H,  V_h = W_v * H          (1 x 1 convolutions)
    K_m = W_km * M,  V_m = W_vm * M
    Z_h = softmax(Q^T K_h / sqrt(d)) V_h,  Z_m = softmax(Q^T K_m / sqrt(d)) V_m   (N x N)
    Z  = W_z * [Z_h; Z_m]                                  (the fusion, 1 x 1)
    i', g', o' = sigmoid, tanh, sigmoid of W_m * [Z; H]    (1 x 1)
    M' = (1 - i') o M + i' o g'
    H' = o' o M'

``d`` is ``attention_channels`` (queries and keys); values keep ``C`` channels. The
attention is ``torch.nn.functional.scaled_dot_product_attention``, which on CPU and GPU runs
fused kernels that never hold the N x N matrix (2,500 x 2,500 on the 50 x 50 radar grid).
The scaling by ``1 / sqrt(d)`` is the usual one (the paper's equations leave it out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from model.nets.cell import ConvLSTMCell

SAState = tuple[Tensor, Tensor, Tensor]
"""``(H, C, M)``: hidden state, cell state and attention memory, each ``(B, C, h, w)``."""


def _attend(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Attention of every position to every position.

    Args:
        query, key: ``(B, d, h, w)``; value: ``(B, C, h, w)``.

    Returns:
        ``(B, C, h, w)``: per position, the values averaged with the softmax weights.
    """
    batch, channels, height, width = value.shape

    def tokens(x: Tensor) -> Tensor:  # (B, c, h, w) -> (B, 1, N, c)
        return x.flatten(2).transpose(1, 2).unsqueeze(1)

    out = F.scaled_dot_product_attention(tokens(query), tokens(key), tokens(value))
    return out.squeeze(1).transpose(1, 2).reshape(batch, channels, height, width)


class SelfAttentionMemory(nn.Module):
    """``forward(h (B, C, h, w), m (B, C, h, w)) -> (h' (B, C, h, w), m' (B, C, h, w))``."""

    def __init__(self, channels: int, attention_channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, attention_channels, 1)
        self.key_h = nn.Conv2d(channels, attention_channels, 1)
        self.value_h = nn.Conv2d(channels, channels, 1)
        self.key_m = nn.Conv2d(channels, attention_channels, 1)
        self.value_m = nn.Conv2d(channels, channels, 1)
        self.fuse = nn.Conv2d(2 * channels, channels, 1)
        self.gates = nn.Conv2d(2 * channels, 3 * channels, 1)

    def forward(self, h: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
        query = self.query(h)
        z_h = _attend(query, self.key_h(h), self.value_h(h))
        z_m = _attend(query, self.key_m(m), self.value_m(m))
        z = self.fuse(torch.cat([z_h, z_m], dim=1))
        i, g, o = self.gates(torch.cat([z, h], dim=1)).chunk(3, dim=1)
        i = torch.sigmoid(i)
        m_next = (1 - i) * m + i * torch.tanh(g)
        return torch.sigmoid(o) * m_next, m_next


class SAConvLSTMCell(nn.Module):
    """One SA-ConvLSTM layer step: `ConvLSTMCell` then `SelfAttentionMemory`.

    Same arguments as `ConvLSTMCell`, plus ``attention_channels``. The state is ``(H, C, M)``;
    ``forward(x, state, origin) -> (H', (H', C', M'))`` with ``x`` None for a cell without
    input; ``origin`` places a crop as for `ConvLSTMCell` (attention then spans the crop).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        grid_size: tuple[int, int],
        peephole: bool = True,
        state_kernel_size: int | None = None,
        attention_channels: int = 16,
    ) -> None:
        super().__init__()
        self.conv = ConvLSTMCell(
            in_channels, hidden_channels, kernel_size, grid_size, peephole, state_kernel_size
        )
        self.memory = SelfAttentionMemory(hidden_channels, attention_channels)

    def forward(
        self, x: Tensor | None, state: SAState | None, origin: tuple[int, int] = (0, 0)
    ) -> tuple[Tensor, SAState]:
        if state is None:
            if x is None:
                raise ValueError("a cell without input needs an explicit state")
            size = (x.shape[-2], x.shape[-1])
            h, c = self.conv.zero_state(x.shape[0], x.device, x.dtype, size)
            state = (h, c, torch.zeros_like(h))
        h, c, m = state
        h_conv, (_, c_next) = self.conv(x, (h, c), origin)
        h_next, m_next = self.memory(h_conv, m)
        return h_next, (h_next, c_next, m_next)

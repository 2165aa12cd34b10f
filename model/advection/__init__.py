"""Motion and advection: the shared motion field, semi-Lagrangian displacements and warps
(numpy and batched torch), and moving windows into and out of Lagrangian coordinates."""

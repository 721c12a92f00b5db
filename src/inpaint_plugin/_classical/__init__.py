"""Private numba kernels of the classical inpainting methods."""

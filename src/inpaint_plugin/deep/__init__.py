"""Deep-learning inpainting networks and their shared infrastructure (torch imported lazily)."""

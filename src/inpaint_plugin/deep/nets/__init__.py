"""Network definitions (each module imports torch at the top; import them only when needed)."""

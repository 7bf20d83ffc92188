"""Host-side orchestration behind noxfile.py: runtime seam, configuration, stand-in images,
the stack's life cycle and its verification. Never copied into an image (.containerignore)."""

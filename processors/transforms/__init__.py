"""Route transforms: declarative field maps (mapping.py) and Python hooks (hooks.py)."""

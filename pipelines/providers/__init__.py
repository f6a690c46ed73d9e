"""Provider clients, one per dialect, behind one small interface (see base.py)."""

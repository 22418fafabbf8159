"""PyTorch reference of SegVol (see model.py), its parameter manifest and golden generators."""

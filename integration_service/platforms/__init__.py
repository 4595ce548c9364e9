"""Platform clients behind one small interface (see ``base.py``)."""

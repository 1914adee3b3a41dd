"""edge-slr: continuous sign language recognition on edge devices."""

__version__ = "0.1.0"

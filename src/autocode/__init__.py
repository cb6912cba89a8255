"""autocode: medical codes from clinical note text."""

__version__ = "0.1.0"

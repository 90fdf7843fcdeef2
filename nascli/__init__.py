"""nascli: evolutionary Neural Architecture Search that never loses work."""

__version__ = "0.1.0"

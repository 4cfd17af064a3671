"""shopmtl-basket: an example shopmtl plugin with one task, ``basket_size``."""

__version__ = "0.1.0"

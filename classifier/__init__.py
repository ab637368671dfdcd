"""Priority classifier for Spanish support messages under SIEMPRE.NET's service policy."""

__version__ = "0.1.0"

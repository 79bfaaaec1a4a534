"""edge: an offline face-recognition engine with Baidu Face API semantics."""
__version__ = "0.1.0"

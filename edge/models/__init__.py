"""Model files: the manifest, the fetch/convert/verify step, and onnxruntime sessions."""
from edge.models.manifest import ModelSpec, load_manifest, default_models_dir
from edge.models.runtime import create_session

__all__ = ["ModelSpec", "load_manifest", "default_models_dir", "create_session"]

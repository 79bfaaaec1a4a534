"""Baidu's face SDKs, offline: `edge.aip.AipFace` is the v2 SDK (baidu-aip 2.2.x),
`edge.aip.v3.AipFace` the current one (baidu-aip 4.16.x, v3 paths)."""
from edge.aip.v2 import AipFace

__all__ = ["AipFace"]

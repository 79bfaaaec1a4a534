"""Which pool runs a request: the inference pool only when this request carries pixels.

The endpoint table says which methods *can* run a model (`Endpoint.images`); whether a
given request does depends on its body.  A v3 image passed as FACE_TOKEN names a face the
library already holds (search, match, addUser and updateUser by token read or copy a
stored embedding), and any image_type other than BASE64 is refused before decoding
(URL: offline; FACE_TOKEN on detect/multiSearch/faceverify: 222015; anything else:
222015).  Such requests go to the library pool, so they never queue behind photos.
v2 has no token input: every v2 image endpoint decodes its image.
"""
from __future__ import annotations

from edge.server.endpoints import Endpoint

PIXELS = "BASE64"  # the one v3 image_type that is decoded and run through the models


def needs_inference(ep: Endpoint, payload) -> bool:
    """True when running this request may decode an image and run a model."""
    if not ep.images:
        return False
    if ep.version == "v2":
        return True
    if ep.body == "list":
        return isinstance(payload, list) and any(isinstance(item, dict) and item.get("image_type") == PIXELS
                                                 for item in payload)
    return isinstance(payload, dict) and payload.get("image_type") == PIXELS

"""A webdataset decoder for pairgen's shards: ``wds.WebDataset(urls).decode(pairgen.decoders())``.

webdataset's stock image handlers ("rgb8", "pil", ...) go through PIL and 8 bits: a 16-bit
instance-id PNG (``seg0.png``, ``cls.png``) comes back clipped or rescaled, so ids above 255 are
lost. This handler decodes every field as pairgen stored it:

* ``*.png``: uint8 (H, W, 3) RGB, uint8 (H, W) gray / masks, uint16 (H, W) ids (all 16 bits);
* ``*.npy``: the array (float32 flow (H, W, 2), depth (H, W), ...), without pickle;
* ``json``: a dict.

Anything else is left to the handlers after it (webdataset's basic ones by default).
"""
from __future__ import annotations

DECODED_EXTENSIONS = ("png", "npy", "json")


def decoders():
    """A webdataset handler ``(key, data) -> value or None`` for pairgen's fields."""

    def pairgen_fields(key: str, data: bytes):
        extension = key.rsplit(".", 1)[-1].lower()
        if extension not in DECODED_EXTENSIONS:
            return None
        from .encoding import decode  # OpenCV is imported only when a sample is decoded

        return decode(key, data)

    return pairgen_fields

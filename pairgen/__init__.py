__version__ = "0.1.0"

from .decoders import decoders  # noqa: E402 - wds.WebDataset(urls).decode(pairgen.decoders())

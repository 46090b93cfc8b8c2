"""Remote paths (object storage) through fsspec: ``s3://``, ``gs://`` and any other protocol
fsspec knows; ``file://`` URLs become plain local paths, and local paths never come here (the
callers keep their own ``os`` code: the local path is exactly as fast as before).

Credentials and endpoint: s3fs/botocore read the usual environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3,
AWS_DEFAULT_REGION, AWS_PROFILE); ``--storage-options`` (or the environment variable
``PAIRGEN_STORAGE_OPTIONS``) adds fsspec keyword arguments as JSON, either one object for every
protocol (``{"endpoint_url": "http://127.0.0.1:9000"}``) or one per protocol
(``{"s3": {...}, "gs": {"project": "p"}}``).

Workers receive ``shipped()`` with their shard spec: the options and the driver's AWS_*
variables, so the nodes of a cluster need not be configured one by one (the values travel
inside Ray's task arguments; they are never written to build.json or the card).
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath

from .errors import PairgenError, UsageError

ENV_OPTIONS = "PAIRGEN_STORAGE_OPTIONS"
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE")
# fsspec names the protocols it knows; a key that is one of these makes the JSON per-protocol.
_PROTOCOL_KEYS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "adl", "http", "https", "hf", "ftp", "sftp", "memory"}

_options: dict | None = None  # None: not configured, PAIRGEN_STORAGE_OPTIONS decides (e.g. in the trainer)


def is_remote(path) -> bool:
    """True for URLs fsspec serves (``s3://...``); False for local paths and ``file://`` URLs."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def local_form(path):
    """``file:///a/b`` -> ``/a/b``; anything else unchanged."""
    if isinstance(path, str) and path.startswith("file://"):
        return path[len("file://"):] or "/"
    return path


def parse_options(text: str | None, where: str = "--storage-options") -> dict:
    """JSON text -> a dict of fsspec options (a usage error when it is not a JSON object)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc}); e.g. '{{\"endpoint_url\": \"http://127.0.0.1:9000\"}}'") from None
    if not isinstance(value, dict):
        raise UsageError(f"{where}: must be a JSON object of fsspec options, got {type(value).__name__}")
    return value


def configure(options: dict | None = None, env: dict | None = None) -> None:
    """Set the options every later remote call uses: ``options`` (from --storage-options), else
    the JSON in PAIRGEN_STORAGE_OPTIONS. ``env``: AWS_* variables shipped from the driver."""
    global _options
    for name, value in (env or {}).items():
        os.environ[name] = value
    _options = dict(options) if options else parse_options(os.environ.get(ENV_OPTIONS), ENV_OPTIONS)


def _current() -> dict:
    if _options is None:
        configure()
    return _options


def shipped() -> dict:
    """What a worker needs to reach the same stores as the driver: ``configure(**shipped())``."""
    return {"options": dict(_current()), "env": {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}}


def _protocol_options(protocol: str) -> dict:
    options = _current()
    if options and set(options) <= _PROTOCOL_KEYS:
        aliases = {"gcs": "gs", "s3a": "s3"}
        return dict(options.get(protocol) or options.get(aliases.get(protocol, protocol)) or {})
    return dict(options)


def filesystem(url: str):
    """(fsspec filesystem, path inside it) of a remote URL; a clear error when its protocol's
    package is missing (``pip install s3fs`` / ``gcsfs``)."""
    import fsspec

    protocol = url.split("://", 1)[0]
    try:
        fs = fsspec.filesystem(protocol, **_protocol_options(protocol))
    except ImportError as exc:
        raise PairgenError(f"{url}: the {protocol}:// protocol needs a package that is not installed ({exc}); "
                           "for s3:// run pip install -e '.[s3]'") from None
    except ValueError as exc:
        raise PairgenError(f"{url}: unknown storage protocol {protocol!r} ({exc})") from None
    return fs, fs._strip_protocol(url)


def staging_folder(out: str) -> str:
    """Where this host makes the shards of a remote ``out`` before uploading them: one folder per
    output (``$TMPDIR/pairgen-staging/<hash of the URL>``), so that a retry replaces what a killed
    attempt left and ``remove_staging`` finds it."""
    import tempfile

    digest = hashlib.sha256(out.rstrip("/").encode("utf-8")).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), "pairgen-staging", digest)


def remove_staging(out: str) -> int:
    """Remove what unfinished shards of ``out`` left in this host's staging folder."""
    import shutil

    folder = staging_folder(out)
    count = len(os.listdir(folder)) if os.path.isdir(folder) else 0
    shutil.rmtree(folder, ignore_errors=True)
    return count


def join(base: str, *names: str) -> str:
    """A remote folder URL joined with names (always ``/``)."""
    return posixpath.join(base.rstrip("/"), *names)


def url(fs, path: str) -> str:
    """The full URL of a path inside ``fs`` (fsspec listings drop the protocol)."""
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return path if "://" in path else f"{protocol}://{path}"


def read_bytes(address: str, start: int | None = None, end: int | None = None) -> bytes:
    fs, path = filesystem(address)
    if start is None and end is None and getattr(fs, "max_concurrency", None):
        # s3fs asks for the size first (a HEAD) to split large reads; objects here are one GET
        return fs.cat_file(path, max_concurrency=1)
    return fs.cat_file(path, start=start, end=end)


def write_bytes(address: str, data: bytes) -> None:
    """One PUT: the object appears whole or not at all."""
    fs, path = filesystem(address)
    fs.pipe_file(path, data)


def upload(local_path: str, address: str) -> None:
    """Upload a finished local file as one object: a single PUT, or (past s3fs's block size) a
    multipart upload that S3 publishes only when it is completed, after the last part."""
    fs, path = filesystem(address)
    fs.put_file(local_path, path)


def exists(address: str) -> bool:
    fs, path = filesystem(address)
    return fs.exists(path)


def remove(address: str) -> None:
    fs, path = filesystem(address)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


def listing(folder: str) -> dict[str, int]:
    """Name -> size of the objects directly in a remote folder ({} when there is none)."""
    fs, path = filesystem(folder)
    try:
        entries = fs.ls(path, detail=True, refresh=True)
    except FileNotFoundError:
        return {}
    return {posixpath.basename(e["name"].rstrip("/")): int(e.get("size") or 0) for e in entries if e.get("type") == "file"}


def sha256(address: str) -> str:
    """The sha256 of a remote object, streamed (the object is not held in memory)."""
    fs, path = filesystem(address)
    digest = hashlib.sha256()
    with fs.open(path, "rb", block_size=8 << 20, cache_type="none") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_input(address: str, block_size: int = 64 * 1024, size: int | None = None):
    """A seekable binary file over a remote object that fetches ``block_size`` ranges as read
    (header probing reads a few KiB, not the whole object). ``size``: the object's size when a
    listing gave it (saves the HEAD request)."""
    fs, path = filesystem(address)
    return fs.open(path, "rb", block_size=block_size, cache_type="readahead", **({"size": size} if size else {}))


def read_text_input(path: str, encoding: str = "utf-8") -> str:
    """The text of a local path or a remote URL (small inputs: a COCO JSON, a list file)."""
    if is_remote(path):
        return read_bytes(path).decode(encoding)
    with open(local_form(path), encoding=encoding) as handle:
        return handle.read()

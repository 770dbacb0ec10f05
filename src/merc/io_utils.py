"""Atomic file writes and bounded, regular-file-only reads.

Everything the library writes (model weights, configs, results, caches, plots) goes through
these helpers: data is written to a temporary file in the same directory, flushed and
fsynced, then renamed over the target (``os.replace`` is atomic on POSIX). Written files get
the usual ``0o666 & ~umask`` permissions (``mkstemp`` alone would leave them ``0600``).

Everything the library reads from a user's files goes through :func:`read_bytes_bounded`
(or the JSON/YAML/``.npz`` readers built on it): only regular files are opened (a FIFO, a
device such as ``/dev/zero`` or a socket is refused before it can block or stream forever),
and at most ``MERC_MAX_FILE_BYTES`` bytes are read (default :data:`DEFAULT_MAX_FILE_BYTES`;
raise it for genuinely larger files). Deeply nested JSON/YAML is a one-line
:class:`~merc.errors.DataError`, not a ``RecursionError``.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from merc.errors import DataError

#: environment variable bounding the size of any file merc reads (bytes)
MAX_FILE_BYTES_ENV = "MERC_MAX_FILE_BYTES"
#: default bound: 16 GiB (the largest public feature pickles are a few GiB)
DEFAULT_MAX_FILE_BYTES = 16 * 2**30


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``.

    Use for writers that want a file name (``safetensors.save_file``, ``savefig``)::

        with atomic_path(out / "model.safetensors") as tmp:
            save_file(state, tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # again: some writers (safetensors) recreate the file 0600
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def max_file_bytes() -> int:
    """The read bound: ``$MERC_MAX_FILE_BYTES`` if set (a positive integer), else the default."""
    raw = os.environ.get(MAX_FILE_BYTES_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_FILE_BYTES
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value <= 0:
        from merc.errors import ConfigError

        raise ConfigError(f"{MAX_FILE_BYTES_ENV}={raw!r} must be a positive number of bytes, e.g. "
                          f"{MAX_FILE_BYTES_ENV}={DEFAULT_MAX_FILE_BYTES}")
    return value


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_regular_file(path: str | Path, limit: int | None = None) -> int:
    """Refuse anything but a regular file of at most ``limit`` bytes; returns its size.

    Symlinks are followed (a link to ``/dev/zero`` is a character device). ``limit`` defaults
    to :func:`max_file_bytes`.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataError(p, "does not exist", fix="check the path") from None
    except OSError as exc:
        raise DataError(p, f"cannot read file ({exc.strerror or exc})", fix="check the path") from None
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise DataError(p, f"is {kind}, not a regular file", fix="pass a regular data file")
    limit = max_file_bytes() if limit is None else limit
    if st.st_size > limit:
        raise DataError(p, f"is {st.st_size} bytes, over the {limit}-byte read limit",
                        fix=f"if the file is genuine, raise the limit: {MAX_FILE_BYTES_ENV}=<bytes>")
    return st.st_size


def read_bytes_bounded(path: str | Path) -> bytes:
    """The bytes of regular file ``path`` (see :func:`check_regular_file`), never more than the limit."""
    p = Path(path)
    limit = max_file_bytes()
    check_regular_file(p, limit)
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise DataError(p, f"cannot read file ({exc.strerror or exc})", fix="check the path") from None
    if len(data) > limit:  # the file grew after the check
        raise DataError(p, f"is over the {limit}-byte read limit",
                        fix=f"if the file is genuine, raise the limit: {MAX_FILE_BYTES_ENV}=<bytes>")
    return data


def read_text_bounded(path: str | Path, encoding: str = "utf-8") -> str:
    """:func:`read_bytes_bounded` decoded; undecodable bytes are a one-line DataError."""
    try:
        return read_bytes_bounded(path).decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(path, f"is not {encoding} text (byte {exc.start})", fix="re-save the file as UTF-8") from None


def parse_json(text: str, source: str | Path, field: str | None = None) -> Any:
    """``json.loads`` whose failures (syntax, nesting too deep) are one-line DataErrors."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(source, f"is not valid JSON ({exc.msg} at line {exc.lineno})", field=field,
                        fix="fix or re-create the file") from None
    except RecursionError:
        raise DataError(source, "holds JSON nested too deeply to read", field=field,
                        fix="fix or re-create the file") from None


def load_json_file(path: str | Path) -> Any:
    """Read a JSON file (bounded, regular files only)."""
    return parse_json(read_text_bounded(path, "utf-8-sig"), path)


def load_yaml_file(path: str | Path) -> Any:
    """Read a YAML file with ``yaml.safe_load`` (bounded, regular files only); errors are one line."""
    import yaml

    text = read_text_bounded(path, "utf-8-sig")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise DataError(path, f"invalid YAML{line}", fix="fix the syntax") from None
    except RecursionError:
        raise DataError(path, "holds YAML nested too deeply to read", fix="fix or re-create the file") from None


def load_npz_bounded(path: str | Path) -> dict[str, Any]:
    """Every array of an ``.npz`` (``allow_pickle=False``), after checking each member's header.

    A member whose header claims more data than the member holds (e.g. shape ``(2**40, 8)``
    in a few bytes) is refused before anything is allocated, as is an archive whose
    uncompressed size exceeds the read limit (a zip bomb).
    """
    import zipfile

    import numpy as np
    from numpy.lib import format as npformat

    p = Path(path)
    data = read_bytes_bounded(p)
    limit = max_file_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > limit:
                raise DataError(p, f"unpacks to more than the {limit}-byte read limit",
                                fix=f"if the file is genuine, raise the limit: {MAX_FILE_BYTES_ENV}=<bytes>")
            for member in members:
                with archive.open(member) as fh:
                    version = npformat.read_magic(fh)
                    v1 = version == (1, 0)
                    shape, _, dtype = (npformat.read_array_header_1_0 if v1 else npformat.read_array_header_2_0)(fh)
                    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if claimed > member.file_size:
                        raise DataError(p, f"member claims shape {tuple(shape)} ({claimed} bytes) but holds "
                                        f"{member.file_size} bytes", field=member.filename.removesuffix(".npy"),
                                        fix="re-create the file with numpy.savez")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RecursionError, SyntaxError, MemoryError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(p, f"is not a readable .npz file ({detail})",
                        fix="re-create it with merc.data.formats.save_user_dataset or numpy.savez") from None

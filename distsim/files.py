"""Reading input files and writing outputs safely: the edge where users' files meet distsim.

Every input file is read as bytes (at most :data:`MAX_FILE_BYTES`), decoded as
UTF-8 and parsed as YAML with PyYAML's safe loader after a streaming pre-scan
that refuses what would not fit: nesting deeper than :data:`MAX_DEPTH`, more
than :data:`MAX_NODES` values once aliases are expanded (a "billion laughs"
file is refused before anything is expanded), integers beyond
:data:`MAX_INT_DIGITS` digits and mapping keys that are not strings.  Every
problem is a one-line :class:`~distsim.errors.ConfigError` naming the file.

Outputs are written whole or not at all: :func:`write_atomic` writes a
temporary file next to the target and renames it into place, so an interrupt
leaves either the old file, the new one or none, never half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import yaml

from .errors import ConfigError, short

#: Largest input file read (bytes); distsim's own files are a few kB.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deepest nesting of mappings and sequences accepted in a YAML file.
MAX_DEPTH = 64
#: Most values (scalars, mappings, sequences) a YAML file may hold after aliases are expanded.
MAX_NODES = 200_000
#: Longest integer accepted in a YAML file (digits); 2**63 has 19.
MAX_INT_DIGITS = 30


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of ``path`` decoded as UTF-8, or a one-line ConfigError naming it.

    Parameters
    ----------
    path : str or Path
        The file to read.
    what : str
        What the file is, for messages (``"device file"``).
    """
    if not str(path).strip():
        raise ConfigError(f"{what}: an empty path")
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"cannot read {what} {short(str(path))}: it is a directory")
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"cannot read {what} {short(str(path))}: it does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {short(str(path))}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what} {short(str(path))} is larger than {MAX_FILE_BYTES} bytes (the limit)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {short(str(path))} is not UTF-8 text (byte {exc.start}: "
                          f"0x{data[exc.start]:02x})") from None


def _prescan(text: str, origin: str) -> None:
    """Refuse deep nesting, alias bombs and huge integers by walking YAML events (nothing is built)."""
    depth = 0
    # A stack of [size, anchor] for each open collection; sizes count values after alias expansion.
    stack: list[list] = [[0, None]]
    anchors: dict[str, int] = {}
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{origin}: nesting deeper than {MAX_DEPTH} levels (the limit)")
            stack.append([1, event.anchor])
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
            size, anchor = stack.pop()
            if anchor is not None:
                anchors[anchor] = size
            stack[-1][0] += size
            continue
        if isinstance(event, yaml.ScalarEvent):
            size = 1
            value = event.value
            digits = value.lstrip("+-").replace("_", "")
            if len(digits) > MAX_INT_DIGITS and digits.isdigit() and event.tag is None and event.implicit[0]:
                raise ConfigError(f"{origin}: integer {short(value)} has {len(digits)} digits; "
                                  f"at most {MAX_INT_DIGITS} accepted")
            if event.anchor is not None:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            size = anchors.get(event.anchor, 1)
        else:
            continue
        stack[-1][0] += size
        total = sum(s for s, _ in stack)
        if total > MAX_NODES:
            raise ConfigError(f"{origin}: more than {MAX_NODES} values once aliases are expanded (the limit); "
                              "is it an alias bomb?")


def _check_keys(data, origin: str) -> None:
    """Mapping keys must be strings (``5:`` or ``yes:`` as a key is refused); iterative, depth already bounded."""
    todo = [(data, "")]
    seen: set[int] = set()
    while todo:
        node, where = todo.pop()
        if id(node) in seen:
            continue
        if isinstance(node, dict):
            seen.add(id(node))
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{origin}: key {short(key)}{' under ' + where if where else ''} "
                                      "must be a string")
                todo.append((value, f"{where}.{key}" if where else key))
        elif isinstance(node, list):
            seen.add(id(node))
            todo.extend((v, f"{where}[{i}]") for i, v in enumerate(node))


def parse_yaml(text: str, origin: str = "YAML"):
    """Parse YAML text safely (see module doc); ConfigError names ``origin`` and the line of a syntax error."""
    try:
        _prescan(text, origin)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise ConfigError(f"{origin}: not valid YAML{where}" + (f": {short(problem)}" if problem else "")) from None
    except ConfigError:
        raise
    except (RecursionError, ValueError, OverflowError) as exc:  # int limits, deep structures
        raise ConfigError(f"{origin}: cannot be read: {short(str(exc))}") from None
    _check_keys(data, origin)
    return data


def load_yaml(path: str | Path, what: str = "file"):
    """Read and parse a YAML file safely (see module doc)."""
    return parse_yaml(read_text(path, what), str(path))


# ---- outputs -----------------------------------------------------------------
def check_output_path(path: str | Path, what: str = "--out") -> Path:
    """A writable output file path, or a one-line ConfigError (empty, a directory, a missing parent, a device)."""
    text = str(path)
    if not text.strip():
        raise ConfigError(f"{what}: an empty path; give a file name")
    p = Path(text)
    if p.is_dir():
        raise ConfigError(f"{what} {short(text)} is a directory; give a file name")
    if p.exists() and not p.is_file():
        raise ConfigError(f"{what} {short(text)} is not a regular file")
    parent = p.parent
    if not parent.is_dir():
        raise ConfigError(f"{what} {short(text)}: directory {short(str(parent))} does not exist")
    _probe_writable(parent, what, text)
    return p


def _probe_writable(directory: Path, what: str, text: str) -> None:
    """Create and remove a file in ``directory`` (os.access says yes for root in /proc), else ConfigError."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".distsim-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{what} {short(text)}: cannot write in {short(str(directory))}: "
                          f"{exc.strerror or exc}") from None


def check_output_dir_possible(path: str | Path, what: str = "--out") -> Path:
    """Refuse an output directory that could not be made or written, without creating anything.

    The nearest existing ancestor must be a directory where a file can be created (a probe file
    is made and removed: permission bits alone do not tell, e.g. in /proc).
    """
    text = str(path)
    if not text.strip():
        raise ConfigError(f"{what}: an empty path; give a directory")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {short(text)} exists and is not a directory")
    existing = p
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what} {short(text)}: {short(str(existing))} is not a directory")
    _probe_writable(existing, what, text)
    return p


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """An output directory that exists or can be made, or a one-line ConfigError."""
    text = str(path)
    if not text.strip():
        raise ConfigError(f"{what}: an empty path; give a directory")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {short(text)} exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} {short(text)}: cannot create the directory: {exc.strerror or exc}") from None
    if not os.access(p, os.W_OK):
        raise ConfigError(f"{what} {short(text)}: directory is not writable")
    return p


def write_atomic(path: str | Path, write: Callable[[Path], object], what: str = "output") -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``: the file is whole or absent.

    Parameters
    ----------
    path : str or Path
        The final file.
    write : callable
        Writes the content to the path it is given (e.g. ``lambda p: df.to_csv(p)``).
    """
    target = check_output_path(path, what)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        write(Path(tmp))
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(f"cannot write {what} {short(str(path))}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str, what: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`)."""
    return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"), what)


class StagedOutputs:
    """Write several outputs into a hidden staging folder inside ``out_dir``, then move them in together.

    Use as a context manager: files written under :attr:`path` are renamed into
    ``out_dir`` when the block ends without an exception and deleted otherwise,
    so an interrupt between a CSV and its PNG leaves neither. ``moved`` lists
    the final paths.
    """

    def __init__(self, out_dir: str | Path, what: str = "--out"):
        self.out_dir = check_output_dir(out_dir, what)
        self.what = what
        self.moved: list[Path] = []
        self.path: Path | None = None

    def __enter__(self) -> "StagedOutputs":
        try:
            self.path = Path(tempfile.mkdtemp(prefix=".distsim-", dir=self.out_dir))
        except OSError as exc:
            raise ConfigError(f"{self.what} {short(str(self.out_dir))}: cannot write: {exc.strerror or exc}") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                mask = _umask()
                for item in sorted(self.path.iterdir()):
                    target = self.out_dir / item.name
                    if target.is_dir():
                        raise ConfigError(f"{self.what}: {short(str(target))} is a directory; cannot replace it")
                    os.chmod(item, 0o666 & ~mask)
                    os.replace(item, target)
                    self.moved.append(target)
        except OSError as exc:
            raise ConfigError(f"cannot write into {self.what} {short(str(self.out_dir))}: "
                              f"{exc.strerror or exc}") from None
        finally:
            shutil.rmtree(self.path, ignore_errors=True)

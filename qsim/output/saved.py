"""Reading results folders back: a run, lazily for its ops table, and the files every reader shares.

Nothing here starts a simulation. Each reader checks what it reads and raises
:class:`qsim.errors.ResultsError` naming the file that is missing, damaged, or lacks what readers use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from qsim.errors import ResultsError
from qsim.history import nodes_frame

OPS_NEEDED = ("op_id", "kind", "start_ms", "end_ms", "latency_ms", "ok")  # what every reader of ops uses
SUMMARY_NEEDED = ("scenario", "run_id", "seed", "quorum", "reads", "writes", "staleness", "runtime")


@dataclass(frozen=True)
class SavedRun:
    """A run read back from its folder; its ops table is read only when asked for.

    ``ops`` reads the whole table into memory (a DataFrame, as :func:`qsim.simulate` gives it);
    for a run too big for that, :meth:`ops_chunks` reads it one row group at a time and
    :meth:`latencies` gathers what the latency plots draw in bounded memory.
    """

    path: Path
    scenario: dict
    manifest: dict
    summary: dict
    faults: pd.DataFrame
    timeline: pd.DataFrame
    messages: pd.DataFrame | None  # when the run traced messages
    nodes: pd.DataFrame  # per-node load per window
    given: str | None = None  # the text of scenario.yaml (None: written before qsim kept it)

    @property
    def has_ops(self) -> bool:
        """Whether the run kept its ops table (a Monte Carlo run keeps one only when asked)."""
        return (self.path / "ops.parquet").exists()

    @cached_property
    def ops(self) -> pd.DataFrame:
        """The whole ops table.

        Raises:
            ResultsError: if ops.parquet cannot be read, or the run kept none.
        """
        self._require_ops()
        return self._with_warmup(read_table(self.path / "ops.parquet", OPS_NEEDED))

    def _require_ops(self) -> None:
        if not self.has_ops and self.manifest.get("engine") == "montecarlo":
            raise ResultsError(
                f"{self.path / 'ops.parquet'}: this Monte Carlo run kept no per-trial table; "
                "run it again with --ops-table to keep one"
            )

    def ops_chunks(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The ops table one row group at a time, in op_id order (only ``columns``, if given).

        Raises:
            ResultsError: if ops.parquet cannot be read.
        """
        self._require_ops()
        path = self.path / "ops.parquet"
        try:
            file = pq.ParquetFile(path)
            read = None if columns is None else [c for c in columns if c in file.schema_arrow.names]
            for group in range(file.num_row_groups):
                yield self._with_warmup(file.read_row_group(group, columns=read).to_pandas())
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ResultsError(f"{path}: not a readable Parquet table ({_first_line(exc)})") from None

    def latencies(self, folder: Path | None = None) -> dict:
        """The latencies of the counted ok operations by kind (:class:`qsim.checks.digest.Latencies`), read in
        chunks; with ``folder``, kept there on disk (close them when done)."""
        from qsim.checks.digest import KINDS, Latencies, measured

        found = {kind: Latencies(folder) for kind in KINDS}
        for chunk in self.ops_chunks(["kind", "ok", "latency_ms", "start_ms", "warmup"]):
            chunk = measured(chunk)
            for kind, latency in found.items():
                latency.add(chunk.loc[(chunk["kind"] == kind) & chunk["ok"], "latency_ms"].to_numpy(float))
        return found

    def _with_warmup(self, ops: pd.DataFrame) -> pd.DataFrame:
        if "warmup" not in ops and "start_ms" in ops:  # written before the table said which are warm-up
            ops["warmup"] = ops["start_ms"] < float(self.scenario.get("warmup") or 0.0)
        return ops


def load_run(path: str | Path) -> SavedRun:
    """Read a run folder written by :func:`write_run` (no simulation is started).

    The ops table is checked (readable, with the columns readers use) but read only when asked for.

    Raises:
        ResultsError: naming the file, if one is missing, damaged, or lacks what readers use.
    """
    path = Path(path)
    scenario = read_mapping(path / "scenario.resolved.yaml")
    manifest = read_mapping(path / "manifest.json")
    if (path / "ops.parquet").exists() or manifest.get("engine") != "montecarlo":  # optional for Monte Carlo
        _has(path / "ops.parquet", read_columns(path / "ops.parquet"), OPS_NEEDED, "column")
    optional = {name: path / f"{name}.parquet" for name in ("messages", "nodes")}
    optional = {name: read_table(file) for name, file in optional.items() if file.exists()}
    return SavedRun(
        path=path,
        scenario=scenario,
        manifest=manifest,
        summary=read_mapping(path / "summary.json", SUMMARY_NEEDED),
        faults=read_table(path / "faults.parquet"),
        timeline=read_table(path / "timeline.parquet"),
        messages=optional.get("messages"),  # when the run traced messages
        nodes=optional["nodes"] if "nodes" in optional else nodes_frame([], []),
        given=read_text(path / "scenario.yaml") if (path / "scenario.yaml").exists() else None,
    )


def read_columns(path: Path) -> list[str]:
    """The column names of a Parquet file of a results folder, from its footer (no data is read).

    Raises:
        ResultsError: naming the file, if it is missing or not Parquet.
    """
    _regular(path)
    try:
        return list(pq.read_schema(path).names)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ResultsError(f"{path}: not a readable Parquet table ({_first_line(exc)})") from None


def read_text(path: Path) -> str:
    """Read a text file of a results folder.

    Raises:
        ResultsError: naming the file, if it is missing or not UTF-8 text.
    """
    _regular(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # UnicodeError is a ValueError
        raise ResultsError(f"{path}: not readable ({_first_line(exc)})") from None


def read_table(path: Path, needed: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a Parquet file of a results folder.

    Raises:
        ResultsError: naming the file, if it is missing, not Parquet, or lacks a ``needed`` column.
    """
    _regular(path)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:  # ArrowInvalid is a ValueError
        raise ResultsError(f"{path}: not a readable Parquet table ({_first_line(exc)})") from None
    _has(path, frame.columns, needed, "column")
    return frame


def read_mapping(path: Path, needed: tuple[str, ...] = ()) -> dict:
    """Read a JSON or YAML (by its suffix) file of a results folder that holds one mapping.

    Raises:
        ResultsError: naming the file, if it is missing, unreadable, not a mapping, or lacks a key.
    """
    _regular(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
        raise ResultsError(f"{path}: not readable ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a mapping, found {type(data).__name__}")
    _has(path, data, needed, "key")
    return data


def _regular(path: Path) -> None:
    """Refuse a missing file, or one that is not a regular file (a device or a pipe would never end)."""
    if not path.exists():
        raise ResultsError(f"{path}: missing")
    if not path.is_file():
        raise ResultsError(f"{path}: not a regular file")


def _has(path: Path, present, needed: tuple[str, ...], noun: str) -> None:
    missing = [name for name in needed if name not in present]
    if missing:
        raise ResultsError(f"{path}: no {noun} {', '.join(map(repr, missing))}; the file is damaged")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__

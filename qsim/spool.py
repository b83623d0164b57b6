"""Operation records on disk: a run's history in fixed-size binary records, appended and read in chunks.

A record holds one operation as the recorder wrote it (:meth:`qsim.model.recorder.Recorder.columns`)
plus, once checked, its staleness verdict. Files are raw numpy records of :data:`RECORD`: appending
is one ``write`` of a chunk, reading one ``np.fromfile``; nothing is parsed. They live only in a
run's private scratch folder and are removed when the run's files are written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

RECORD = np.dtype(
    [
        ("op_id", np.int64),
        ("client", np.int32),
        ("is_write", np.bool_),
        ("key", np.int64),
        ("start_ms", np.float64),
        ("end_ms", np.float64),
        ("error_code", np.int8),
        ("replies", np.int8),
        ("attempts", np.int8),
        ("version", np.int64),
        ("commit_ms", np.float64),
        ("ts_ms", np.float64),
        ("coordinator", np.int16),
        # The staleness verdict (see qsim.checks.staleness): -1 unchecked, 0 fresh, 1 stale; k; t_ms.
        ("stale", np.int8),
        ("k", np.int64),
        ("t_ms", np.float64),
        # The consistency checks (see qsim.checks.consistency): bit i set = in an anomaly of kind i.
        ("anomalies", np.uint8),
    ]
)
RECORDER_FIELDS = RECORD.names[:13]  # what the recorder gives; the rest is the checker's


def to_records(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Pack the recorder's columns (and the verdict columns, when present) into records."""
    records = np.zeros(len(columns["op_id"]), dtype=RECORD)
    records["stale"] = -1
    for name in RECORD.names:
        if name in columns:
            records[name] = columns[name]
    return records


def to_columns(records: np.ndarray) -> dict[str, np.ndarray]:
    """The recorder's columns (as :meth:`Recorder.columns` types them) of ``records``."""
    return {name: records[name] for name in RECORDER_FIELDS}


class RecordFile:
    """One append-only file of records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def append(self, records: np.ndarray) -> None:
        """Append ``records`` at the end of the file."""
        with self.path.open("ab") as file:
            records.tofile(file)
        self.count += len(records)

    def read(self) -> np.ndarray:
        """Every record of the file (an empty array if none was appended)."""
        if not self.count:
            return np.zeros(0, dtype=RECORD)
        return np.fromfile(self.path, dtype=RECORD)

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        """The records in order, ``rows`` at a time."""
        with self.path.open("rb") as file:
            for offset in range(0, self.count, rows):
                yield np.fromfile(file, dtype=RECORD, count=min(rows, self.count - offset))

    def remove(self) -> None:
        """Delete the file."""
        self.path.unlink(missing_ok=True)


class Partition:
    """Records spread over ``count`` files by a part number per record, each file read back whole."""

    def __init__(self, folder: Path, name: str, count: int) -> None:
        self.files = [RecordFile(folder / f"{name}-{i:05d}.bin") for i in range(count)]

    def add(self, records: np.ndarray, part: np.ndarray) -> None:
        """Append each record to the file of its part (``part[i]`` in ``range(count)``)."""
        order = np.argsort(part, kind="stable")  # keeps each part's records in their order
        bounds = np.searchsorted(part[order], np.arange(len(self.files) + 1))
        for i, file in enumerate(self.files):
            if bounds[i + 1] > bounds[i]:
                file.append(records[order[bounds[i] : bounds[i + 1]]])

    def __iter__(self) -> Iterator[RecordFile]:
        return iter(self.files)

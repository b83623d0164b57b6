"""The errors qsim raises on purpose; anything else is a bug and keeps its traceback."""

from __future__ import annotations

from pydantic_core import PydanticCustomError


class QsimError(Exception):
    """Base class of errors that the CLI reports as a clean message."""


class ScenarioError(QsimError):
    """A scenario failed validation; ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{where}{count} {noun} in the scenario:\n{lines}")


class ResultsError(QsimError):
    """A results folder or file that qsim must not write into, or cannot read back."""


def problems(*items: tuple[str, str]) -> PydanticCustomError:
    """Return a validation error carrying (sub-path, message) pairs relative to the model raising it.

    Model validators raise it so that each cross-field problem is reported at the exact field.
    """
    text = "; ".join(f"{path}: {message}" for path, message in items)
    return PydanticCustomError("qsim", "{text}", {"text": text, "problems": tuple(items)})

"""The repository keeps its promises: the README's quick start, CI, the scenario reference."""

from __future__ import annotations

import re

from pydantic import BaseModel

from qsim.history import OPS_COLUMNS
from qsim.scenario.messages import _models_in
from qsim.scenario.schema import Scenario

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def quick_start_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", section("Quick start"), re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_quick_start_is_exactly_two_commands_run_then_test():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert "qsim run scenarios/" in commands[0] and "pip install" in commands[0]
    assert "pytest" in commands[1] and "pip install" in commands[1]
    scenario = commands[0].split("qsim run ")[1].split()[0]
    assert (ROOT / scenario).is_file()


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        paths.append(prefix + key)
        for inner in _models_in(field.annotation):
            if inner.__module__ == Scenario.__module__:
                paths += field_paths(inner, f"{prefix}{key}.")
    return paths


def test_every_scenario_field_is_in_the_reference():
    reference = section("Scenario reference")
    missing = [
        path for path in field_paths(Scenario) if not re.search(rf"\b{path.split('.')[-1]}:", reference)
    ]
    assert not missing


def test_every_ops_column_is_documented():
    layout = section("Results layout")
    assert not [column for column in OPS_COLUMNS if f"`{column}`" not in layout]


def test_the_top_level_layout():
    for name in (
        "pyproject.toml",
        "README.md",
        "qsim",
        "scenarios",
        "notebooks",
        "tests",
        "results",
        "bench",
        ".ci",
    ):
        assert (ROOT / name).exists(), name
    assert sorted(p.name for p in (ROOT / "results").iterdir() if p.name in {"README.md", ".gitignore"}) == [
        ".gitignore",
        "README.md",
    ]


def test_every_picture_the_readme_shows_is_committed_and_small():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures, "the README shows what the plots look like"
    for picture in pictures:
        path = ROOT / picture
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
        assert path.stat().st_size < 200_000, f"{picture}: keep README pictures small"

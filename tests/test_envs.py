"""envs/*.yaml (the rules' conda environments) pin exactly what pyproject.toml pins."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# Used by the Snakemake process that submits jobs, never inside a job's conda environment.
DRIVER_ONLY = {"snakemake-executor-plugin-slurm"}


def pins(requirements: list[str]) -> dict[str, str]:
    """{normalised name: version} of exact `name==version` requirements; anything else is an error."""
    result = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", requirement.strip())
        assert match, f"not an exact pin: {requirement!r}"
        result[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return result


PROJECT_PINS = pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])


def test_the_rules_name_only_these_envs():
    assert {path.stem for path in ENV_FILES} == {"extract", "train", "report"}
    for rule_file in (REPO / "workflow/rules").glob("*.smk"):
        named = set(re.findall(r'"\.\./\.\./envs/([a-z_]+)\.yaml"', rule_file.read_text()))
        assert named <= {path.stem for path in ENV_FILES}, rule_file.name


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_env_pins_equal_the_project_pins(env_file):
    env = yaml.safe_load(env_file.read_text())
    pip_sections = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict)]
    assert len(pip_sections) == 1, "one pip: section with the project's pins"
    expected = {name: version for name, version in PROJECT_PINS.items() if name not in DRIVER_ONLY}
    assert pins(pip_sections[0]) == expected
    python = [dep for dep in env["dependencies"] if isinstance(dep, str) and dep.startswith("python")]
    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == ["python=3.11"] and required == ">=3.11"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_env_installs_this_checkouts_avcmr_after_deployment(env_file):
    """Snakemake copies an env file to .snakemake/conda/ before `conda env create`, so a relative
    `-e ..` in the pip section would point there; the post-deploy script installs avcmr instead."""
    script = env_file.with_name(env_file.stem + ".post-deploy.sh")
    assert script.exists(), f"{script.name} missing"
    assert 'pip install --no-deps --editable "$(dirname "$0")/.."' in script.read_text()

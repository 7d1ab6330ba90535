"""envs/*.yaml (the rules' conda environments): small, one per role, pinned as pyproject.toml pins,
and enough for the rules' scripts, which import avcmr from this checkout without installing it.

Snakemake runs a rule's script as a copy under .snakemake/scripts/ with the script's own folder
appended to sys.path; `import _avcmr_src` (first line of every script) then puts the checkout's src/
in front. No post-deploy script is needed (Snakemake would run one from its copy under
.snakemake/conda/<hash>.post-deploy.sh, where `$(dirname "$0")/..` is .snakemake/, not the checkout).
The slow test proves it the way a conda job would see it: a bare interpreter (no site-packages, no
PYTHONPATH) whose only packages are the environment's, running each script's imports from a copy.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
SCRIPTS = REPO / "workflow/scripts"
# Used by the Snakemake process that submits jobs, never inside a job's conda environment.
DRIVER_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "pyyaml"}
# What each role must have (the list); the test below checks that it is also enough.
ROLE_PACKAGES = {
    "extract": {"tensorflow-cpu", "keras", "librosa", "ffmpeg-python", "yt-dlp", "pyarrow", "pandas"},
    "train": {"torch", "scikit-learn", "pyarrow", "pandas"},
    "report": {"pandas", "pyarrow", "matplotlib"},
}
PATH_LINE = "import _avcmr_src"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Required at a minimum version instead of pinned (pyproject.toml says why: YouTube changes, and
# only a recent yt-dlp keeps up).
MINIMUM_ONLY = {"yt-dlp"}


def pins(requirements: list[str]) -> dict[str, str]:
    """{normalised name: `==version`} of exact pins, `>=version` for :data:`MINIMUM_ONLY`; anything
    else is an error."""
    result = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(==|>=)([^\s;]+)", requirement.strip())
        assert match, f"not an exact pin: {requirement!r}"
        name, operator = normalise(match.group(1)), match.group(2)
        expected = ">=" if name in MINIMUM_ONLY else "=="
        assert operator == expected, f"{requirement!r}: {name} must be required with {expected}"
        result[name] = operator + match.group(3)
    return result


PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PROJECT_PINS = pins(PYPROJECT["dependencies"])


def env_spec(env_file: Path) -> tuple[list[str], dict[str, str]]:
    """(conda packages, pip pins) of an environment file."""
    env = yaml.safe_load(env_file.read_text())
    pip_sections = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict)]
    assert len(pip_sections) == 1, f"{env_file.name}: one pip: section"
    return [dep for dep in env["dependencies"] if isinstance(dep, str)], pins(pip_sections[0])


def closure(names) -> dict[str, metadata.Distribution]:
    """The installed distributions ``names`` need, with everything they require (this platform)."""
    found, todo = {}, [normalise(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = distribution = metadata.distribution(name)
        for requirement in map(Requirement, distribution.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(normalise(requirement.name))
    return found


def rule_scripts() -> list[tuple[str, str, str]]:
    """(rule, env name, script name) of every rule with both `conda:` and `script:`."""
    found = []
    for rule_file in sorted((REPO / "workflow/rules").glob("*.smk")):
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", rule_file.read_text(), re.MULTILINE):
            env = re.search(r'conda:\s*"\.\./\.\./envs/(\w+)\.yaml"', match.group(2))
            script = re.search(r'script:\s*"\.\./scripts/(\w+\.py)"', match.group(2))
            if env and script:
                found.append((match.group(1), env.group(1), script.group(1)))
    return found


def test_the_rules_name_only_these_envs():
    assert {path.stem for path in ENV_FILES} == set(ROLE_PACKAGES)
    for rule_file in (REPO / "workflow/rules").glob("*.smk"):
        named = set(re.findall(r'"\.\./\.\./envs/([a-z_]+)\.yaml"', rule_file.read_text()))
        assert named <= {path.stem for path in ENV_FILES}, rule_file.name
    assert {env for _, env, _ in rule_scripts()} == set(ROLE_PACKAGES)


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_env_is_its_roles_packages_pinned_as_pyproject_pins_them(env_file):
    conda, pip = env_spec(env_file)
    assert ROLE_PACKAGES[env_file.stem] <= set(pip), f"{env_file.name} lacks {ROLE_PACKAGES[env_file.stem] - set(pip)}"
    assert {name: PROJECT_PINS.get(name) for name in pip} == pip, "pins differ from pyproject.toml's"
    # Everything pyproject pins that pip would pull in for this env is pinned here too (same version).
    pulled = set(closure(pip)) & set(PROJECT_PINS)
    assert pulled <= set(pip), f"{env_file.name}: pin {sorted(pulled - set(pip))} as pyproject.toml does"
    assert not set(pip) & DRIVER_ONLY
    required = PYPROJECT["requires-python"]
    assert "python=3.11" in conda and required == ">=3.11"
    binaries = [dep for dep in conda if dep not in ("python=3.11", "pip")]
    if env_file.stem == "extract":  # ffmpeg and ffprobe, pinned (decode, probe, yt-dlp's cuts)
        assert len(binaries) == 1 and re.fullmatch(r"ffmpeg=\d+\.\d+\.\d+", binaries[0].split("#")[0].strip())
    else:
        assert binaries == []


def test_the_envs_are_smaller_than_the_whole_project():
    """One small env per role: torch only where training runs, TensorFlow only where features are made."""
    pip = {path.stem: set(env_spec(path)[1]) for path in ENV_FILES}
    assert "torch" not in pip["extract"] | pip["report"]
    assert not {"tensorflow-cpu", "keras", "librosa"} & (pip["train"] | pip["report"])
    assert all(len(packages) < len(PROJECT_PINS) - len(DRIVER_ONLY) for packages in pip.values())


def test_no_post_deploy_script_is_needed():
    assert sorted((REPO / "envs").glob("*.post-deploy.sh")) == []


def script_files() -> list[Path]:
    return sorted(path for path in SCRIPTS.glob("*.py") if path.name != "_avcmr_src.py")


@pytest.mark.parametrize("script", script_files(), ids=lambda path: path.name)
def test_every_script_puts_the_checkouts_src_on_the_path_before_importing_avcmr(script):
    lines = script.read_text().splitlines()
    first_avcmr = next(i for i, line in enumerate(lines) if re.match(r"(from|import) avcmr\b", line))
    assert any(line.startswith(PATH_LINE) for line in lines[:first_avcmr]), script.name


def import_block(source: str) -> str:
    """The module-level import statements of a script, in order (no call of `snakemake.*`)."""
    tree = ast.parse(source)
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))


def module_source(module: str) -> Path | None:
    path = REPO / "src" / module.replace(".", "/")
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def lazy_imports(script: Path) -> list[str]:
    """Modules imported inside the avcmr functions the script calls (one level) and, inside those
    modules, the third-party modules imported lazily (e.g. keras inside build_vggish)."""
    tree = ast.parse(script.read_text())
    modules = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("avcmr"):
            source = module_source(node.module)
            if source is None:
                continue
            functions = {f.name: f for f in ast.parse(source.read_text()).body if isinstance(f, ast.FunctionDef)}
            for alias in node.names:
                if alias.name in functions:
                    modules += [n.module for n in ast.walk(functions[alias.name])
                                if isinstance(n, ast.ImportFrom) and n.module]
                    modules += [a.name for n in ast.walk(functions[alias.name]) if isinstance(n, ast.Import)
                                for a in n.names]
    third_party = []
    for module in modules:
        source = module_source(module)
        if module.startswith("avcmr") and source is not None:
            third_party += [a.name for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.Import)
                            for a in n.names if not a.name.startswith("avcmr")]
            third_party += [n.module for n in ast.walk(ast.parse(source.read_text()))
                            if isinstance(n, ast.ImportFrom) and n.module and not n.level
                            and not n.module.startswith("avcmr")]
    return sorted(set(modules + third_party))


# Imports made by name at run time, which the scan above cannot see: the method registry imports
# every method module (torch) when a method is made.
RUN_TIME_IMPORTS = {"train": "from avcmr.methods import available_methods; available_methods()\n"}


def env_site(env_file: Path, folder: Path) -> Path:
    """A folder holding only the env's packages (links to the installed files of its distributions)."""
    folder.mkdir(parents=True)
    for distribution in closure(env_spec(env_file)[1]).values():
        for top in {Path(str(file)).parts[0] for file in distribution.files or [] if not str(file).startswith("..")}:
            link = folder / top
            if not link.exists() and top != "__pycache__":
                link.symlink_to(distribution.locate_file(top))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_scripts_import_avcmr_in_a_bare_interpreter_with_only_the_envs_packages(env_file, tmp_path):
    """Each rule's script, copied as Snakemake copies it, imports (module level and the lazy imports of
    the stage it calls) with python -I -S, PYTHONPATH unset, and only the env's packages on the path."""
    site = env_site(env_file, tmp_path / "site-packages")
    copies = tmp_path / "workdir/.snakemake/scripts"
    copies.mkdir(parents=True)
    runs = []
    for rule, env, name in rule_scripts():
        if env != env_file.stem:
            continue
        real = SCRIPTS / name
        copy = copies / f"tmp{rule}.{name}"
        # Snakemake's preamble: the script's folder appended to sys.path, __file__ set to the original.
        copy.write_text(f"import sys; sys.path.extend([{str(SCRIPTS)!r}]); __file__ = {str(real)!r}\n"
                        + import_block(real.read_text()) + "\n"
                        + "".join(f"import {module}\n" for module in lazy_imports(real)))
        runs.append(str(copy))
    assert runs
    check = (f"import runpy, sys; sys.path.insert(0, {str(site)!r})\n"
             f"for copy in {runs!r}: runpy.run_path(copy, run_name='__main__')\n"
             + RUN_TIME_IMPORTS.get(env_file.stem, "") +
             "import avcmr; print(avcmr.__file__)\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", check], capture_output=True, text=True,
                            cwd=tmp_path / "workdir", env=env, timeout=600)
    assert result.returncode == 0, f"{env_file.name}: {result.stderr[-3000:]}"
    assert result.stdout.strip().splitlines()[-1] == str(REPO / "src/avcmr/__init__.py")

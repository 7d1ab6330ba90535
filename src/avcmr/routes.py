"""Routes of a dataset: build it from the first source whose files are present (``kind: auto``).

The paper's datasets reach the workflow by one of three routes, each a complete dataset entry in
a config file of its own: the paper group's released feature file (``config/vegas_features.yaml``),
the authors' release archive of videos (``config/vegas_archive.yaml``), or a clip list whose clips
are fetched from YouTube (``config/vegas.yaml``); likewise for AVE. A config entry

    vegas:
      kind: auto
      routes:
        - {config: config/vegas_features.yaml}
        - {config: config/vegas_archive.yaml, entry: vegas_archive}
        - {config: config/vegas.yaml}

names them in order. :func:`resolve_auto_datasets` replaces it by the first route whose input
files are all present, so that ``snakemake results/vegas/map.tsv`` works with whichever file the
user has, and the route settings stay in one place (their own files). Other keys of the auto entry
(e.g. ``budget: quick``) apply on top of the chosen entry. With no route present the dataset is
left out of the config and its one-line reason kept: asking for one of its results stops the run
with it (the demo and other datasets are not concerned).

Snakemake merges a ``--configfile`` into the default config key by key, so an explicit entry of
the same name (``--configfile config/vegas_features.yaml``) arrives with the default's ``routes``
still in it: an entry whose kind is not ``auto`` has its ``routes`` dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avcmr.config import ConfigError, deep_merge
from avcmr.data.feature_file import ROUTE as FEATURES_ROUTE

AUTO = "auto"
# Keys of an auto entry that choose the route; all others override the chosen entry's.
ROUTE_KEYS = ("kind", "routes")
README_SECTION = "README, 'The paper's datasets: one command'"

ARCHIVE_ROUTE = "release archive"
MANIFEST_ROUTE = "manifest"


def route_label(spec: Mapping) -> str | None:
    """What kind of source a dataset entry is built from (None for the synthetic set)."""
    from avcmr.data.manifests import YOUTUBE_KINDS

    kind = spec["kind"]
    if kind == "features":
        return FEATURES_ROUTE
    if kind == "folder":
        return ARCHIVE_ROUTE if spec.get("archive") else "folder"
    if kind in YOUTUBE_KINDS:
        return MANIFEST_ROUTE if "manifest" in spec else "AudioSet segment lists"
    return None


def route_inputs(dataset: str, spec: Mapping) -> tuple[str, ...]:
    """The local files (or folder) a dataset entry starts from, where the workflow looks for them:
    a list or archive configured as a URL is its downloaded copy (as ``fetch_manifests`` and
    ``fetch_archives`` name it for ``dataset``)."""
    from avcmr.data.archive import local_archive_path
    from avcmr.data.manifests import YOUTUBE_KINDS, local_list_path, segment_sources

    kind = spec["kind"]
    if kind == "features":
        return (str(spec["feature_file"]["path"]),)
    if kind == "folder" and spec.get("archive"):
        annotations = (str(spec["annotations"]),) if spec.get("annotations") else ()
        return (local_archive_path(dataset, spec["archive"]), *annotations)
    if kind == "folder":
        return (str(spec["root"]),) if spec.get("root") else ()
    if kind in YOUTUBE_KINDS:
        if "manifest" in spec:
            return (local_list_path(dataset, "manifest", spec["manifest"]),)
        return tuple(local_list_path(dataset, f"segments{i}", source)
                     for i, source in enumerate(segment_sources(spec)))
    return ()


def describe_source(label: str, inputs: Sequence[str]) -> str:
    """``<kind of source> <its files>``, as the headers and the no-route line name a route."""
    return f"{label} {' + '.join(inputs)}".rstrip()


def route_line(dataset: str, spec: Mapping) -> str | None:
    """``route: <kind of source> <its files>`` for the headers of acquisition.tsv and the tables; the
    same for an entry given explicitly and one chosen by ``kind: auto`` (None for the synthetic set)."""
    label = route_label(spec)
    if label is None:
        return None
    return f"route: {describe_source(label, route_inputs(dataset, spec))}"


@dataclass(frozen=True)
class Route:
    """One way to build a dataset: an entry of a config file, and the files it starts from."""

    config_file: str  # as the routes list names it
    entry: str
    spec: Mapping
    label: str
    inputs: tuple[str, ...]

    def missing(self) -> list[str]:
        return [path for path in self.inputs if not Path(path).exists()]

    def describe(self) -> str:
        return describe_source(self.label, self.inputs)


@dataclass(frozen=True)
class ChosenRoute:
    dataset: str
    route: Route
    routes: tuple[Route, ...]

    def header_line(self) -> str:
        """How the route was chosen, for the tables' headers."""
        order = " > ".join(route.describe() for route in self.routes)
        return (f"route chosen: {self.route.label} (settings: {self.route.config_file}), the first present "
                f"of {order}")


@dataclass
class Resolution:
    """The auto datasets of a config: those resolved to a route, and those with none present (the
    one-line reason that stops a run asking for one of their results)."""

    chosen: dict[str, ChosenRoute] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def load_routes(dataset: str, routes: object, base_dir: str | Path) -> tuple[Route, ...]:
    """The routes of an auto entry, each read from its config file (a relative path is read from
    ``base_dir``, the workflow's folder); a malformed list or entry is a one-line ConfigError."""
    import yaml

    where = f"config key datasets.{dataset}.routes"
    if not isinstance(routes, Sequence) or isinstance(routes, str) or not routes:
        raise ConfigError(f"{where}: kind auto needs a list of routes, each {{config: <file>, entry: <name>}} "
                          f"({README_SECTION})")
    loaded = []
    for i, item in enumerate(routes):
        if not isinstance(item, Mapping) or not isinstance(item.get("config"), str):
            raise ConfigError(f"{where}.{i}: a route is {{config: <file>, entry: <name>}}, not {item!r}")
        entry = item.get("entry", dataset)
        path = Path(item["config"])
        path = path if path.is_absolute() else Path(base_dir) / path
        if not path.is_file():
            raise ConfigError(f"{where}.{i}.config: {path} not found")
        try:
            spec = ((yaml.safe_load(path.read_text()) or {}).get("datasets") or {}).get(entry)
        except (yaml.YAMLError, AttributeError) as error:
            raise ConfigError(f"{where}.{i}.config: {path} is not a config file: "
                              f"{str(error).splitlines()[0]}") from None
        if not isinstance(spec, Mapping) or spec.get("kind") in (None, AUTO):
            raise ConfigError(f"{where}.{i}: {item['config']} has no complete dataset entry datasets.{entry} "
                              "(a mapping with a kind other than auto)")
        loaded.append(Route(item["config"], entry, spec, route_label(spec) or spec["kind"],
                            route_inputs(dataset, spec)))
    return tuple(loaded)


def no_route_message(dataset: str, routes: Sequence[Route]) -> str:
    """One line: none of the dataset's routes is present; each route, where its files go, and how it
    continues."""
    parts = []
    for i, route in enumerate(routes, 1):
        absent = route.missing()
        partial = f", missing {' + '.join(absent)}" if len(absent) < len(route.inputs) else ""
        parts.append(f"({i}) {route.label}: {' + '.join(route.inputs)} ({route.config_file}{partial}"
                     f"{_next_step(route)})")
    return (f"dataset {dataset!r}: none of its routes is present; put one of these in place: " + "; ".join(parts)
            + f" ({README_SECTION})")


def _next_step(route: Route) -> str:
    """What the user runs once the route's file is there (or to get it), in the no-route line."""
    from avcmr.io.http_fetch import is_url

    if route.label == ARCHIVE_ROUTE:
        return "; then `snakemake fetch_archives --cores 1` unpacks it"
    urls = [source for source in [route.spec.get("manifest")] if source and is_url(source)]
    if urls:
        return f"; `snakemake fetch_manifests --cores 1 --configfile {route.config_file}` downloads it from {urls[0]}"
    return ""


def resolve_auto_datasets(config: MutableMapping, base_dir: str | Path) -> Resolution:
    """Resolve every ``kind: auto`` entry of ``config["datasets"]`` in place (see the module
    docstring): the first present route's entry, with the auto entry's other keys on top; the entry
    is removed when no route is present. ``routes`` left by the defaults under an entry of another
    kind are dropped."""
    resolution = Resolution()
    datasets = config.get("datasets") or {}
    for name in list(datasets):
        entry = datasets[name]
        if not isinstance(entry, Mapping):
            continue  # the schema check names it
        if entry.get("kind") != AUTO:
            if "routes" in entry:
                datasets[name] = {k: v for k, v in entry.items() if k != "routes"}
            continue
        routes = load_routes(name, entry.get("routes"), base_dir)
        present = [route for route in routes if not route.missing()]
        if not present:
            resolution.missing[name] = no_route_message(name, routes)
            del datasets[name]
            continue
        overrides = {k: v for k, v in entry.items() if k not in ROUTE_KEYS}
        datasets[name] = deep_merge(present[0].spec, overrides)
        resolution.chosen[name] = ChosenRoute(name, present[0], routes)
    return resolution

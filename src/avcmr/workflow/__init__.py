"""The Snakemake workflow's helpers: what its rules read from the config, as plain functions.

``workflow/rules/common.smk`` binds them to the run's config (``SETTINGS``, ``ROUTES``) and keeps
the thin input, params and resources functions the rules name; the logic lives here, where it is
imported and unit-tested without Snakemake. Errors are :class:`avcmr.config.ConfigError` with one
line; the workflow turns them into that line and no traceback
(:func:`avcmr.config.stop_on_config_error`).

- :mod:`~avcmr.workflow.settings`: per-dataset settings, dataset-name patterns, threads, method
  parameters, training rules, figure settings;
- :mod:`~avcmr.workflow.provenance`: what decides each table (config hashes) and the header lines;
- :mod:`~avcmr.workflow.listings`: each dataset's clips and shards, read once per invocation;
- :mod:`~avcmr.workflow.memory`: ``mem_mb`` of the dataset-wide jobs;
- :mod:`~avcmr.workflow.targets`: the files rules and targets ask for (results, report, inputs).
"""

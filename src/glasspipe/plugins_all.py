"""Import every plugin module once, filling the registries of :mod:`glasspipe.plugins`.

This is the one place that lists the plugins: the entry points (the Snakefile, the CLI, the tests) import it
before they read a config. Order matters only where it is visible: models are listed (and their runs
scheduled and reported) in the order they are imported here.

Plugins outside the package: ``GLASSPIPE_PLUGINS`` may name further modules (comma-separated, importable from
``sys.path``), imported after the built-in ones; every workflow job inherits the variable, so a model
registered there is trained and evaluated like a built-in one.
"""

# ruff: noqa: I001  (the models' import order below is their order in the registry)
from __future__ import annotations

import importlib
import os

from glasspipe import plugins

# Models (glasspipe.learn.zoo): one module each. Adding a model = its module plus one line here.
import glasspipe.learn.zoo.ridge  # noqa: F401
import glasspipe.learn.zoo.mlp  # noqa: F401
import glasspipe.learn.zoo.bapst  # noqa: F401
import glasspipe.learn.zoo.baseline  # noqa: F401
import glasspipe.learn.zoo.se3  # noqa: F401

# Labels, descriptor sets and dataset formats: each package registers its modules on import.
import glasspipe.labels  # noqa: F401
import glasspipe.structure.descriptors  # noqa: F401
import glasspipe.importers  # noqa: F401

# Cross-key checks of the optional evaluations' config sections.
import glasspipe.learn.learning_curve  # noqa: F401
import glasspipe.learn.transfer  # noqa: F401

for _name in filter(None, (part.strip() for part in os.environ.get("GLASSPIPE_PLUGINS", "").split(","))):
    importlib.import_module(_name)

plugins.mark_loaded()

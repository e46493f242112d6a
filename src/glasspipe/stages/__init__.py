"""The pipeline's stages: one thin module per stage, each reading the stage's inputs, calling the library
and writing its outputs (atomically, with metadata: settings, potential, seeds, software versions).

Each stage function takes the stage's part of the config (see glasspipe.config.STAGE_SECTIONS), the item it
works on (temperature, configuration, model) and explicit paths or a results layout, so that it runs the same
from the CLI (glasspipe.cli, every stage's subcommand), from a Snakemake rule or from a test.

    simulate        init, equilibrate
    isoconf         isoconf (the iso-configurational replicas)
    importing       import_configuration (an imported dataset's configuration; ``import`` is a keyword)
    labels          labels
    structure       structure
    train           train
    evaluate        evaluate
    report          report (glasspipe.artifact.build)
    transfer        train, evaluate of the transfer across temperatures
    learning_curve  train, evaluate of the learning curves

The per-item stages are re-exported here (``stages.equilibrate(...)``, ``stages.train(...)``): a function
shares its module's name where there is one stage per module, so ``glasspipe.stages.train`` is the function;
import from the module itself (``from glasspipe.stages.train import train``) where the module is meant. The
transfer and learning-curve modules are not re-exported: ``from glasspipe.stages import transfer``.
"""

from __future__ import annotations

from glasspipe.learn.inputs import INPUT_FILE, load_samples, model_input
from glasspipe.stages.evaluate import evaluate
from glasspipe.stages.importing import import_configuration
from glasspipe.stages.isoconf import isoconf
from glasspipe.stages.labels import labels
from glasspipe.stages.report import report
from glasspipe.stages.simulate import equilibrate, init
from glasspipe.stages.structure import structure
from glasspipe.stages.train import train

__all__ = [
    "INPUT_FILE",
    "equilibrate",
    "evaluate",
    "import_configuration",
    "init",
    "isoconf",
    "labels",
    "load_samples",
    "model_input",
    "report",
    "structure",
    "train",
]

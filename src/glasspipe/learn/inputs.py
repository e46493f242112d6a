"""What a trained model reads, and its samples: shared by the train and evaluate stages (glasspipe.stages)
and by the transfer and learning-curve jobs, so that every model directory records (input.json) and is fed
the same kind of data."""

from __future__ import annotations

from pathlib import Path

from glasspipe import config as cfg

INPUT_FILE = "input.json"


def _positions_path(layout, temperature: float, configuration: int, kind: str) -> Path:
    """The configuration a model reads positions from: 'thermal' (equilibrated) or 'inherent'; 'both' reads
    the thermal positions (and, in load_samples, the displacement to the inherent ones)."""
    if kind == "inherent":
        return layout.inherent(temperature, configuration)
    return layout.equilibrated(temperature, configuration)


def model_input(settings: dict, model: str) -> dict:
    """What ``model`` (a model or a run '<model>.<label>', see glasspipe.config.model_runs) reads, recorded
    beside it (input.json) so evaluation feeds it the same kind of data."""
    from glasspipe.learn.registry import get

    spec = get(cfg.run_model(model))
    target = cfg.run_target(settings, model)
    if spec.inputs == "graph":
        return {
            "inputs": "graph",
            "positions": settings["graph"]["input"],
            "r_cut": settings["graph"]["r_cut"],
            "target": target,
        }
    return {"inputs": "descriptors", "positions": "thermal", "target": target}


def load_samples(layout, temperature: float, configurations: list[int], model_input_: dict) -> list:
    """Samples (positions, labels and, for descriptor models, descriptors) of ``configurations``."""
    from glasspipe.learn.samples import load_sample, with_inherent_displacement

    with_descriptors = model_input_["inputs"] == "descriptors"
    samples = [
        load_sample(
            c,
            _positions_path(layout, temperature, c, model_input_["positions"]),
            layout.labels(temperature, c),
            layout.structure(temperature, c) if with_descriptors else None,
            # The label the model learns (models.<name>.target; propensity for models trained before it existed).
            target=model_input_.get("target", "propensity"),
            temperature=temperature,
        )
        for c in configurations
    ]
    if model_input_["positions"] == "both":
        samples = [with_inherent_displacement(s, layout.inherent(temperature, s.configuration)) for s in samples]
    return samples

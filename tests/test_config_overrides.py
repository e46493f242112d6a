"""Config overrides from the command line: `snakemake --config key=value` hands scalars inside lists and
mappings over as strings; glasspipe.config.coerce_config turns them into the schema's types, and
validate_config refuses what no schema keyword catches (empty strings, nan/inf, shell-breaking paths).

The fuzz cases are parsed exactly as Snakemake parses `--config` (snakemake.cli.parse_config), merged onto
the tiny test config as Snakemake merges them (snakemake.utils.update_config), and validated by the function
the Snakefile calls (glasspipe.config.validate_config); a handful also go through a real `snakemake -n`.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from snakemake.cli import parse_config
from snakemake.utils import update_config

from glasspipe import config as cfg

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def with_overrides(*entries: str) -> dict:
    """The tiny config with `--config` entries applied the way Snakemake applies them (not yet validated)."""
    config = yaml.safe_load(TINY.read_text())
    update_config(config, parse_config(list(entries)))
    return config


def resolved(*entries: str) -> dict:
    return cfg.validate_config(with_overrides(*entries))


def dry_run(workdir: Path, *args: str, configfile: Path = TINY) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(configfile), "-n", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


# --- One test per kind of coerced value (in process) --------------------------------------------------------


def test_snakemake_hands_nested_scalars_over_as_strings():
    """The reason for coercion: without it these overrides are refused (issue 10)."""
    parsed = parse_config(["temperatures=[0.6]", "models={bapst: {epochs: 5}}"])
    assert parsed == {"temperatures": ["0.6"], "models": {"bapst": {"epochs": "5"}}}


def test_list_of_numbers():
    assert resolved("temperatures=[0.6, 0.65]")["temperatures"] == [0.6, 0.65]
    assert resolved("models={ridge: {alphas: [1e-3, 1, 2.5E2]}}")["models"]["ridge"]["alphas"] == [0.001, 1, 250.0]


def test_number_in_nested_mapping():
    """'1e-4' is no float to YAML 1.1 (it needs a dot), but is one to the schema and to Python."""
    config = resolved("models={bapst: {learning_rate: 1e-4}}", "engine={dt: 0.002}")
    assert config["models"]["bapst"]["learning_rate"] == 1e-4
    assert config["engine"]["dt"] == 0.002
    # The rest of the section keeps the tiny config's values (Snakemake merges mappings key by key).
    assert config["models"]["bapst"]["hidden"] == 8


def test_integer():
    config = resolved("models={bapst: {epochs: 5}}", "isoconf={n_replicas: 4}")
    assert config["models"]["bapst"]["epochs"] == 5 and isinstance(config["models"]["bapst"]["epochs"], int)
    assert config["isoconf"]["n_replicas"] == 4
    # An integral float spelling is an integer; a fractional one is refused, naming the key.
    assert resolved("models={bapst: {epochs: 1e2}}")["models"]["bapst"]["epochs"] == 100
    with pytest.raises(cfg.ConfigError, match=r"models\.bapst\.epochs"):
        resolved("models={bapst: {epochs: 5.5}}")


def test_boolean():
    config = resolved("models={bapst: {augment: false, layer_norm: yes}, mlp: {enabled: 'off'}}")
    assert config["models"]["bapst"]["augment"] is False
    assert config["models"]["bapst"]["layer_norm"] is True
    assert config["models"]["mlp"]["enabled"] is False


def test_null():
    # Without a dense window the single-trajectory labels that need it must be off (the tiny config has them on).
    no_dense_labels = "labels={phop: {enabled: false}, cwt: {enabled: false}}"
    config = resolved("isoconf={dense_window: null}", "source={box_length: ~}", no_dense_labels)
    assert config["isoconf"]["dense_window"] is None
    assert config["source"]["box_length"] is None


def test_one_of_list_or_grid():
    """isoconf.times is a list or a {start, stop, count} grid: each alternative gets its own types."""
    assert resolved("isoconf={times: [0.05, 1]}")["isoconf"]["times"] == [0.05, 1]
    grid = resolved("isoconf={times: {start: 0.1, stop: 10, count: 3}}")["isoconf"]["times"]
    assert grid == {"start": 0.1, "stop": 10, "count": 3} and isinstance(grid["count"], int)
    no_dense_labels = "labels={phop: {enabled: false}, cwt: {enabled: false}}"  # this window resolves neither
    window = resolved("isoconf={dense_window: {start: 0, stop: 1.5, interval: 0.5}}", no_dense_labels)
    window = window["isoconf"]["dense_window"]
    assert window == {"start": 0, "stop": 1.5, "interval": 0.5}


def test_descriptor_set_settings_injected_from_the_registry():
    """structure.sets.* come from the descriptor registry (config.schema()), not the schema file."""
    config = resolved("structure={sets: {radial: {r_min: 0.8, r_max: 2.4, dr: 0.2}}}")
    assert config["structure"]["sets"]["radial"] == pytest.approx(
        {**config["structure"]["sets"]["radial"], "r_min": 0.8, "r_max": 2.4, "dr": 0.2}
    )
    assert isinstance(config["structure"]["sets"]["radial"]["r_max"], float)


def test_mapping_or_list_given_as_yaml_text():
    """A section (or a list) that arrives as one string of YAML flow text is parsed, then coerced inside."""
    config = dict(yaml.safe_load(TINY.read_text()))
    config["models"] = "{bapst: {epochs: '7', hidden: 8}, ridge: {alphas: '[1e-2, 1]'}}"
    config["temperatures"] = "[0.75]"
    out = cfg.validate_config(config)
    assert out["models"]["bapst"]["epochs"] == 7
    assert out["models"]["ridge"]["alphas"] == [0.01, 1]
    assert out["temperatures"] == [0.75]


def test_strings_stay_strings_where_the_schema_wants_a_string():
    config = resolved("results_dir=123abc", "models={baseline: {enabled: true, feature: 'radial:1'}}")
    assert config["results_dir"] == "123abc"
    assert config["models"]["baseline"]["feature"] == "radial:1"
    # coerce_config alone: a numeric-looking string at a string key is untouched.
    assert cfg.coerce_config({"source": {"train": "2024"}})["source"]["train"] == "2024"


def test_coerce_config_does_not_modify_its_input():
    config = {"temperatures": ["0.6"]}
    assert cfg.coerce_config(config) == {"temperatures": [0.6]}
    assert config == {"temperatures": ["0.6"]}


def test_check_values_finds_each_kind_of_problem():
    problems = cfg.check_values(
        {"results_dir": "out;x", "seed": math.nan, "engine": {"dt": math.inf}, "models": {"baseline": {"feature": " "}}}
    )
    assert len(problems) == 4
    for key in ("results_dir", "seed", "engine.dt", "models.baseline.feature"):
        assert any(f"'{key}'" in p for p in problems), (key, problems)
    assert cfg.check_values(yaml.safe_load(TINY.read_text())) == []


# --- Fuzz: >= 50 bad overrides, each refused with the key named ------------------------------------------------

# (--config entry, the key the error must name). Each is one kind of mistake a user can make.
BAD_OVERRIDES: list[tuple[str, str]] = [
    # empty strings (Snakemake turns an empty top-level value into None)
    ("results_dir=''", "results_dir"),
    ("results_dir=", "results_dir"),
    ("models={baseline: {enabled: true, feature: ''}}", "models.baseline.feature"),
    ("source={format: botan, train: ''}", "source.train"),
    # paths that break shells (or Snakemake's wildcards)
    ("results_dir=a b", "results_dir"),
    ("results_dir=out;rm -rf x", "results_dir"),
    ("results_dir=$HOME/out", "results_dir"),
    ("results_dir=`id`", "results_dir"),
    ("results_dir=it's", "results_dir"),
    ('results_dir=out"x', "results_dir"),
    ("results_dir=a\nb", "results_dir"),
    ("results_dir=a\tb", "results_dir"),
    ("results_dir=out|tee", "results_dir"),
    ("results_dir=out&", "results_dir"),
    ("results_dir=out>x", "results_dir"),
    ("results_dir=out*", "results_dir"),
    ("results_dir=out\\x", "results_dir"),
    ("results_dir=r{T}", "results_dir"),
    ("results_dir=-rf", "results_dir"),
    ("results_dir=~/out", "results_dir"),
    ("source={format: botan, train: 'data;x'}", "source.train"),
    ("source={format: botan, train: data, test: '$(id)'}", "source.test"),
    # non-finite numbers
    ("seed=nan", "seed"),
    ("temperatures=[nan]", "temperatures.0"),
    ("temperatures=[0.7, inf]", "temperatures.1"),
    ("temperatures=[.inf]", "temperatures.0"),
    ("tau_alpha_estimates=[-inf]", "tau_alpha_estimates.0"),
    ("engine={dt: inf}", "engine.dt"),
    ("equilibrate={production_time: inf}", "equilibrate.production_time"),
    ("equilibrate={log_interval: NaN}", "equilibrate.log_interval"),
    ("system={density: Infinity}", "system.density"),
    ("models={bapst: {learning_rate: nan}}", "models.bapst.learning_rate"),
    ("models={ridge: {alphas: [1, inf]}}", "models.ridge.alphas.1"),
    ("models={mlp: {weight_decay: inf}}", "models.mlp.weight_decay"),
    ("isoconf={times: [0.1, inf]}", "isoconf.times.1"),
    ("isoconf={times: {start: 0.1, stop: inf, count: 4}}", "isoconf.times.stop"),
    ("source={box_length: .nan}", "source.box_length"),
    ("structure={sets: {radial: {r_max: nan}}}", "structure.sets.radial.r_max"),
    # values of the wrong type or out of range
    ("temperatures=[abc]", "temperatures.0"),
    ("temperatures=[0.6", "temperatures"),
    ("temperatures=[]", "temperatures"),
    ("temperatures=[-0.5]", "temperatures.0"),
    ("seed=abc", "seed"),
    ("seed=1.5", "seed"),
    ("seed=-1", "seed"),
    ("n_configurations=many", "n_configurations"),
    ("models={bapst: {epochs: 5.5}}", "models.bapst.epochs"),
    ("models={bapst: {epochs: many}}", "models.bapst.epochs"),
    ("models={bapst: {hidden: 0}}", "models.bapst.hidden"),
    ("models={bapst: {augment: maybe}}", "models.bapst.augment"),
    ("models={ridge: {enabled: 2}}", "models.ridge.enabled"),
    ("models={bapst: {device: tpu}}", "models.bapst.device"),
    ("models={transformer: {}}", "transformer"),
    ("engine={name: gromacs}", "engine.name"),
    ("engine={dt: 0.5}", "engine.dt"),
    ("engine={threads: 0}", "engine.threads"),
    ("system={n_particles: ten}", "system.n_particles"),
    ("system={fraction_A: 2}", "system.fraction_A"),
    ("system={cutoff_mode: smooth}", "system.cutoff_mode"),
    ("isoconf={n_replicas: 1}", "isoconf.n_replicas"),
    ("isoconf={times: {start: 0.1, stop: 1}}", "isoconf.times"),
    ("equilibrate={thermostat: berendsen}", "equilibrate.thermostat"),
    ("structure={sets: {radial: {dr: zero}}}", "structure.sets.radial.dr"),
    ("structure={sets: {voronoi: {}}}", "voronoi"),
    ("tempratures=[0.7]", "tempratures"),
    ("split={train: x}", "split.train"),
    # accepted by the schema, refused by the cross-field checks
    ("graph={r_cut: 100}", "graph.r_cut"),
    ("split={train: 3}", "split"),
]


def test_fuzz_list_is_large_and_distinct():
    entries = [entry for entry, _ in BAD_OVERRIDES]
    assert len(set(entries)) == len(entries) >= 50


@pytest.mark.parametrize(("entry", "key"), BAD_OVERRIDES, ids=[entry for entry, _ in BAD_OVERRIDES])
def test_bad_override_is_refused_naming_the_key(entry, key):
    with pytest.raises(cfg.ConfigError) as err:
        resolved(entry)
    assert f"'{key}'" in str(err.value) or key in str(err.value).split("'"), str(err.value)


def test_bad_values_in_a_config_file_are_refused_too(tmp_path):
    """The same refusals hold for a config file (results_dir: '' was accepted before issue 10)."""
    config = yaml.safe_load(TINY.read_text())
    cases = (
        ("results_dir", ""),
        ("results_dir", "   "),
        ("results_dir", "my results"),
        ("results_dir", "out\nrm -rf x"),
        ("seed", float("nan")),
        ("tau_alpha_estimates", [float("inf")]),
    )
    for key, value in cases:
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({**config, key: value}))
        with pytest.raises(cfg.ConfigError, match=rf"'{key}(\.0)?'"):
            cfg.load_config(path)


def test_broken_yaml_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("temperatures: [0.7\nsplit: {train: 2\n")
    with pytest.raises(cfg.ConfigError, match="broken.yaml.*not valid YAML"):
        cfg.load_config(path)


# --- Through a real `snakemake -n` ----------------------------------------------------------------------------


def test_snakemake_dry_run_accepts_list_and_nested_integer_overrides(tmp_path):
    """The two commands of issue 10; -p prints the jobs' settings, which must carry the coerced values."""
    result = dry_run(tmp_path, "-p", "--config", "temperatures=[0.6]", "models={bapst: {epochs: 5}}")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "results/T0.6/" in out and "results/T0.8/" not in out
    assert '"epochs":5,' in out
    assert not (tmp_path / "results").exists()


def test_snakemake_dry_run_accepts_boolean_and_yaml_number_overrides(tmp_path):
    result = dry_run(tmp_path, "-p", "--config", "models={bapst: {augment: false, learning_rate: 1e-4}}")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert '"augment":false' in out and '"learning_rate":0.0001' in out


# A representative handful of the fuzz cases, one per kind of refusal.
SNAKEMAKE_BAD = [
    ("results_dir=''", "results_dir"),
    ("results_dir=out;rm -rf x", "results_dir"),
    ("temperatures=[nan]", "temperatures.0"),
    ("engine={dt: inf}", "engine.dt"),
    ("models={bapst: {epochs: many}}", "models.bapst.epochs"),
    ("source={format: botan, train: 'data;x'}", "source.train"),
]


@pytest.mark.parametrize(("entry", "key"), SNAKEMAKE_BAD, ids=[entry for entry, _ in SNAKEMAKE_BAD])
def test_snakemake_dry_run_refuses_bad_override_naming_the_key(tmp_path, entry, key):
    result = dry_run(tmp_path, "--config", entry)
    assert result.returncode != 0
    assert f"'{key}'" in result.stdout + result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_snakemake_dry_run_refuses_broken_yaml(tmp_path):
    """A broken --configfile is read by Snakemake itself (its message does not name the file); a broken
    default config.yaml is read by the Snakefile, whose message does."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("temperatures: [0.7\nsplit: {train: 2\n")
    result = dry_run(tmp_path, configfile=broken)
    assert result.returncode != 0
    assert "not valid JSON or YAML" in result.stdout + result.stderr
    workdir = tmp_path / "default"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(broken.read_text())
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "-n"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert str(workdir / "config.yaml") in out and "not valid JSON or YAML" in out
    assert not (workdir / "results").exists()

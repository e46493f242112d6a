"""glasspipe.datasets: the registry of public dataset files, their download (pooch, over a loopback HTTP
server here: this machine reaches no dataset host), the offline install from a local copy, and the refusal
of any file whose sha256 differs. Runs on a fresh clone with synthetic files and an injected registry; the
real BOTAN files are used where shared/data has them."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE

from glasspipe import datasets, importers

BOTAN_CONFIG = REPO / "configs" / "botan_T0.44.yaml"


# ----------------------------------------------------------------------------- synthetic datasets


def synthetic_dataset(folder: Path, n: int = 3, name: str = "toy_train", url: str | None = None) -> datasets.Dataset:
    """``n`` small BOTAN-named files written into ``folder`` and a registry entry with their sha256 and size
    (URLs under ``url`` when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for c in range(1, n + 1):
        fname = f"isoconfig_N64T0.5_{c}_tc07.npz"
        content = f"configuration {c} ".encode() * (1000 * c)  # distinct contents and sizes
        (folder / fname).write_bytes(content)
        files.append(
            datasets.DataFile(
                name=fname,
                sha256=hashlib.sha256(content).hexdigest(),
                size=len(content),
                url=None if url is None else f"{url}/{fname}",
            )
        )
    return datasets.Dataset(
        name=name,
        format="botan",
        group="toy",
        files=tuple(files),
        description="synthetic test files",
        source="tests/test_datasets.py",
        license="none",
    )


def flip_one_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# ----------------------------------------------------------------------------- the registry


def test_registry_lists_the_files_the_configs_use():
    """The BOTAN group: its 10 training files at T = 0.44, in configuration order (what the importer's
    natural sort gives); DeepMind's test sample. Checksums are sha256 hex, URLs pin a commit."""
    assert datasets.groups() == {"botan": ["botan_T0.44_train"], "deepmind": ["deepmind_test_small"]}
    botan = datasets.DATASETS["botan_T0.44_train"]
    assert [f.name for f in botan.files] == [f"isoconfig_N4096T0.44_{c}_tc07.npz" for c in range(1, 11)]
    for item in datasets.DATASETS.values():
        assert item.format in importers.FORMATS
        assert len({f.sha256 for f in item.files}) == len(item.files)
        for entry in item.files:
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256) and entry.size > 0
            assert re.fullmatch(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/.+", entry.url)
            assert entry.url.endswith("/" + entry.name)


def test_registry_matches_the_shared_samples(shared_data):
    """Every registered file that shared/data holds has the registered size and sha256 (the registry's
    checksums were computed from these copies, which match the upstream git blobs)."""
    checked = 0
    for item in datasets.DATASETS.values():
        for entry in item.files:
            local = datasets._local_copy(shared_data, item, entry)
            if local is None:
                continue
            assert local.stat().st_size == entry.size, local
            assert datasets.sha256sum(local) == entry.sha256, local
            checked += 1
    assert checked == 11  # 10 BOTAN files and DeepMind's pickle


def test_botan_order_is_the_importers_order(dataset_cache, shared_botan_train):
    """source.dataset gives the files in registry order; it must be the order an explicit directory gives."""
    item = datasets.DATASETS["botan_T0.44_train"]
    installed = datasets.install_from(item, shared_botan_train)
    assert installed == importers.list_files("botan", installed[0].parent)


def test_cache_dir_follows_glasspipe_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("GLASSPIPE_CACHE", str(tmp_path / "gp"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "gp"
    assert datasets.dataset_dir("botan_T0.44_train") == tmp_path / "gp" / "datasets" / "botan_T0.44_train"
    monkeypatch.setenv("GLASSPIPE_CACHE", "")  # empty counts as unset, like the shell's ${VAR:-default}
    assert datasets.cache_dir() == tmp_path / "xdg" / "glasspipe"
    monkeypatch.delenv("GLASSPIPE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "glasspipe"
    assert datasets.dataset_dir("x", root=tmp_path / "dest") == tmp_path / "dest" / "x"


def test_unknown_names_list_the_known_ones():
    with pytest.raises(datasets.DatasetError, match=r"'nope'.*botan.*deepmind"):
        datasets.resolve("nope")
    assert [d.name for d in datasets.resolve("botan_T0.44_train")] == ["botan_T0.44_train"]


# ----------------------------------------------------------------------------- offline: --from DIR


def test_install_from_a_local_copy_verifies_and_installs(tmp_path):
    item = synthetic_dataset(tmp_path / "copy")
    dest = tmp_path / "dest"
    installed = datasets.install_from(item, tmp_path / "copy", dest)
    assert installed == [dest / "toy_train" / f.name for f in item.files]
    for path, entry in zip(installed, item.files, strict=True):
        assert datasets.sha256sum(path) == entry.sha256
    assert datasets.missing_files(item, dest) == []
    # No temporary or partial files left beside them (the importers glob the folder).
    assert sorted(p.name for p in (dest / "toy_train").iterdir()) == sorted(f.name for f in item.files)
    # A second install keeps the verified files (the source may be gone by then).
    shutil.rmtree(tmp_path / "copy")
    (tmp_path / "copy").mkdir()
    assert datasets.install_from(item, tmp_path / "copy", dest) == installed


def test_install_from_refuses_a_copy_with_one_byte_changed(tmp_path):
    """One flipped byte in one file refuses the whole copy: nothing is installed, and the message names the
    file and both checksums."""
    item = synthetic_dataset(tmp_path / "copy")
    bad = tmp_path / "copy" / item.files[1].name
    flip_one_byte(bad)
    dest = tmp_path / "dest"
    with pytest.raises(datasets.DatasetError) as err:
        datasets.install_from(item, tmp_path / "copy", dest)
    message = str(err.value)
    assert "nothing was installed" in message and str(bad) in message
    assert item.files[1].sha256 in message and datasets.sha256sum(bad) in message
    assert item.files[0].name not in message  # the good files are not blamed
    assert not (dest / "toy_train").exists() or not any((dest / "toy_train").iterdir())


def test_install_from_refuses_a_copy_missing_a_file(tmp_path):
    item = synthetic_dataset(tmp_path / "copy")
    (tmp_path / "copy" / item.files[2].name).unlink()
    with pytest.raises(datasets.DatasetError, match=rf"{re.escape(item.files[2].name)}: not in"):
        datasets.install_from(item, tmp_path / "copy", tmp_path / "dest")
    with pytest.raises(datasets.DatasetError, match="no such directory"):
        datasets.install_from(item, tmp_path / "absent", tmp_path / "dest")


def test_install_from_finds_a_subfolder_and_aliases(tmp_path):
    """--from may name the folder above the dataset's (shared/data rather than shared/data/botan_T0.44_train),
    and a file may carry an alias (DeepMind's test_small.pickle is deepmind_test_small.pickle in shared/data)."""
    item = synthetic_dataset(tmp_path / "above" / "toy_train")
    first = item.files[0]
    renamed = dataclasses.replace(first, aliases=("renamed.npz",))
    item = dataclasses.replace(item, files=(renamed, *item.files[1:]))
    (tmp_path / "above" / "toy_train" / first.name).rename(tmp_path / "above" / "toy_train" / "renamed.npz")
    installed = datasets.install_from(item, tmp_path / "above", tmp_path / "dest")
    assert installed[0].name == first.name and datasets.sha256sum(installed[0]) == first.sha256


def test_download_takes_an_injected_registry(tmp_path):
    item = synthetic_dataset(tmp_path / "copy")
    installed = datasets.download("toy", dest=tmp_path / "dest", from_dir=tmp_path / "copy", registry={item.name: item})
    assert list(installed) == ["toy_train"] and len(installed["toy_train"]) == 3


def test_an_incomplete_install_names_the_download_command(tmp_path):
    item = synthetic_dataset(tmp_path / "copy")
    assert datasets.missing_message(item, tmp_path / "dest") == (
        f"is not installed in {tmp_path / 'dest' / 'toy_train'}; run: glasspipe download toy --dest {tmp_path / 'dest'}"
    )
    datasets.install_from(item, tmp_path / "copy", tmp_path / "dest")
    cut = tmp_path / "dest" / "toy_train" / item.files[2].name
    cut.write_bytes(cut.read_bytes()[:10])  # an interrupted copy by hand
    assert datasets.missing_files(item, tmp_path / "dest") == [item.files[2].name]
    with pytest.raises(datasets.DatasetError, match=r"incomplete.*1 of its 3 files.*run: glasspipe download toy"):
        datasets.installed_files(item, tmp_path / "dest")


def test_botan_from_a_copy_of_the_shared_files(tmp_path, dataset_cache, shared_botan_train):
    """The real BOTAN files: a copy verifies and installs into the cache; the same copy with one byte
    changed is refused, and nothing of it is installed."""
    item = datasets.DATASETS["botan_T0.44_train"]
    copy = tmp_path / "copy"
    shutil.copytree(shared_botan_train, copy)
    flip_one_byte(copy / "isoconfig_N4096T0.44_7_tc07.npz", offset=1_000_000)
    with pytest.raises(datasets.DatasetError, match=r"isoconfig_N4096T0.44_7_tc07\.npz: sha256 [0-9a-f]{64}, expected"):
        datasets.install_from(item, copy)
    assert not datasets.dataset_dir(item.name).exists() or not any(datasets.dataset_dir(item.name).iterdir())
    flip_one_byte(copy / "isoconfig_N4096T0.44_7_tc07.npz", offset=1_000_000)  # restored
    installed = datasets.install_from(item, copy)
    assert [p.parent for p in installed] == [dataset_cache / "datasets" / "botan_T0.44_train"] * 10
    assert datasets.missing_files(item) == []


# ----------------------------------------------------------------------------- online: pooch over loopback HTTP


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and honours 'Range: bytes=N-' (206), as GitHub's raw file host does; records the
    Range headers it received in the server's ``ranges`` list."""

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        header = self.headers.get("Range")
        self.server.ranges.append(header)
        path = Path(self.translate_path(self.path))
        if header is None or not path.is_file() or not self.server.honour_range:
            return super().do_GET()
        start = int(re.fullmatch(r"bytes=(\d+)-", header).group(1))
        data = path.read_bytes()
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def http_folder(tmp_path):
    """(folder, base URL, server): a loopback HTTP server for one test, serving ``folder``."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(folder)))
    server.ranges, server.honour_range = [], True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


def test_fetch_downloads_and_verifies_with_pooch(tmp_path, http_folder):
    folder, url, server = http_folder
    item = synthetic_dataset(folder, url=url)
    installed = datasets.fetch(item, tmp_path / "dest")
    assert [datasets.sha256sum(p) for p in installed] == [f.sha256 for f in item.files]
    assert sorted(p.name for p in (tmp_path / "dest" / "toy_train").iterdir()) == sorted(f.name for f in item.files)
    # Installed files are kept: a second run downloads nothing.
    requests_before = len(server.ranges)
    assert datasets.fetch(item, tmp_path / "dest") == installed
    assert len(server.ranges) == requests_before


def test_fetch_refuses_a_download_whose_checksum_differs(tmp_path, http_folder):
    folder, url, _ = http_folder
    item = synthetic_dataset(folder, url=url)
    flip_one_byte(folder / item.files[0].name)
    with pytest.raises(datasets.DatasetError, match=rf"{re.escape(item.files[0].url)} does not have the registered"):
        datasets.fetch(item, tmp_path / "dest")
    assert not any((tmp_path / "dest" / "toy_train").iterdir())  # neither the file nor a partial download


def test_fetch_resumes_an_interrupted_download(tmp_path, http_folder):
    """A partial file from an interrupted run is completed with a Range request, then verified."""
    folder, url, server = http_folder
    item = synthetic_dataset(folder, n=1, url=url)
    entry = item.files[0]
    dest = tmp_path / "dest" / "toy_train"
    dest.mkdir(parents=True)
    half = entry.size // 2
    (dest / f".{entry.name}.part").write_bytes((folder / entry.name).read_bytes()[:half])
    (installed,) = datasets.fetch(item, tmp_path / "dest")
    assert server.ranges == [f"bytes={half}-"]
    assert datasets.sha256sum(installed) == entry.sha256
    assert not (dest / f".{entry.name}.part").exists()


def test_fetch_starts_over_where_the_server_ignores_range(tmp_path, http_folder):
    folder, url, server = http_folder
    server.honour_range = False
    item = synthetic_dataset(folder, n=1, url=url)
    entry = item.files[0]
    dest = tmp_path / "dest" / "toy_train"
    dest.mkdir(parents=True)
    (dest / f".{entry.name}.part").write_bytes(b"stale bytes")
    (installed,) = datasets.fetch(item, tmp_path / "dest")
    assert datasets.sha256sum(installed) == entry.sha256


def test_fetch_offline_points_at_from(tmp_path):
    """No server: the message says to run the command again or to install a local copy with --from."""
    item = synthetic_dataset(tmp_path / "copy", n=1, url="http://127.0.0.1:9")  # port 9 (discard): refused
    with pytest.raises(datasets.DatasetError, match=r"could not download .*glasspipe download toy --from DIR"):
        datasets.fetch(item, tmp_path / "dest", retries=0)


# ----------------------------------------------------------------------------- the BOTAN config in Snakemake


def dry_run(workdir: Path, cache: Path) -> subprocess.CompletedProcess:
    """``snakemake -n`` with the BOTAN config and GLASSPIPE_CACHE = ``cache``."""
    return subprocess.run(
        [*SNAKEMAKE, "-n", "--directory", str(workdir), "--configfile", str(BOTAN_CONFIG)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GLASSPIPE_CACHE": str(cache)},
    )


def test_botan_config_without_its_data_names_the_download_command(tmp_path):
    """A fresh clone: Snakemake stops before any job with the one command that gets the data."""
    assert yaml.safe_load(BOTAN_CONFIG.read_text())["source"]["dataset"] == "botan_T0.44_train"
    result = dry_run(tmp_path / "work", tmp_path / "empty-cache")
    output = result.stdout + result.stderr  # Snakemake writes its error to either, depending on the version
    assert result.returncode != 0
    assert "run: glasspipe download botan" in output
    assert "Traceback" not in output


def test_botan_config_dry_runs_from_what_download_installed(tmp_path, shared_botan_train):
    from glasspipe.cli import main

    cache = tmp_path / "cache"
    assert main(["download", "botan", "--dest", str(cache / "datasets"), "--from", str(shared_botan_train)]) == 0
    result = dry_run(tmp_path / "work", cache)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dict(re.findall(r"^(import_source|structure)\s+(\d+)$", result.stdout, flags=re.M))
    assert jobs == {"import_source": "10", "structure": "10"}

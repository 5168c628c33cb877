"""The presets registry: resolution order (cache, package, mirrors), hash verification, and
downloads through a local HTTP server on 127.0.0.1 (good, tampered, server error, interrupted,
redirected; Ctrl-C and SIGTERM mid-download)."""

from __future__ import annotations

import http.client
import http.server
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from loczoo.bundle import load_bundle, resolve
from loczoo.errors import LoczooError
from loczoo.presets import sha256_of
from loczoo.registry import KNOWN_ENTRIES, get_entry

SHIPPED = get_entry("deep_storm").presets["sim-dense-100nm"]
PAYLOAD = SHIPPED.shipped_path.read_bytes()


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at every path, or misbehaves as ``server.mode`` says."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        mode = self.server.mode
        self.server.requests.append(self.path)
        if mode == "error":
            self.send_error(500, "broken mirror")
            return
        if mode == "redirect":  # to server.location + the same path
            self.send_response(302)
            self.send_header("Location", self.server.location + self.path.removeprefix("/zoo"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = bytearray(PAYLOAD)
        if mode == "tampered":
            body[len(body) // 2] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        # "interrupted": the connection drops halfway through the announced length
        self.wfile.write(bytes(body[: len(body) // 2] if mode == "interrupted" else body))

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror():
    """Start a mirror server; ``mirror(mode)`` returns its base URL."""
    servers = []

    def start(mode: str = "good", location: str = "") -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
        server.mode, server.requests, server.location = mode, [], location
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/zoo"

    start.servers = servers
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def not_shipped(monkeypatch, tmp_path):
    """The Deep-STORM default preset under a name with no copy in the package, an empty user
    cache in tmp_path, and no mirrors set."""
    monkeypatch.setenv("LOCZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LOCZOO_MIRRORS", raising=False)
    preset = replace(SHIPPED, name="download-test")
    assert not preset.shipped_path.exists()
    monkeypatch.setitem(get_entry("deep_storm").presets, preset.name, preset)
    return preset


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_every_preset_declares_weights_config_and_provenance():
    for name in KNOWN_ENTRIES:
        entry = get_entry(name)
        for preset in entry.presets.values():
            assert preset.weights.size == preset.shipped_path.stat().st_size
            assert sha256_of(preset.shipped_path) == preset.weights.sha256
            config = preset.build_config()
            for key, value in preset.postprocess.items():
                assert getattr(config, key) == value
            meta = preset.metadata()
            assert meta["entry"] == name and meta["weights_storage"]["dtype"] == "float16"
            # float16 storage moved no output by more than 1.5 % of the largest one
            assert meta["weights_storage"]["relative_change"] < 0.015
            assert preset.license and preset.citation and preset.training


def test_download_from_mirror_into_cache_then_cached(mirror, not_shipped, monkeypatch):
    url = mirror("good")
    monkeypatch.setenv("LOCZOO_MIRRORS", url)
    assert not_shipped.availability() == "download"
    bundle = load_bundle("deep_storm/download-test")
    assert bundle.weights_file == not_shipped.cache_path
    assert sha256_of(not_shipped.cache_path) == SHIPPED.weights.sha256
    assert mirror.servers[0].requests == ["/zoo/deep_storm/download-test/model.weights.h5"]
    assert leftovers(not_shipped.cache_path.parent) == ["model.weights.h5"]
    assert not_shipped.availability() == "cached"
    # Second use: from the cache, no request; same model as the shipped preset.
    again = resolve("deep_storm/download-test")
    assert again.weights == not_shipped.cache_path and len(mirror.servers[0].requests) == 1
    frames = np.random.default_rng(0).poisson(120, (1, 32, 32)).astype(np.float32)
    _, ours = next(bundle.predict_batches(frames))
    _, shipped = next(load_bundle("deep_storm").predict_batches(frames))
    np.testing.assert_array_equal(ours, shipped)


@pytest.mark.parametrize("mode, message", [("tampered", "sha256"),
                                           ("error", "HTTP 500"),
                                           ("interrupted", "IncompleteRead|ended after")])
def test_bad_download_is_refused_and_not_kept(mirror, not_shipped, monkeypatch, mode, message):
    monkeypatch.setenv("LOCZOO_MIRRORS", mirror(mode))
    with pytest.raises(LoczooError, match=message):
        resolve("deep_storm/download-test")
    assert leftovers(not_shipped.cache_path.parent.parent.parent) == []


def test_next_mirror_is_tried_after_a_failing_one(mirror, not_shipped, monkeypatch):
    monkeypatch.setenv("LOCZOO_MIRRORS", f"{mirror('error')}, {mirror('good')}")
    assert resolve("deep_storm/download-test").weights == not_shipped.cache_path
    assert [len(s.requests) for s in mirror.servers] == [1, 1]


def test_tampered_cache_is_deleted_and_the_shipped_copy_used(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCZOO_HOME", str(tmp_path))
    cached = SHIPPED.cache_path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD[:-1] + b"x")
    assert resolve("deep_storm").weights == SHIPPED.shipped_path
    assert not cached.exists()


def test_no_verified_copy_names_every_problem(not_shipped, monkeypatch):
    with pytest.raises(LoczooError, match="no download mirror is set"):
        resolve("deep_storm/download-test")
    tampered = replace(SHIPPED, weights=replace(SHIPPED.weights, sha256="0" * 64))
    monkeypatch.setitem(get_entry("deep_storm").presets, SHIPPED.name, tampered)
    with pytest.raises(LoczooError, match="shipped copy .* does not match its sha256"):
        load_bundle("deep_storm")


def test_only_https_file_or_local_http_mirrors(not_shipped, monkeypatch):
    monkeypatch.setenv("LOCZOO_MIRRORS", "http://example.org/zoo")
    with pytest.raises(LoczooError, match="mirrors must be https://"):
        resolve("deep_storm/download-test")


@pytest.mark.parametrize("target", ["http://example.invalid/zoo", "ftp://127.0.0.1/zoo",
                                    "file:///etc"])
def test_a_redirect_to_a_forbidden_url_is_refused(mirror, not_shipped, monkeypatch, target):
    """Every hop of a redirect chain obeys the mirror rules: here a local mirror redirects to
    a plain-http host elsewhere (or to ftp://, file://), directly or through a second local
    mirror."""
    direct = mirror("redirect", target)
    chained = mirror("redirect", mirror("redirect", target))
    for url in (direct, chained):
        monkeypatch.setenv("LOCZOO_MIRRORS", url)
        with pytest.raises(LoczooError, match=f"refusing the redirect from .* to {target}/"):
            resolve("deep_storm/download-test")
        assert leftovers(not_shipped.cache_path.parent.parent.parent) == []


def test_a_redirect_to_an_allowed_mirror_is_followed(mirror, not_shipped, monkeypatch):
    good = mirror("good")
    hop = mirror("redirect", good.replace("127.0.0.1", "localhost"))
    monkeypatch.setenv("LOCZOO_MIRRORS", mirror("redirect", hop))
    assert resolve("deep_storm/download-test").weights == not_shipped.cache_path
    assert [len(s.requests) for s in mirror.servers] == [1, 1, 1]
    assert leftovers(not_shipped.cache_path.parent) == ["model.weights.h5"]


@pytest.fixture
def interrupted_read(monkeypatch):
    """HTTP responses that give their first block, then ``interrupt()`` on the next read."""
    real_read = http.client.HTTPResponse.read

    def install(interrupt):
        calls = []

        def read(self, *args):
            calls.append(1)
            if len(calls) == 2:
                interrupt()
            return real_read(self, *args)

        monkeypatch.setattr(http.client.HTTPResponse, "read", read)
        return calls

    return install


def test_ctrl_c_mid_download_leaves_no_temporary_file(mirror, not_shipped, monkeypatch,
                                                      interrupted_read):
    monkeypatch.setenv("LOCZOO_MIRRORS", mirror("good"))

    def ctrl_c():
        raise KeyboardInterrupt

    calls = interrupted_read(ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        resolve("deep_storm/download-test")
    assert len(calls) == 2
    assert leftovers(not_shipped.cache_path.parent.parent.parent) == []


def test_sigterm_mid_download_leaves_no_temporary_file(mirror, not_shipped, monkeypatch,
                                                       interrupted_read, run_cli, tmp_path):
    """``loczoo localize`` killed (SIGTERM) while downloading its model: exit code 130, no
    ``.tmpPID.*`` file in the cache, no output."""
    import tifffile

    monkeypatch.setenv("LOCZOO_MIRRORS", mirror("good"))
    tifffile.imwrite(tmp_path / "stack.tif", np.full((1, 16, 16), 100, np.uint16))

    def sigterm():
        # run_tool turns SIGTERM into KeyboardInterrupt; without that handler the signal would
        # end the test run, so refuse to send it.
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler), "no SIGTERM handler installed by the CLI"
        os.kill(os.getpid(), signal.SIGTERM)

    calls = interrupted_read(sigterm)
    code, _, err = run_cli("localize", tmp_path / "stack.tif", "--out", tmp_path / "locs.csv",
                           "--model", "deep_storm/download-test")
    assert code == 130 and "interrupted" in err, err
    assert len(calls) >= 2
    assert leftovers(not_shipped.cache_path.parent.parent.parent) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "stack.tif"]


def test_mirror_tool_writes_a_file_mirror_that_resolves(run_cli, not_shipped, tmp_path,
                                                        monkeypatch):
    out = tmp_path / "mirror"
    code, stdout, _ = run_cli("mirror", out, "--presets", "deep_storm/sim-dense-100nm")
    assert code == 0, stdout
    served = out / "deep_storm" / "sim-dense-100nm" / "model.weights.h5"
    assert served.read_bytes() == PAYLOAD
    # The mirror as file:// for a preset that is neither cached nor shipped.
    (out / "deep_storm" / "download-test").mkdir()
    served.rename(out / "deep_storm" / "download-test" / "model.weights.h5")
    monkeypatch.setenv("LOCZOO_MIRRORS", out.resolve().as_uri())
    assert resolve("deep_storm/download-test").weights == not_shipped.cache_path
    code, stdout, _ = run_cli("list")
    assert code == 0
    assert "deep_storm/download-test: 2.8 MB, cached" in stdout
    assert "deep_storm/sim-dense-100nm (default): 2.8 MB, shipped in the package" in stdout


def test_preset_declaration_matches_make_preset(run_cli, tmp_path):
    """make-preset on a run folder written from the shipped preset gives back the registry's
    overrides and post-processing."""
    from loczoo import runfolder
    from loczoo.config import save_json

    bundle = load_bundle("deep_storm")
    run = tmp_path / "run"
    run.mkdir()
    save_json(bundle.config, run / runfolder.CONFIG)
    runfolder.save_weights(bundle.model, run / runfolder.WEIGHTS)
    runfolder.write_metadata(run, entry="deep_storm", parameters=bundle.model.count_params(),
                             metadata=bundle.metadata)
    code, stdout, stderr = run_cli("make-preset", run, "--name", "again",
                                    "--out", tmp_path / "preset")
    assert code == 0, stderr
    assert f"overrides={SHIPPED.overrides!r}" in stdout
    assert f"postprocess={dict(SHIPPED.postprocess)!r}" in stdout
    assert "float16 storage changes the outputs by at most" in stdout
    # float16 of weights that came from float16: the same values as shipped
    again = bundle.entry.build_model(bundle.config)
    again.load_weights(tmp_path / "preset" / "model.weights.h5")
    for ours, shipped in zip(again.get_weights(), bundle.model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, shipped)



def test_model_cards_ship_and_travel_with_exports():
    from loczoo.export.common import load_source, model_card

    for name in KNOWN_ENTRIES:
        for preset in get_entry(name).presets.values():
            card = (preset.package_folder / "MODEL_CARD.md").read_text()
            assert card.startswith(f"# Model card: {preset.id}")
            assert preset.weights.sha256 in card
            if get_entry(name).task == "localization":
                assert "| nairr_HD |" in card and "| deepstorm_demo1 |" in card
    exported = model_card(load_source("deep_storm"), "tflite", {})
    assert "## Model card: deep_storm/sim-dense-100nm" in exported
    assert "### Measured on ../shared/data" in exported

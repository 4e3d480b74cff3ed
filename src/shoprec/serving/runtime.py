"""The live model and how it is replaced without dropping a request.

:class:`Runtime` holds the version being served as one immutable :class:`Live` (the search
service, the recommender, their bundle). :meth:`Runtime.load` builds a new version *beside*
the current one (verifying its signature and checksums and decrypting it, see
:func:`~shoprec.models.bundle.load_bundle`), then switches with a single reference
assignment. Requests take a :meth:`Runtime.lease` on the version current when they start
and finish on it; the old version is *drained* (its leases reach zero, or
``drain_timeout_s`` passes) and then released. A load that fails leaves the current version
serving; the refusal is logged and audited.

With a registry configured, :meth:`Runtime.poll_registry` loads the registry's current
version when its pointer moves (a promotion or a rollback) through the same swap. It reads
only the pointer (:mod:`shoprec.registry_pointer`), never the registry package.
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoprec.errors import ArtifactRefusedError, NotReadyError
from shoprec.models.bundle import Bundle, Trust, load_bundle
from shoprec.registry_pointer import current_artifacts
from shoprec.security.audit import AuditLog
from shoprec.serving.recommend import RecommendService
from shoprec.serving.search import SearchService
from shoprec.settings import Settings
from shoprec.types import ModelCounts

log = logging.getLogger(__name__)

Services = tuple[SearchService, RecommendService | None]
BuildServices = Callable[[Bundle], Services]
LoadBundle = Callable[[Path], Bundle]
# the codes of the errors that say a signature did not check out (security/crypto.py)
SIGNATURE_ERROR_CODES = frozenset({"signature_error", "unsigned", "untrusted_signer", "bad_signature"})


@dataclass(eq=False)
class Live:
    """One loaded version: what a request is served from, start to finish."""

    search: SearchService
    recommend: RecommendService | None
    loaded_at: float
    source: str
    registry_version: str | None = None
    inflight: int = field(default=0, compare=False)

    @property
    def bundle(self) -> Bundle:
        return self.search.bundle

    @property
    def version(self) -> str:
        return self.bundle.version

    def describe(self) -> dict[str, Any]:
        b = self.bundle
        return {
            "version": b.version,
            "model_id": b.model_id,
            "folder": str(b.folder),
            "source": self.source,
            "registry_version": self.registry_version,
            "loaded_at": self.loaded_at,
            "signed_by": (b.signer or {}).get("key_id"),
            "encrypted": b.read_root is not None,
            "products": len(b.catalog),
            "inflight": self.inflight,
        }


def trust_from_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> Trust | None:
    """The load policy the settings ask for; None only when every check was switched off."""
    if not settings.require_signature and not settings.verify_artifacts:
        return None
    from shoprec.security import crypto  # the one module that imports cryptography

    key: bytes | None = None
    if settings.data_key_file is not None:
        key = crypto.load_data_key(key_file=settings.data_key_file)
    else:
        env = os.environ if environ is None else environ
        if env.get(settings.data_key_env):
            key = crypto.load_data_key(env_var=settings.data_key_env, environ=env)
    return Trust(require_signature=settings.require_signature, trusted_keys=settings.trusted_keys, data_key=key)


class Runtime:
    """Holds the live version; see the module docstring.

    ``build`` turns a loaded bundle into its services (the app wires caches, events replay
    and the like there); ``on_retired`` is called (in the drain thread) with a replaced
    version once it is drained or its drain timed out; ``load_bundle`` defaults to
    :func:`load_bundle` with the trust policy of ``settings``. ``clock`` is wall time in seconds, for the record.
    """

    def __init__(
        self,
        settings: Settings,
        build: BuildServices,
        *,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        loader: LoadBundle | None = None,
        environ: Mapping[str, str] | None = None,
        on_retired: Callable[[Live], None] | None = None,
    ) -> None:
        self.settings = settings
        self.build = build
        self.audit = audit
        self.clock = clock
        self._loader = loader
        self._environ = environ
        self.on_retired = on_retired  # a replaced version was drained: stop what it started
        self._current: Live | None = None
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        self.load_error: str | None = None
        self._refused_registry: str | None = None
        # what the metrics read: versions switched in, swaps, refusals by error code, signature checks
        self.loads_total = 0
        self.swaps_total = 0
        self.refused_total: collections.Counter[str] = collections.Counter()
        self.signature_checks: collections.Counter[str] = collections.Counter()
        if not settings.require_signature:
            log.warning(
                "artifact signature verification is OFF (require_signature=false): any artifacts "
                "folder with matching checksums will be served, signed or not"
            )
        if not settings.verify_artifacts and not settings.require_signature:
            log.warning("artifact checksum verification is OFF (verify_artifacts=false)")

    # --- reading ------------------------------------------------------------------------------

    @property
    def current(self) -> Live | None:
        return self._current

    @contextmanager
    def lease(self) -> Iterator[Live | None]:
        """The version current now, held until the block ends (None when nothing is loaded)."""
        with self._cond:
            live = self._current
            if live is not None:
                live.inflight += 1
        try:
            yield live
        finally:
            if live is not None:
                with self._cond:
                    live.inflight -= 1
                    self._cond.notify_all()

    def counts(self) -> ModelCounts:
        """The version serving and the counts since start, for the metrics."""
        live = self._current
        return ModelCounts(
            version=live.version if live is not None else None,
            model_id=live.bundle.model_id if live is not None else None,
            loads=self.loads_total,
            swaps=self.swaps_total,
            refused=dict(self.refused_total),
            signature_checks=dict(self.signature_checks),
        )

    def require(self) -> Live:
        live = self._current
        if live is None:
            why = f" ({self.load_error})" if self.load_error else ""
            raise NotReadyError(f"artifacts are not loaded yet{why}")
        return live

    # --- switching ----------------------------------------------------------------------------

    def install(self, search: SearchService, recommend: RecommendService | None, *, source: str = "injected") -> Live:
        """Serve already-built services (tests, embedding); the old version is drained."""
        return self._swap(Live(search, recommend, self.clock(), source), actor="system")

    def _load_one(self, folder: Path) -> Bundle:
        if self._loader is not None:
            return self._loader(folder)
        trust = trust_from_settings(self.settings, self._environ)
        return load_bundle(folder, check=self.settings.verify_artifacts, threads=self.settings.threads, trust=trust)

    def load(
        self,
        folder: Path | None = None,
        *,
        actor: str = "system",
        source: str = "settings",
        registry_version: str | None = None,
    ) -> Live:
        """Load ``folder`` (default: the configured artifacts) beside the current version,
        then switch to it. Raises :class:`ArtifactRefusedError` (the current version keeps
        serving) when it fails any check."""
        if folder is None:
            folder = self.settings.artifacts
        if folder is None:
            raise NotReadyError("no artifacts configured (set SHOPREC_ARTIFACTS or --artifacts)")
        folder = Path(folder)
        with self._load_lock:
            try:
                bundle = self._load_one(folder)
                search, recommend = self.build(bundle)
            except Exception as exc:
                current = self._current
                detail = f"{type(exc).__name__}: {exc}"
                reason = str(getattr(exc, "code", "unexpected_error"))
                self.refused_total[reason] += 1
                if reason in SIGNATURE_ERROR_CODES:
                    self.signature_checks["rejected"] += 1
                if current is None:
                    self.load_error = detail
                log.error("refused artifacts %s: %s", folder, detail)
                self._record(
                    "artifact.refused",
                    actor,
                    {
                        "folder": str(folder),
                        "error": getattr(exc, "code", type(exc).__name__),
                        "detail": str(exc),
                        "serving": current.version if current else None,
                    },
                )
                keeps = f"; version {current.version} keeps serving" if current else ""
                raise ArtifactRefusedError(f"refused {folder}: {exc}{keeps}") from exc
            live = Live(search, recommend, self.clock(), source, registry_version)
            return self._swap(live, actor=actor)

    def _swap(self, live: Live, *, actor: str) -> Live:
        # The catalog, indexes and vocabularies are millions of long-lived objects: keep them out
        # of the cyclic collector's full passes, which otherwise stall requests for tens of ms.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        with self._cond:
            old = self._current
            self._current = live
        self.load_error = None
        b = live.bundle
        self.loads_total += 1
        self.swaps_total += old is not None and old is not live
        if b.signer is not None:
            self.signature_checks["verified"] += 1
        log.info("serving version %s (%s) from %s", b.version, b.model_id, b.folder)
        self._record(
            "model.load",
            actor,
            {
                "version": b.version,
                "model_id": b.model_id,
                "folder": str(b.folder),
                "source": live.source,
                "registry_version": live.registry_version,
                "signed_by": (b.signer or {}).get("key_id"),
                "encrypted": b.read_root is not None,
                "previous": old.version if old else None,
            },
        )
        if old is not None and old is not live:
            threading.Thread(target=self._drain, args=(old,), name="shoprec-drain", daemon=True).start()
        return live

    def wait_drained(self, live: Live, timeout_s: float) -> bool:
        """Wait until no request holds ``live``; False if ``timeout_s`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: live.inflight == 0, timeout=timeout_s)

    def _drain(self, old: Live) -> None:
        drained = self.wait_drained(old, self.settings.drain_timeout_s)
        if drained:
            log.info("version %s drained", old.version)
        else:
            log.warning(
                "version %s still had %d requests after %.0f s",
                old.version,
                old.inflight,
                self.settings.drain_timeout_s,
            )
        if self.on_retired is not None:
            try:
                self.on_retired(old)
            except Exception:  # the new version serves on; the failure is loud in the log
                log.exception("could not stop what version %s started", old.version)
        view = old.bundle.extras.get("plain_view")
        if drained and view is not None:
            view.close()

    # --- the registry -------------------------------------------------------------------------

    def poll_registry(self) -> Live | None:
        """Load the registry's current version if it is not the one serving; None if nothing changed.

        A version that is refused is audited once and not retried until the pointer moves.
        """
        root = self.settings.registry
        if root is None:
            return None
        found = current_artifacts(root)
        if found is None:
            return None
        folder, version = found
        current = self._current
        if current is not None and current.registry_version == version:
            return None
        if version == self._refused_registry:
            return None
        try:
            return self.load(folder, actor="registry", source="registry", registry_version=version)
        except ArtifactRefusedError:
            self._refused_registry = version
            return None

    def load_at_start(self) -> None:
        """Load what the settings name: the registry's current version, else the configured
        artifacts. A failure is kept in :attr:`load_error` (``/readyz`` and every request
        report it) and logged; the process stays up."""
        try:
            if self.settings.registry is not None:
                self.poll_registry()
                if self._current is not None or self.settings.artifacts is None:
                    return
            self.load(actor="system", source="settings")
        except Exception as exc:
            self.load_error = self.load_error or str(exc)
            log.error("could not load artifacts: %s", exc)

    def run_registry_poller(self, stop: threading.Event) -> None:
        """Poll the registry every ``registry_poll_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.poll_registry()
            except Exception:  # the poller must outlive a bad pointer; the next poll retries
                log.exception("registry poll failed")
            stop.wait(self.settings.registry_poll_s)

    # --- audit --------------------------------------------------------------------------------

    def _record(self, action: str, actor: str, details: Mapping[str, Any]) -> None:
        if self.audit is None:
            return
        try:
            self.audit.append(action, actor, details)
        except Exception:  # serving goes on; the failure is loud in the log
            log.exception("could not append %s to the audit log", action)

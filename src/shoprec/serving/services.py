"""The services of one loaded version: search and recommendations over a verified bundle,
with the events posted so far replayed and one query through every stage before it serves."""

from __future__ import annotations

from typing import Protocol

from shoprec.catalog.loaders import read_synonyms
from shoprec.models.bundle import Bundle
from shoprec.models.users import SharedProfiles
from shoprec.serving.recommend import NearlineReader, RecommendService
from shoprec.serving.search import SearchService
from shoprec.settings import Settings
from shoprec.types import EventSink


class NearlineState(NearlineReader, SharedProfiles, Protocol):
    """The shared near-line state as the services read it (``adapters.nearline.NearlineStore``)."""


def replay_posted_events(events: EventSink, search: SearchService, recommend: RecommendService | None) -> None:
    """Events posted before a restart (or a reload) are reflected after it: feed the stored
    log back in. A sink that cannot be read back has nothing to replay."""
    read = getattr(events, "read", None)
    if read is None:
        return
    posted = list(read())
    search.users.add(posted)
    search.queries.add(posted)
    if recommend is not None:
        recommend.add(posted)


def build_services(
    settings: Settings, events: EventSink, bundle: Bundle, nearline: NearlineState | None = None
) -> tuple[SearchService, RecommendService | None]:
    """The services over one loaded (verified) bundle, with posted events replayed and warmed up.
    With ``nearline`` (the shared state of the event stream) recommendations and personal
    search profiles read it."""
    service = SearchService(
        bundle,
        lexical_candidates=settings.lexical_candidates,
        dense_candidates=settings.dense_candidates,
        ef_search=settings.ef_search,
        shared_profiles=nearline,
        synonyms=read_synonyms(settings.synonyms_file) if settings.synonyms_file is not None else None,
    )
    recommend = RecommendService.load(bundle.files_root, bundle.catalog, threads=settings.threads, nearline=nearline)
    if recommend is not None:
        recommend.add(sorted(bundle.user_events, key=lambda e: e.timestamp), update_models=False)
    replay_posted_events(events, service, recommend)
    # One query through every stage before the version takes traffic, so the first shoppers do
    # not pay for lazy initialisation and page faults; a version that cannot answer fails here.
    if bundle.catalog.products:
        query = " ".join(bundle.catalog.products[0].title.split()[:3]) or "a"
        service.search(query, k=10)
        service.search(query, k=10, pipeline="bm25")  # the ladder's cheapest level has its own path
        service.suggester.suggest(query[:4], 5)  # the lexicon and the prefix arrays
    return service, recommend

"""Per-session analysis (no layout, no maths): one ``engine.analysis.Analysis`` per session.

The session's ``SessionStore`` (in ``st.session_state``) holds its ``Analysis``: the data
(the analyst's upload, a saved analysis, or the starting dataset) with the current
settings. The Model and Bias audit pages change the settings, which makes a new
``Analysis`` that keeps every stage the change does not touch; every page reads the same
object, so a report can only pair an audit with the model and evaluation it was computed
from. The starting analysis (the bundled synthetic sample, or the saved analysis named by
``streamlit run dashboard/app.py -- --analysis DIR``) holds no analyst's data and is
shared by all sessions: its stages are computed once per server.

Work is kept across a refresh: once a session uploads data or computes a stage, it is
saved under the session's token (``dashboard.sessions``), which the URL carries as
``?session=TOKEN``; a new browser session with that URL restores it. ``dashboard.janitor``
releases the in-memory stores of closed sessions.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import streamlit as st

from dashboard import janitor, sessions
from engine import (
    AuditConfig,
    AuditResult,
    DatasetProfile,
    EngineError,
    Evaluation,
    RatingData,
    TrainedModel,
    dataset_profile,
    load_dataset,
)
from engine.analysis import Analysis, AnalysisSettings
from engine.explain import factor_labels, item_titles
from engine.external import (
    ExternalSystem,
    HeldOut,
    SystemsComparison,
    compare_systems,
    merge_systems,
    temporal_heldout,
    with_pairs,
)
from engine.model.svd import Progress
from engine.report import Report, render
from engine.report.update_section import update_origin, with_update
from engine.report.write import zip_files
from engine.saved import open_analysis, read_saved, save_analysis, zip_analysis
from engine.saved.kept import SavedKeptRun, is_kept, open_kept
from engine.saved.systems import SavedSystems
from engine.update import UpdateRecord
from engine.whatif import before_vector, full_ranking

if TYPE_CHECKING:  # the monitor trains models: the Over time page imports it
    from engine.monitor import Monitoring

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
T = TypeVar("T")
_LOGGER = logging.getLogger(__name__)


def _server_arguments(argv: list[str]) -> argparse.Namespace:
    """Arguments after ``--`` in ``streamlit run dashboard/app.py -- --analysis DIR``."""
    parser = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False)
    parser.add_argument("--analysis", type=Path, default=None)
    known, _ = parser.parse_known_args(argv)
    return known


@st.cache_resource(show_spinner="Opening the starting dataset...")
def starting_analysis() -> Analysis:
    """Return the analysis every new session starts from (shared: it holds no analyst's data).

    The saved analysis named by ``--analysis DIR`` when the server was started with one
    (not a run kept in Spark: ``starting_kept_run``), else the bundled synthetic sample with
    default settings.
    """
    folder = _server_arguments(sys.argv[1:]).analysis
    if folder is not None and not is_kept(folder):
        return open_analysis(folder)
    return Analysis(load_dataset(SAMPLE_DIR))


@st.cache_resource(show_spinner="Opening the run kept in Spark...")
def starting_kept_run() -> SavedKeptRun | None:
    """Return the run kept in Spark named by ``--analysis OUT``, else ``None`` (shared).

    A run kept in Spark (``engine.saved.kept``) holds its report's parts and audit, not the
    ratings: sessions start on its read-only pages (``dashboard.routes.KEPT_PAGES``).
    """
    folder = _server_arguments(sys.argv[1:]).analysis
    return open_kept(folder) if folder is not None and is_kept(folder) else None


@dataclass
class SessionStore:
    """One browser session's analysis (``None``: the starting one), token and extras."""

    analysis: Analysis | None = None
    token: str | None = None
    notice: str | None = None
    extras: dict[tuple, Any] = field(default_factory=dict)
    #: The run kept in Spark this session reads (``kept_run``), and whether it left the
    #: server's starting one for the analysis.
    kept: SavedKeptRun | None = None
    left_kept: bool = False

    def release(self) -> None:
        """Drop the analysis and every result (the janitor calls this for closed sessions)."""
        self.analysis, self.extras, self.kept = None, {}, None


def _store() -> SessionStore:
    store = st.session_state.get("store")
    if store is None:
        store = st.session_state["store"] = SessionStore()
        _restore(store)
    janitor.track(store)
    return store


def _restore(store: SessionStore) -> None:
    """Take back the work saved under the URL's ``session`` token, if any."""
    token = st.query_params.get("session")
    if token is None:
        return
    if not sessions.is_token(token):
        store.notice = "The link's session id is not valid, so nothing was restored."
        del st.query_params["session"]
        return
    limits = sessions.SessionLimits.from_environment()
    try:
        saved = sessions.restore_saved(token, limits)
    except EngineError as error:
        store.notice = f"The work saved for this link could not be opened: {error}"
        saved = None
    restored = None if saved is None else saved.analysis
    if saved is not None and saved.systems is not None:  # the analyst's own systems
        _adopt_systems(store, saved.systems)
    kept = _restore_kept_run(store, token, limits)
    if restored is None and kept:
        store.token = token
        return
    if restored is None:
        store.notice = store.notice or (
            "No work is saved for this link any more (work is "
            f"{limits.describe()}); you start again from the sample."
        )
        del st.query_params["session"]
        return
    store.analysis, store.token = restored, token


def _restore_kept_run(store: SessionStore, token: str, limits: sessions.SessionLimits) -> bool:
    """Take back the run kept in Spark the session had open; return whether there was one."""
    found = sessions.restore_kept_run(token, limits)
    if found is None:
        return False
    archive, name = found
    try:
        store.kept = replace(open_kept(archive), path=Path(name))
    except EngineError as error:
        store.notice = f"The run kept in Spark saved for this link could not be opened: {error}"
        return False
    return True


def _adopt_systems(store: SessionStore, kept: SavedSystems) -> None:
    """Take back the systems kept with the work (and their held-out file, if one was chosen)."""
    store.extras[("external",)] = list(kept.systems)
    if kept.heldout.source == "file":
        store.extras[("heldout",)] = kept.heldout


def keep_session_in_url() -> None:
    """Put the session's token back in the URL (page navigation clears query parameters)."""
    token = _store().token
    if token is not None and st.query_params.get("session") != token:
        st.query_params["session"] = token


def notice() -> str | None:
    """Return a sentence about restoring this session's work to show once, else ``None``."""
    store = _store()
    text, store.notice = store.notice, None
    return text


def analysis() -> Analysis:
    """Return the session's analysis: its data with the current settings."""
    return _store().analysis or starting_analysis()


def current_data() -> RatingData:
    """Return the session's dataset: the analyst's upload, else the starting dataset."""
    return analysis().data


def has_upload() -> bool:
    """Whether the session works on its own data rather than the starting dataset."""
    current = _store().analysis
    return current is not None and current.data is not starting_analysis().data


def has_saved_work() -> bool:
    """Whether this session keeps work on the server (it has a token)."""
    return _store().token is not None


def set_data(data: RatingData | None) -> None:
    """Make ``data`` (``None``: the starting dataset) the session's; keep the settings."""
    store = _store()
    start = starting_analysis()
    if data is None:
        store.analysis = start.with_settings(analysis().settings)
        if store.analysis is start:
            store.analysis = None
    else:
        store.analysis = Analysis(data, analysis().settings)
    store.extras = {}
    _save(store)


def kept_run() -> SavedKeptRun | None:
    """Return the run kept in Spark the session reads (its pages are read-only), else ``None``.

    One opened on the Data page (``open_kept_run``), else the server's starting one
    (``starting_kept_run``) unless the session left it (``leave_kept_run``).
    """
    store = _store()
    if store.kept is not None or store.left_kept or store.analysis is not None:
        return store.kept
    return starting_kept_run()


def open_kept_run(path: str | Path, name: str) -> SavedKeptRun:
    """Open the zip of a run kept in Spark for this session, and keep it across a refresh.

    ``name``: what the pages call it (the upload's file name). Kept under the session's
    token (``sessions.save_kept_run``), beside its analysis; over the size cap it is opened
    but not kept, and the page says so.
    """
    store = _store()
    store.kept = replace(open_kept(path), path=Path(name))
    limits = sessions.SessionLimits.from_environment()
    store.token = store.token or sessions.new_token()
    try:
        sessions.save_kept_run(store.token, Path(path), name, limits)
    except (sessions.SessionTooLarge, OSError) as error:
        store.notice = (
            str(error) if isinstance(error, sessions.SessionTooLarge)
            else f"This run could not be kept on the server ({error}): a refresh will lose it."
        )  # fmt: skip
        if not sessions.folder_of(store.token, limits).exists():
            store.token = None  # nothing else of this session is kept either
            return store.kept
    keep_session_in_url()
    return store.kept


def leave_kept_run() -> None:
    """Close the run kept in Spark: the session is back on its analysis (or the sample)."""
    store = _store()
    store.kept, store.left_kept = None, True
    if store.token is None:
        return
    limits = sessions.SessionLimits.from_environment()
    sessions.forget_kept_run(store.token, limits)
    if not sessions.folder_of(store.token, limits).exists():  # nothing else was kept
        store.token = None
        if "session" in st.query_params:
            del st.query_params["session"]


def open_saved(path: str | Path) -> Analysis:
    """Open a saved analysis (folder or zip) as the session's analysis."""
    store = _store()
    saved = read_saved(path)  # open_analysis, with the analyst's own systems kept in it
    saved.analysis.notes.extend(saved.notes)
    store.analysis, store.extras = saved.analysis, {}
    if saved.systems is not None:
        _adopt_systems(store, saved.systems)
    store.notice = " ".join(store.analysis.notes) or None
    _save(store)
    return store.analysis


def adopt_update(updated: Analysis, record: UpdateRecord) -> None:
    """Make ``updated`` the session's analysis, so every page uses the updated model.

    ``updated`` and ``record`` come from ``engine.update.update_analysis`` of the session's
    analysis; the record is kept to show. Saved like any other work, so a refresh keeps the
    updated data and model (the record itself is shown until the data changes or the
    session ends).

    Raises
    ------
    EngineError
        The session's data changed while the update ran (it was not derived from it).
    """
    if record.source_fingerprint != current_data().fingerprint:
        raise EngineError("The dataset changed while the update ran: reload the page.")
    source = analysis()  # what the update came from: the report's "Model update" names it
    origin = update_origin(source.data.fingerprint, source.key("model"), record.to_dict())
    store = _store()
    store.analysis = updated
    store.extras = {("update record",): record, ("update origin",): origin}
    _save(store)


def last_update() -> UpdateRecord | None:
    """Return the record of the update that made the session's current data, else ``None``."""
    record = _store().extras.get(("update record",))
    if record is None or record.fingerprint != current_data().fingerprint:
        return None
    return record


def session_update_origin() -> dict[str, Any] | None:
    """``derived_from`` of the update that made the session's current data, else ``None``."""
    return _store().extras.get(("update origin",)) if last_update() is not None else None


def settings() -> AnalysisSettings:
    """Return the session's current settings."""
    return analysis().settings


def set_settings(new: AnalysisSettings) -> None:
    """Switch to ``new`` settings, keeping every stage they do not change."""
    store = _store()
    current = analysis()
    if new == current.settings:
        return
    start = starting_analysis()
    if current.data is start.data and new == start.settings:
        store.analysis = None
    else:
        store.analysis = current.with_settings(new)
        _save(store)


def _computed(compute: Callable[[Analysis], T]) -> T:
    """Compute a stage of the session's analysis, then save the session's work."""
    store = _store()
    current = analysis()
    before = current.computed()
    value = compute(current)
    if current.computed() != before:
        _save(store)
    return value


def _save(store: SessionStore) -> None:
    """Save the session's work under its token (creating one); never fails the page.

    Work that cannot be kept (over the size cap, a disk error) loses its token, so the URL
    never promises a restore that would not come; the page says why.
    """
    systems = store.extras.get(("external",), [])
    if store.analysis is None and not systems and store.token is None:
        return
    current = store.analysis or starting_analysis()  # systems uploaded on the sample
    limits = sessions.SessionLimits.from_environment()
    store.token = store.token or sessions.new_token()
    try:
        kept = sessions.kept_systems(current, systems, store.extras.get(("heldout",)))
        sessions.save_work(store.token, current, limits, kept)
    except (sessions.SessionTooLarge, OSError, EngineError) as error:
        if not isinstance(error, sessions.SessionTooLarge):
            _LOGGER.warning("could not keep the session's work: %s", error)
        store.notice = (
            str(error)
            if isinstance(error, sessions.SessionTooLarge)
            else f"This session's work could not be kept on the server ({error}): a refresh "
            "will lose it."
        )
        store.token = None
        if "session" in st.query_params:
            del st.query_params["session"]
        return
    keep_session_in_url()


def forget_my_data() -> bool:
    """Delete the session's saved work and uploads (a kept run's too); return whether any."""
    store = _store()
    existed = False
    if store.token is not None:
        existed = sessions.forget(store.token, sessions.SessionLimits.from_environment())
    store.analysis, store.token, store.extras, store.kept = None, None, {}, None
    if "session" in st.query_params:
        del st.query_params["session"]
    return existed


def trained_model(data: RatingData | None = None) -> TrainedModel:
    """Return the SVD of the session's analysis (trained once; ``data`` must be its data)."""
    _check_data(data)
    return _computed(lambda a: a.model)


def _check_data(data: RatingData | None) -> None:
    if data is not None and data is not current_data():
        raise EngineError("The dataset changed while the page was drawn: reload the page.")


def evaluation(progress: Progress | None = None) -> Evaluation:
    """Return the K-fold evaluation of the session's analysis (computed once)."""
    return _computed(lambda a: a.evaluation(progress=progress))


def has_evaluation() -> bool:
    """Whether the session's analysis has its evaluation."""
    return analysis().result("evaluation") is not None


def audit(progress: Progress | None = None) -> AuditResult:
    """Return the audit of the session's analysis (training and evaluating first if needed)."""
    return _computed(lambda a: a.audit(progress=progress))


def ranking_by_group() -> pd.DataFrame:
    """Each model's NDCG@k by user group: the session's report's (built once, then read)."""
    return _computed(lambda a: a.report()).ranking_by_group


def current_audit() -> tuple[AuditResult, RatingData] | None:
    """Return the audit of the current settings if it is computed, with its data."""
    current = analysis()
    result = current.result("audit")
    return None if result is None else (result, current.data)


def audit_settings(config: AuditConfig) -> None:
    """Use ``config`` for the audit (``k`` and threshold stay the shared ranking settings)."""
    set_settings(replace(settings(), audit=config))


def external_systems() -> list[ExternalSystem]:
    """Return the external systems uploaded for the session's data (Data page)."""
    return list(_store().extras.get(("external",), []))


def add_external(systems: list[ExternalSystem]) -> None:
    """Add uploaded systems: one name's lists and predictions join (``DataError`` on a clash)."""
    store = _store()
    store.extras[("external",)] = merge_systems(external_systems() + systems)
    store.extras.pop(("systems",), None)
    _save(store)  # kept across a refresh, like the rest of the work


def clear_external() -> None:
    """Forget the uploaded external systems, their held-out file and their side by side."""
    store = _store()
    for key in (("external",), ("heldout",), ("systems",)):
        store.extras.pop(key, None)
    _save(store)


def heldout_file() -> HeldOut | None:
    """Return the held-out ratings file chosen for the systems (Data page), else ``None``."""
    return _store().extras.get(("heldout",))


def set_heldout(heldout: HeldOut | None) -> None:
    """Judge the systems on ``heldout`` (``heldout_from_file``); ``None``: the temporal split."""
    store = _store()
    if heldout is None:
        store.extras.pop(("heldout",), None)
    else:
        store.extras[("heldout",)] = heldout
    store.extras.pop(("systems",), None)
    _save(store)


def systems_comparison(compute: bool = False) -> SystemsComparison | None:
    """Return the side by side of the uploaded systems (``compute``: make it if missing).

    Judged on the held-out file chosen on the Data page, else the temporal split of the
    session's data (``engine.external``), with the current model and audit settings; kept
    until the systems, held-out ratings or settings change.
    """
    current, systems, chosen = analysis(), external_systems(), heldout_file()
    key = (tuple(s.name for s in systems), current.key("audit"), id(chosen))
    held = _store().extras.get(("systems",))
    if held is not None and held[0] == key:
        return held[1]
    if not compute or not systems:
        return None
    heldout = chosen or temporal_heldout(current.data)
    model = current.model if heldout.source != "temporal" else None
    comparison = with_pairs(compare_systems(
        heldout, systems, model_config=current.settings.model,
        config=current.settings.audit, model=model,
    ))  # fmt: skip
    _store().extras[("systems",)] = (key, comparison)
    return comparison


def _memo(key: tuple, compute: Callable[[], T]) -> T:
    extras = _store().extras
    if key not in extras:
        extras[key] = compute()
    return extras[key]


def keep_monitoring(data: RatingData, window: str, result: Monitoring) -> None:
    """Keep the monitoring the Over time page computed for ``data`` (the latest one only)."""
    _store().extras[("monitoring",)] = (data.fingerprint, window, result)


def monitoring(window: str | None = None) -> Monitoring | None:
    """Return the kept monitoring of the session's current data (of ``window``), else ``None``."""
    kept = _store().extras.get(("monitoring",))
    if kept is None or kept[0] != current_data().fingerprint:
        return None
    return kept[2] if window is None or kept[1] == window else None


def report(sections: tuple[str, ...]) -> Report:
    """Return the report of the session's audit showing ``sections``.

    After an update on the Model page (``adopt_update``) it carries the "Model update"
    section, as ``python -m engine update --format`` does (``with_update``); after a run on
    the Over time page, the "Over time" section, as ``--over-time`` does (``monitoring``).
    A run kept in Spark (``kept_run``) gives the report it wrote, assembled again from its
    stored parts (``SavedKeptRun.report``).
    """
    run = kept_run()
    if run is not None:
        return run.report(sections)
    made = with_update(_computed(lambda a: a.report(sections)), session_update_origin())
    kept = monitoring()
    return made if kept is None else replace(made, monitoring=kept)


def report_files(sections: tuple[str, ...], formats: tuple[str, ...]) -> dict[str, bytes]:
    """``{file name: bytes}`` of the report in ``formats`` (rendered once per session)."""
    key = _report_key(sections, formats)
    return _memo(key, lambda: render(report(sections), formats))


def rendered_report_files(
    sections: tuple[str, ...], formats: tuple[str, ...]
) -> dict[str, bytes] | None:
    """Return what ``report_files`` already rendered for these arguments, else ``None``."""
    return _store().extras.get(_report_key(sections, formats))


def report_zip(sections: tuple[str, ...], files: dict[str, bytes]) -> bytes:
    """Return the zip of the rendered ``files`` (built once per session and file set)."""
    key = ("report zip", *_report_key(sections, tuple(files)))
    return _memo(key, lambda: zip_files(files))


def _report_key(sections: tuple[str, ...], formats: tuple[str, ...]) -> tuple:
    run = kept_run()
    if run is not None:
        return ("report files", "kept", run.key, sections, formats)
    kept = monitoring()  # the report changes with the monitoring it carries
    shown = None if kept is None else id(kept)
    return ("report files", analysis().key("audit"), sections, formats, shown)


def analysis_zip() -> bytes:
    """Return the session's whole analysis as a zip (the Data page and the CLI open it)."""
    current, systems, held = analysis(), external_systems(), heldout_file()
    key = ("analysis zip", *(current.key(s) for s in current.computed()),
           tuple(id(s) for s in systems), id(held))  # fmt: skip
    return _memo(key, lambda: _zip_of(current, sessions.kept_systems(current, systems, held)))


def _zip_of(current: Analysis, systems: SavedSystems | None = None) -> bytes:
    """Zip of ``current`` saved with the analyst's own systems (``report DIR`` shows them)."""
    with tempfile.TemporaryDirectory(prefix="analysis-") as folder:
        return zip_analysis(save_analysis(current, Path(folder) / "analysis", systems=systems))


def profile(data: RatingData) -> DatasetProfile:
    """Return the dataset profile (once per session and dataset)."""
    return _memo(("profile", data.fingerprint), lambda: dataset_profile(data))


def labels(data: RatingData, model: TrainedModel) -> list[str]:
    """Return the factor labels of the session's model."""
    return _memo(
        ("labels", data.fingerprint, model.config),
        lambda: list(factor_labels(model, data.items, item_titles(data))["label"]),
    )


def user_ids() -> list[str]:
    """Return the sorted ids of the users the user pages show: the kept run's or the data's."""
    run = kept_run()
    if run is not None and run.users is not None:
        return run.users.user_ids.tolist()
    data = current_data()
    return _memo(("user ids", data.fingerprint),
                 lambda: sorted(data.ratings["user_id"].unique()))  # fmt: skip


def user_model(user_id: str) -> tuple[RatingData, TrainedModel]:
    """Return the data and model the user pages read for ``user_id``.

    The session's data and trained SVD; on a run kept in Spark, ``UserSide.data_for`` (the
    user's ratings, the attribute tables) and ``model_for`` (the final fit with the user's
    ratings), read once per user.
    """
    run = kept_run()
    if run is None or run.users is None:
        data = current_data()
        return data, trained_model(data)
    side = run.users
    return _memo(("kept user", run.key, user_id),
                 lambda: (side.data_for(user_id), side.model_for(user_id)))  # fmt: skip


def ranking_before_edit(user_id: str) -> pd.DataFrame:
    """Return the user's full ranking before any what-if edit (refolded once per user).

    ``engine.whatif.full_ranking`` of ``before_vector``: the same for every edit of this
    user with this model, so an edit only ranks the edited vector.
    """
    _, model = user_model(user_id)
    run = kept_run()
    key = analysis().key("model") if run is None else run.key
    user = int(model.interactions.user_index([user_id])[0])
    return _memo(
        ("whatif ranking before", key, user_id),
        lambda: full_ranking(model, before_vector(model, user), user_id),
    )

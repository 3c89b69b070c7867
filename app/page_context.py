"""The sidebar pickers (dataset, policy) and what every page needs from them, with empty states.

The entry script renders the sidebar once per run and stores a `Selection`; pages read it with
`current()` and stop with a helpful message, never a traceback, when something is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import streamlit as st

from dosewise.data_schemas import DosewiseError

from . import data_access as da
from .auth import Reviewer
from .settings import ENV_DATA_ROOT, AppSettings

_KEY = "dosewise_selection"


@dataclass
class Selection:
    """The sidebar's choices for this run."""

    settings: AppSettings
    reviewer: Reviewer
    datasets: list[da.DatasetRef] = field(default_factory=list)
    dataset: da.DatasetRef | None = None
    policies: list[da.PolicyRef] = field(default_factory=list)
    policy: da.PolicyRef | None = None
    registry_problem: str | None = None


def render_sidebar(settings: AppSettings, reviewer: Reviewer) -> Selection:
    """Dataset and policy pickers; the result is kept for the pages of this run."""
    root = str(settings.data_root)
    selection = Selection(settings=settings, reviewer=reviewer, datasets=da.find_datasets(root))
    policies, problem = da.find_policies(settings.tracking_uri, root)
    selection.policies, selection.registry_problem = policies, problem
    fits = {ref.name: da.fitting_policies(ref, policies, settings.tracking_uri) for ref in selection.datasets}
    with st.sidebar:
        st.subheader("Data")
        if selection.datasets:
            by_name = {ref.name: ref for ref in selection.datasets}
            names = list(by_name)
            picked = st.selectbox("Dataset", names, index=names.index(_default_dataset(selection, fits)),
                                  key="dataset_pick")
            selection.dataset = by_name.get(picked) if picked else None
        else:
            st.caption(f"No datasets under `{root}`.")
        if policies:
            fitting = fits.get(selection.dataset.name, []) if selection.dataset else list(policies)
            ordered = fitting + [ref for ref in policies if ref not in fitting]  # the ones that fit first
            by_label = {(ref.label if ref in fitting else f"{ref.label} (does not fit this dataset)"): ref
                        for ref in ordered}
            picked = st.selectbox("Policy (name, version, aliases)", list(by_label), key="policy_pick")
            selection.policy = by_label.get(picked) if picked else None
            if selection.dataset is not None and not fitting:
                st.caption(f"No policy fits `{selection.dataset.name}`: each needs state columns it lacks.")
        else:
            st.caption("No registered policy found.")
        if problem:
            st.caption(f"Registry: {problem}")
        st.caption(f"Data root: `{root}`")
    st.session_state[_KEY] = selection
    return selection


def _default_dataset(selection: Selection, fits: dict[str, list[da.PolicyRef]]) -> str:
    """The dataset the app opens on: the one the first registered policy (else the first policy)
    fits, so the first screen pairs a dataset with a policy that can run on it."""
    for policy in selection.policies:  # registered versions come first
        for ref in selection.datasets:
            if policy in fits[ref.name]:
                return ref.name
    return selection.datasets[0].name


def current() -> Selection:
    """The selection the entry script made in this run."""
    selection: Selection = st.session_state[_KEY]
    return selection


def stop_with(message: str, hint: str = "", kind: str = "info") -> NoReturn:
    """Show a message (and what to do) instead of the page, then stop the script."""
    text = f"{message}\n\n{hint}" if hint else message
    {"info": st.info, "warning": st.warning, "error": st.error}[kind](text)
    st.stop()
    raise RuntimeError("unreachable: st.stop() ends the script")  # pragma: no cover


@contextmanager
def errors_as_banner(what: str) -> Iterator[None]:
    """Turn a `DosewiseError` inside the block into a red banner with its hint, then stop."""
    try:
        yield
    except DosewiseError as exc:
        stop_with(f"Could not {what}: {exc.message}", exc.hint, kind="error")


def require_dataset(selection: Selection) -> da.Dataset:
    """The selected dataset, loaded; or a helpful empty state."""
    if selection.dataset is None:
        stop_with(
            f"No datasets found under `{selection.settings.data_root}`.",
            "Create one with `dosewise synth icu-sepsis --episodes 500 --out "
            f"{selection.settings.data_root}/icu_sepsis` (or `dosewise etl sepsis`), or start the "
            f"app with `--data-root` (env `{ENV_DATA_ROOT}`) pointing at your outputs.",
        )
    with errors_as_banner(f"load dataset `{selection.dataset.name}`"):
        return da.load_dataset(selection.dataset.path)


def optional_policy(selection: Selection, dataset: da.Dataset) -> Any | None:
    """The selected policy if one is registered and loads for this dataset; explains otherwise."""
    if selection.policy is None:
        st.info(
            "No registered policy yet, so only the clinicians' side is shown. Train and register one: "
            "`dosewise train --trajectories DIR` then `dosewise register --run RUN_ID --name sepsis-dosing`."
        )
        return None
    try:
        policy = da.load_policy(selection.policy, selection.settings.tracking_uri)
        da.check_features(policy, dataset)
    except DosewiseError as exc:
        st.error(f"Policy `{selection.policy.label}` cannot be used here: {exc.message} {exc.hint}")
        return None
    return policy


def require_policy(selection: Selection, dataset: da.Dataset) -> Any:
    """The selected policy, loaded and checked against the dataset; or a helpful stop."""
    policy = optional_policy(selection, dataset)
    if policy is None:
        st.stop()
    return policy


def _persistent_widget_value(widget_key: str, shared_key: str, default: Any) -> None:
    """Seed a page's widget from the value shared across pages (widget state is per page)."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = st.session_state.get(shared_key, default)


def stay_picker(dataset: da.Dataset, page: str, preferred: str | None = None) -> tuple[str, Any]:
    """Find a stay by its pseudonymous id (typed, or browsed); stops on an unknown id.

    `preferred` is the first stay shown when none was chosen yet (e.g. one with flagged bins).
    """
    ids = da.episode_ids(dataset)
    text_key, browse_key = f"stay_id_{page}", f"stay_browse_{page}"
    _persistent_widget_value(text_key, "chosen_stay", preferred if preferred in ids else ids[0])

    def _browse() -> None:
        st.session_state[text_key] = st.session_state[browse_key]

    left, right = st.columns([2, 1])
    typed = left.text_input("Stay id (pseudonymous)", key=text_key).strip()
    right.selectbox(f"…or browse {len(ids):,} stays", ids, index=None, key=browse_key, on_change=_browse,
                    placeholder="choose a stay")
    stay = da.stay(dataset, typed) if typed else None
    if stay is None:
        close = [i for i in ids if typed and typed.lower() in i.lower()][:5]
        stop_with(
            f"No stay with id `{typed}` in dataset `{dataset.ref.name}`.",
            ("Did you mean: " + ", ".join(f"`{i}`" for i in close)) if close
            else f"Ids look like `{ids[0]}`; browse them in the list on the right.",
            kind="warning",
        )
    st.session_state["chosen_stay"] = typed
    return typed, stay


def bin_picker(stay: Any, page: str) -> int:
    """Choose one bin (step) of the stay; the choice is shared by the timeline and review pages."""
    last = int(stay["step"].max())  # steps are 0..n-1 (TrajectorySchema)
    key = f"bin_{page}"
    shared = st.session_state.get("chosen_step")
    default = shared if isinstance(shared, int) and 0 <= shared <= last else 0
    if not isinstance(st.session_state.get(key), int) or not 0 <= st.session_state[key] <= last:
        st.session_state[key] = default
    if last == 0:
        step = 0
        st.caption("This stay has a single bin (step 0).")
    else:
        step = int(st.slider("Bin (step of the stay)", min_value=0, max_value=last, key=key))
    st.session_state["chosen_step"] = step
    return step


def report_for(selection: Selection, dataset: da.Dataset, policy: Any | None) -> da.LoadedReport | None:
    """The OPE report of the selected policy on this dataset, if one was written or logged."""
    if selection.policy is None:
        return None
    name = getattr(policy, "name", None)
    return da.find_report(str(selection.settings.data_root), dataset.ref.path, selection.policy,
                          selection.settings.tracking_uri, name)

"""The ICU-Sepsis MDP (Choudhary et al., NeurIPS 2024 Datasets & Benchmarks; PyPI `icu-sepsis`).

A 716-state, 25-action sepsis MDP estimated from real MIMIC-III sepsis stays with the AI
Clinician's state clusters and 5x5 fluid/vasopressor action grid. Its matrices are known, so
any policy's exact value (the survival probability) is computable: the ground truth that
training quality and off-policy estimates are checked against.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dosewise.data_schemas import BadInputError, ConfigError

STATE_DEATH, STATE_SURVIVAL, STATE_ABSORBING = 713, 714, 715
N_FEATURES = 47
FEATURE_NAMES = tuple(f"cluster_centre_{i:02d}" for i in range(N_FEATURES))


@dataclass(frozen=True)
class IcuSepsisMdp:
    """The MDP's matrices: transitions[s, a, s'], rewards[s, a, s'], initial[s], and more."""

    transitions: np.ndarray
    rewards: np.ndarray
    initial: np.ndarray
    clinician_policy: np.ndarray
    state_features: np.ndarray
    admissible: np.ndarray
    expected_reward: np.ndarray
    terminal_states: tuple[int, ...] = (STATE_DEATH, STATE_SURVIVAL, STATE_ABSORBING)

    @property
    def n_states(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.transitions.shape[1])

    @property
    def non_terminal(self) -> np.ndarray:
        """Indices of the states in which a decision is made (0..712)."""
        mask = np.ones(self.n_states, dtype=bool)
        mask[list(self.terminal_states)] = False
        return np.flatnonzero(mask)


def _assets() -> Path:
    """The `icu-sepsis` package's asset folder, found without importing it (it imports gym)."""
    spec = importlib.util.find_spec("icu_sepsis")
    if spec is None or not spec.submodule_search_locations:
        raise BadInputError(
            "The `icu-sepsis` package is not installed.", "Run `bash .ci/venv` to install Dosewise."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "envs" / "assets"


def _read_admissible(path: Path, n_states: int, n_actions: int) -> np.ndarray:
    lines = path.read_text().split("\n")
    counts = [int(v) for v in lines[0].split()]
    mask = np.zeros((n_states, n_actions), dtype=bool)
    for state, (n, line) in enumerate(zip(counts, lines[1:], strict=False)):
        actions = [int(v) for v in line.split()]
        if len(actions) != n:
            raise BadInputError(f"Corrupt {path.name} at state {state}.", "Reinstall icu-sepsis.")
        mask[state, actions] = True
    return mask


@functools.cache
def load_icu_sepsis_mdp() -> IcuSepsisMdp:
    """Load the MDP shipped with `icu-sepsis` (cached; arrays are read-only)."""
    assets = _assets()
    data = np.load(assets / "dynamics.npz")
    transitions = data["tx_mat"].astype(np.float64)
    clinician = data["expert_policy"].astype(np.float64)
    # Terminal rows carry no decision; give them a uniform row so every row is a distribution.
    empty = clinician.sum(axis=1) == 0
    clinician[empty] = 1.0 / clinician.shape[1]
    rewards = data["r_mat"].astype(np.float64)
    mdp = IcuSepsisMdp(
        transitions=transitions,
        rewards=rewards,
        expected_reward=np.einsum("sat,sat->sa", transitions, rewards),
        initial=data["d_0"].astype(np.float64),
        clinician_policy=clinician,
        state_features=data["state_cluster_centers"].astype(np.float64),
        admissible=_read_admissible(assets / "admissible_actions.txt", *clinician.shape),
    )
    for array in (mdp.transitions, mdp.rewards, mdp.initial, mdp.clinician_policy,
                  mdp.state_features, mdp.admissible, mdp.expected_reward):
        array.setflags(write=False)
    return mdp


def behaviour_policy_matrix(spec: str, mdp: IcuSepsisMdp | None = None) -> np.ndarray:
    """Action probabilities (716, 25) for `clinician`, `random` (uniform) or `epsilon:E`.

    `epsilon:E` mixes the clinicians' policy with the uniform one: (1 - E) * clin + E / 25.

    >>> behaviour_policy_matrix("epsilon:0.1").sum(axis=1).round(12).min()
    np.float64(1.0)
    """
    mdp = mdp or load_icu_sepsis_mdp()
    uniform = np.full_like(mdp.clinician_policy, 1.0 / mdp.n_actions)
    if spec == "clinician":
        return mdp.clinician_policy.copy()
    if spec == "random":
        return uniform
    if spec.startswith("epsilon:"):
        try:
            eps = float(spec.split(":", 1)[1])
        except ValueError:
            eps = -1.0
        if 0.0 <= eps <= 1.0:
            return (1.0 - eps) * mdp.clinician_policy + eps * uniform
    raise ConfigError(
        f"`behaviour` must be one of 'clinician', 'random' or 'epsilon:E' with E in [0, 1]. Got {spec!r}.",
        "For example: --behaviour epsilon:0.1",
    )


def _check_policy(probs: np.ndarray, mdp: IcuSepsisMdp) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    n_dec = len(mdp.non_terminal)
    if probs.shape == (n_dec, mdp.n_actions):
        full = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
        full[mdp.non_terminal] = probs
        probs = full
    if probs.shape != (mdp.n_states, mdp.n_actions):
        raise BadInputError(
            f"Action probabilities must have shape ({mdp.n_states}, {mdp.n_actions}) or "
            f"({n_dec}, {mdp.n_actions}). Got {probs.shape}.",
            "Pass one probability row per MDP state.",
        )
    rows = probs[mdp.non_terminal]
    if (rows < -1e-12).any() or not np.allclose(rows.sum(axis=1), 1.0, atol=1e-6):
        raise BadInputError("Action probabilities must be non-negative rows summing to 1.", "")
    return probs


def exact_state_values(
    action_probabilities: np.ndarray, mdp: IcuSepsisMdp | None = None, gamma: float = 1.0
) -> np.ndarray:
    """V^pi for every state by solving (I - gamma P_pi) V = r_pi on the decision states."""
    mdp = mdp or load_icu_sepsis_mdp()
    probs = _check_policy(action_probabilities, mdp)
    idx = mdp.non_terminal
    p_pi = np.einsum("sa,sat->st", probs[idx], mdp.transitions[idx])
    r_pi = np.einsum("sa,sa->s", probs[idx], mdp.expected_reward[idx])
    system = np.eye(len(idx)) - gamma * p_pi[:, idx]
    values = np.zeros(mdp.n_states)
    values[idx] = np.linalg.solve(system, r_pi)
    return values


def exact_policy_value(
    action_probabilities: np.ndarray, mdp: IcuSepsisMdp | None = None, gamma: float = 1.0
) -> float:
    """Expected return from the initial distribution; with gamma = 1 the survival probability.

    >>> round(exact_policy_value(load_icu_sepsis_mdp().clinician_policy), 3)
    0.782
    """
    mdp = mdp or load_icu_sepsis_mdp()
    return float(mdp.initial @ exact_state_values(action_probabilities, mdp, gamma))


def exact_q_values(
    action_probabilities: np.ndarray, mdp: IcuSepsisMdp | None = None, gamma: float = 1.0
) -> np.ndarray:
    """Q^pi(s, a) = sum_s' T(s, a, s') (r(s, a, s') + gamma V^pi(s')) for every state and action."""
    mdp = mdp or load_icu_sepsis_mdp()
    values = exact_state_values(action_probabilities, mdp, gamma)
    return np.asarray(mdp.expected_reward + gamma * (mdp.transitions @ values))


def optimal_policy(mdp: IcuSepsisMdp | None = None, gamma: float = 1.0, max_iter: int = 100) -> np.ndarray:
    """A deterministic optimal policy (one-hot rows) by policy iteration from the clinicians'."""
    if mdp is None:
        return _default_optimal_policy(gamma, max_iter).copy()
    return _policy_iteration(mdp, gamma, max_iter)


@functools.cache
def _default_optimal_policy(gamma: float, max_iter: int) -> np.ndarray:
    return _policy_iteration(load_icu_sepsis_mdp(), gamma, max_iter)


def _policy_iteration(mdp: IcuSepsisMdp, gamma: float, max_iter: int) -> np.ndarray:
    policy = mdp.clinician_policy.copy()
    for _ in range(max_iter):
        q = exact_q_values(policy, mdp, gamma)
        greedy = np.zeros_like(policy)
        greedy[np.arange(mdp.n_states), q.argmax(axis=1)] = 1.0
        if np.array_equal(greedy, policy):
            break
        policy = greedy
    return policy


def support_value_bounds(
    action_probabilities: np.ndarray, behaviour: np.ndarray, mdp: IcuSepsisMdp | None = None
) -> tuple[float, float]:
    """The range of exact values a policy can have over every MDP that the logged data cannot
    tell apart from this one: the same dynamics wherever `behaviour` acts, anything elsewhere.

    Off-support actions (behaviour probability 0 in a decision state) lead to death in the lower
    variant and to survival in the upper one; returns lie in [0, 1], so these are the extremes
    (Manski-style partial identification). Both variants generate exactly the data `behaviour`
    logs here, so no estimator can be nearer than half the width to the truth in both.
    """
    mdp = mdp or load_icu_sepsis_mdp()
    behaviour = np.asarray(behaviour, dtype=np.float64)
    if behaviour.shape != (mdp.n_states, mdp.n_actions):
        raise BadInputError(f"The behaviour matrix must have shape ({mdp.n_states}, {mdp.n_actions}); got "
                            f"{behaviour.shape}.", "Build it with behaviour_policy_matrix().")
    off = np.zeros_like(behaviour, dtype=bool)
    off[mdp.non_terminal] = behaviour[mdp.non_terminal] <= 0.0
    values = []
    for outcome, reward in ((STATE_DEATH, 0.0), (STATE_SURVIVAL, 1.0)):
        transitions, rewards = mdp.transitions.copy(), mdp.rewards.copy()
        transitions[off] = 0.0
        transitions[off, outcome] = 1.0
        rewards[off] = 0.0
        rewards[off, outcome] = reward
        variant = IcuSepsisMdp(transitions=transitions, rewards=rewards,
                               expected_reward=np.einsum("sat,sat->sa", transitions, rewards),
                               initial=mdp.initial, clinician_policy=mdp.clinician_policy,
                               state_features=mdp.state_features, admissible=mdp.admissible)
        values.append(exact_policy_value(action_probabilities, variant))
    return values[0], values[1]

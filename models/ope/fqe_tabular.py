"""Tabular FQE in closed form, with an episode bootstrap that refits on every resample.

Where the states repeat (a finite set of state-feature rows, as in the ICU-Sepsis MDP's 716 states),
least-squares FQE on one-hot (state, action) features is solved exactly, no gradient steps: with
such features the regression-based FQE of Le et al. 2019 ("Batch policy learning under
constraints") equals the model-based estimate on the empirical transition counts (Duan, Jia & Wang
2020, "Minimax-optimal off-policy evaluation with linear function approximation", Sec. 3), so
V = r_pi + gamma P_pi V is one sparse linear solve. A solve costs milliseconds, so the interval can
refit on each of a few hundred episode-bootstrap resamples of the fit data (bootstrapping FQE,
Hao et al. 2021, "Bootstrapping fitted Q-evaluation for off-policy inference", whose bootstrap is
distributionally consistent for tabular and linear FQE) instead of leaning on a handful of refits.

Pairs the fit data never show are handled in the open, never by a silent ridge zero:

- an action never logged in a state that was seen takes that state's pooled transitions over its
  logged actions (the one-hot-state feature alone: the clinicians' own mix in that state). This is
  an assumption; the report gives each target's expected steps on such pairs;
- a state never seen in the fit data has no value at all: it is solved twice, valued at the low and
  at the high end of the return range (partial identification), and the interval spans both.

With gamma = 1 an empirical loop that never leaves (a state whose only logged transition under the
target returns to it) has no finite empirical value; it is bounded like a never-seen state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

MIN_VISITS_PER_STATE = 5  # `auto` picks tabular FQE only where fit transitions are >= 5 x the distinct states
_CLOSED_TOL = 1e-9


def state_index(frames: list[pd.DataFrame], features: list[str]) -> tuple[list[np.ndarray], int]:
    """One integer per distinct row of `features` across `frames` (64-bit row hashes, factorized),
    returned per frame, and the number of distinct states."""
    hashes = [pd.util.hash_pandas_object(f[features].reset_index(drop=True), index=False).to_numpy()
              for f in frames]
    codes, uniques = pd.factorize(np.concatenate(hashes) if hashes else np.zeros(0, np.uint64))
    bounds = np.cumsum([0, *(len(h) for h in hashes)])
    return [codes[bounds[i]:bounds[i + 1]].astype(np.int64) for i in range(len(frames))], len(uniques)


@dataclass(frozen=True)
class TabularTransitions:
    """Fit transitions over state indices; `next_state` is -1 after a terminal step."""

    state: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_state: np.ndarray
    episode: np.ndarray  # 0..E-1
    n_states: int
    n_actions: int

    def bootstrap_weights(self, seed: int) -> np.ndarray:
        """Each transition's count in one episode-bootstrap resample (episodes drawn with replacement)."""
        n_episodes = int(self.episode.max()) + 1 if len(self.episode) else 0
        drawn = np.random.default_rng(seed).integers(0, n_episodes, n_episodes)
        weights: np.ndarray = np.bincount(drawn, minlength=n_episodes)[self.episode].astype(np.float64)
        return weights


@dataclass(frozen=True)
class TabularSolution:
    """V and Q of one target under the empirical model of (a resample of) the fit transitions."""

    v_low: np.ndarray  # (S,) never-seen states valued at the low end of the return range
    v_high: np.ndarray  # (S,) ... at the high end
    q: np.ndarray  # (S, A) with never-seen states at the range's midpoint (the DR/WDR control variate)
    pooled_steps: np.ndarray  # (S,) expected steps from s on (state, action) pairs never logged
    steps: np.ndarray  # (S,) expected steps from s in states the fit data value
    seen: np.ndarray  # (S,) bool: the state occurs in the fit transitions


def closed_states(p_pi: sp.csr_matrix) -> np.ndarray:
    """States of the sub-stochastic chain from which no exit (terminal step, never-seen state) is
    reachable: the closed classes (strongly connected components with no mass leaving them)."""
    n_components, label = connected_components(p_pi, directed=True, connection="strong")
    coo = p_pi.tocoo()
    leaving = np.zeros(n_components, dtype=bool)
    leaving[label[np.asarray(p_pi.sum(axis=1)).ravel() < 1.0 - _CLOSED_TOL]] = True
    leaving[label[coo.row[label[coo.row] != label[coo.col]]]] = True
    closed: np.ndarray = ~leaving[label]
    return closed


def solve_tabular(data: TabularTransitions, probs: np.ndarray, gamma: float, value_range: tuple[float, float],
                  weights: np.ndarray | None = None) -> TabularSolution:
    """V^pi and Q^pi of target probabilities `probs` (S, A) on the (weighted) empirical model."""
    w = np.ones(len(data.state)) if weights is None else weights
    use = w > 0
    s, a, r, nxt, w = data.state[use], data.action[use], data.reward[use], data.next_state[use], w[use]
    n_s, n_a = data.n_states, data.n_actions
    pair = s * n_a + a
    n_pair = np.bincount(pair, weights=w, minlength=n_s * n_a)
    n_state = np.bincount(s, weights=w, minlength=n_s)
    seen, logged = n_state > 0, (n_pair > 0).reshape(n_s, n_a)
    unlogged = np.where(seen, (probs * ~logged).sum(axis=1), 0.0)  # pi's mass on never-logged actions
    # each transition's share of P_pi(s, .): pi(a|s) / N(s, a) for its own pair, plus the pooled share
    share = w * (probs[s, a] / n_pair[pair] + unlogged[s] / n_state[s])
    going = nxt >= 0
    p_pi = sp.csr_matrix((share[going], (s[going], nxt[going])), shape=(n_s, n_s))
    p_pi.eliminate_zeros()
    rhs = np.stack([np.bincount(s, weights=share * r, minlength=n_s),  # r_pi
                    np.where(seen, 0.0, 1.0),  # never-seen states: their value, solved as a unit
                    unlogged,  # steps on never-logged pairs
                    seen.astype(np.float64)], axis=1)  # steps
    values = _solve(p_pi * gamma, rhs, gamma)
    low, high = value_range
    v_low, v_high = values[:, 0] + low * values[:, 1], values[:, 0] + high * values[:, 1]
    v_mid = 0.5 * (v_low + v_high)
    q = _q_table(s, a, r, nxt, w, n_pair, n_state, v_mid, gamma, n_s, n_a, logged, seen)
    return TabularSolution(v_low=v_low, v_high=v_high, q=q, pooled_steps=values[:, 2], steps=values[:, 3],
                           seen=seen)


def _solve(p_pi: sp.csr_matrix, rhs: np.ndarray, gamma: float) -> np.ndarray:
    """(I - gamma P_pi) X = rhs. With gamma = 1 a closed class (a loop the fit data never leave) has
    no finite empirical value; its states are solved like never-seen ones (column 1: the value is
    anywhere in the return range), so the interval spans every way the loop could end."""
    n = p_pi.shape[0]
    if gamma >= 1.0:
        closed = closed_states(p_pi)
        p_pi = sp.diags((~closed).astype(np.float64)) @ p_pi
        rhs = rhs.copy()
        rhs[closed] = [0.0, 1.0, 0.0, 0.0]
    solution: np.ndarray = splu((sp.eye(n, format="csc") - p_pi).tocsc()).solve(rhs)
    return solution


def _q_table(s: np.ndarray, a: np.ndarray, r: np.ndarray, nxt: np.ndarray, w: np.ndarray, n_pair: np.ndarray,
             n_state: np.ndarray, v: np.ndarray, gamma: float, n_s: int, n_a: int, logged: np.ndarray,
             seen: np.ndarray) -> np.ndarray:
    """Q(s, a) = mean over the pair's transitions of r + gamma V(s'); the state's pooled mean for a
    never-logged action; V (the range's midpoint) for a never-seen state."""
    backup = w * (r + gamma * np.where(nxt >= 0, v[np.maximum(nxt, 0)], 0.0))
    pair = s * n_a + a
    by_pair = np.bincount(pair, weights=backup, minlength=n_s * n_a).reshape(n_s, n_a)
    by_state = np.bincount(s, weights=backup, minlength=n_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(logged, by_pair / n_pair.reshape(n_s, n_a), (by_state / n_state)[:, None])
    out: np.ndarray = np.where(seen[:, None], q, v[:, None])
    return out


@dataclass(frozen=True)
class TabularFqe:
    """Tabular FQE of one target: the fit on the whole fit split and one solve per bootstrap refit,
    as values over the state indices of `state_index` (the evaluated rows' indices in `rows_state`)."""

    main: TabularSolution
    refit_low: np.ndarray  # (K, S) V per refit, never-seen states at the range's low end
    refit_high: np.ndarray  # (K, S) ... at its high end
    rows_state: np.ndarray  # (rows,) state index of each evaluated row
    n_states: int

    def q_rows(self) -> np.ndarray:
        """(rows, A) Q of the main fit on the evaluated rows (for DR, WDR and FQE's point value)."""
        out: np.ndarray = self.main.q[self.rows_state]
        return out


def tabular_transitions(fit: pd.DataFrame, fit_state: np.ndarray, n_states: int, n_actions: int,
                        reward: str, action: str, episode: str, terminal: str) -> TabularTransitions:
    """Transitions of a fit frame sorted by episode and step: every step but the last of an unfinished
    episode (its next state is unknown), as `load_training_data` keeps them."""
    ep = fit[episode].to_numpy()
    ends = np.ones(len(fit), dtype=bool)
    ends[:-1] = ep[1:] != ep[:-1]
    terminals = fit[terminal].to_numpy(bool) & ends
    nxt = np.full(len(fit), -1, dtype=np.int64)
    nxt[:-1] = fit_state[1:]
    nxt[ends] = -1
    keep = ~ends | terminals
    return TabularTransitions(
        state=fit_state[keep], action=fit[action].to_numpy(np.int64)[keep],
        reward=fit[reward].to_numpy(np.float64)[keep], next_state=nxt[keep],
        episode=pd.factorize(ep)[0][keep], n_states=n_states, n_actions=n_actions)


def fit_tabular_fqe(data: TabularTransitions, probs: np.ndarray, rows_state: np.ndarray, *, gamma: float,
                    value_range: tuple[float, float], refits: int, seed: int) -> TabularFqe:
    """The main solve and `refits` solves on episode-bootstrap resamples (seeded per refit, as the
    neural refits are) of target probabilities `probs` (S, A) over the state indices."""
    main = solve_tabular(data, probs, gamma, value_range)
    lows, highs = [], []
    for k in range(1, refits + 1):
        weights = data.bootstrap_weights((seed + 1) * 100_003 + k)
        solution = solve_tabular(data, probs, gamma, value_range, weights)
        lows.append(solution.v_low)
        highs.append(solution.v_high)
    empty = np.zeros((0, data.n_states))
    return TabularFqe(main=main, refit_low=np.array(lows) if lows else empty,
                      refit_high=np.array(highs) if highs else empty, rows_state=rows_state,
                      n_states=data.n_states)

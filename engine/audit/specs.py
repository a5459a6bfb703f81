"""The audit's declarations: its shared inputs and one ``MetricSpec`` per metric.

``REGISTRY`` is what ``run_audit`` audits by default and what the report and the audit
page read; a module gets a spec as ``REGISTRY["rmse"]`` and every spec, in order, by
iterating ``REGISTRY``. ``SHARED_INPUTS`` are the inputs the specs (and ``run_audit``)
name; each is built once per audit. Declaring a metric key twice raises ``RegistryError``
when this module is imported (see ``engine.audit.registry``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.audit import inputs, measures
from engine.audit.registry import (
    Events,
    InputSpec,
    InputView,
    MetricSpec,
    Parts,
    Registry,
    per_user_mean,
)
from engine.audit.stats import identity

#: Why list measures have no value when no user has a list.
NO_LIST = "no user has a recommendation (every user rated every item)"

SHARED_INPUTS: tuple[InputSpec, ...] = (
    InputSpec("ratings", "the canonical ratings", inputs.ratings),
    InputSpec("oof", "the SVD's out-of-fold predictions (Evaluation.predictions)",
              inputs.out_of_fold),
    InputSpec("errors", "per-user sums of squared and absolute out-of-fold errors, and counts",
              inputs.errors, needs=("oof",)),
    InputSpec("ranking", "per-user mean over folds of the SVD's ranking metrics "
              "(Evaluation.user_ranking)", inputs.ranking),
    InputSpec("lists", "every user's top-k unrated items from the model trained on all data",
              inputs.lists, empty_reason=NO_LIST),
    InputSpec("popularity", "ratings per item", inputs.popularity, needs=("ratings",)),
    InputSpec("popularity_groups", "short head / long tail membership of the items",
              inputs.popularity_groups, needs=("popularity",)),
    InputSpec("long_tail", "whether each item is in the long tail", inputs.long_tail,
              needs=("popularity_groups",)),
    InputSpec("profile", "per-user number of ratings, mean rating and mean item popularity",
              inputs.profile, needs=("ratings", "popularity")),
    InputSpec("n_users", "the number of users", inputs.n_users),
    InputSpec("genres", "each item's genres", inputs.genres,
              unavailable_note="No item genres: calibration is not audited."),
    InputSpec("history_genres", "per-user genre mix of the rated items (users without a "
              "rated genre absent)", inputs.history_genres, needs=("ratings", "genres")),
    InputSpec("model", "the model trained on all data", inputs.model),
    InputSpec("explanations", "per-user explanation support over the top-k list and "
              "deletion fidelity of the top-1 recommendation, from the exact linear split "
              "(None when explanations are off)",
              inputs.explanations, needs=("model", "lists")),
)  # fmt: skip


def _rmse(x: InputView) -> Parts:
    return Parts(x["errors"]["se"], x["errors"]["n"], np.sqrt)


def _mae(x: InputView) -> Parts:
    return Parts(x["errors"]["ae"], x["errors"]["n"], identity)


def _ndcg(x: InputView) -> Parts:
    return per_user_mean(x["ranking"]["ndcg"])


def _recall(x: InputView) -> Parts:
    return per_user_mean(x["ranking"]["recall"])


def _arp(x: InputView) -> Parts:
    return per_user_mean(measures.arp(x["lists"], x["popularity"]))


def _aplt(x: InputView) -> Parts:
    return per_user_mean(measures.aplt(x["lists"], x["long_tail"]))


def _aclt(x: InputView) -> Parts:
    return per_user_mean(measures.aclt(x["lists"], x["long_tail"]))


def _novelty(x: InputView) -> Parts:
    return per_user_mean(measures.novelty(x["lists"], x["popularity"], x["n_users"]))


def _miscalibration(x: InputView) -> Parts:
    """Users with a list whose rated items have a genre (the others are counted in a note)."""
    lists, history = x["lists"], x["history_genres"]
    listed = pd.unique(lists["user_id"])
    history = history[history.index.isin(listed)]
    values = measures.miscalibration_of(history, lists, x["genres"]).dropna()
    without = len(listed) - len(values)
    if without and len(values):
        x.note(f"miscalibration: {without:,} users with a list have rated no item with a "
               "genre and are left out of it.")  # fmt: skip
    return per_user_mean(values)


def _support(x: InputView) -> Parts:
    return per_user_mean(x["explanations"]["support"].dropna())


def _fidelity(x: InputView) -> Parts:
    return per_user_mean(x["explanations"]["fidelity"])


def _exposure(x: InputView) -> Events:
    lists = x["lists"]
    return Events(lists["user_id"], lists["item_id"], measures.position_weights(lists["rank"]))


def _interactions(x: InputView) -> Events:
    ratings = x["ratings"]
    return Events(ratings["user_id"], ratings["item_id"], np.ones(len(ratings)))


_NO_OOF = "there is no out-of-fold prediction"
_NO_RELEVANT = "no user has a relevant held-out item in the evaluation"
_HERLOCKER = ("Herlocker, Konstan, Terveen, Riedl (2004), Evaluating collaborative filtering "
              "recommender systems")  # fmt: skip
_ABDOLLAHPOURI = ("Abdollahpouri, Burke, Mobasher (2019), Managing popularity bias in "
                  "recommender systems with personalized re-ranking")  # fmt: skip
_SINGH = "Singh and Joachims (2018), Fairness of exposure in rankings"
_HU = ("Hu, Koren, Volinsky (2008), Collaborative filtering for implicit feedback datasets "
       "(explanations as a linear function of the user's past ratings)")  # fmt: skip
_LIST = "L_u = u's top-k list, phi(i) = number of ratings of item i"
_LONG_TAIL = "LT = the long tail, the items outside the short head (most rated items holding 80%"
_N = inputs.SUPPORT_TOP_RATINGS

REGISTRY = Registry(SHARED_INPUTS)

REGISTRY.register(MetricSpec(
    key="rmse", family="accuracy", level="user group", better="lower", display_name="RMSE",
    definition="RMSE of out-of-fold predictions: sqrt(sum sq. error / n)",
    formula="RMSE(G) = sqrt( sum_{u in G} sum_{i in T_u} (r^_ui - r_ui)^2 / sum_{u in G} "
            "|T_u| ), T_u = u's out-of-fold predictions",
    references=(_HERLOCKER,), inputs=("errors",), no_value=_NO_OOF, compute=_rmse,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="mae", family="accuracy", level="user group", better="lower", display_name="MAE",
    definition="MAE of out-of-fold predictions: sum |error| / n",
    formula="MAE(G) = sum_{u in G} sum_{i in T_u} |r^_ui - r_ui| / sum_{u in G} |T_u|",
    references=(_HERLOCKER,), inputs=("errors",), no_value=_NO_OOF, compute=_mae,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="ndcg", family="top-N utility", level="user group", better="higher",
    display_name="NDCG@k",
    definition="mean NDCG@k over users with a relevant held-out item",
    formula="NDCG@k(G) = mean_{u in G} DCG_u / IDCG_u, DCG_u = sum_{r <= k} hit_r / "
            "log2(r + 1) (binary relevance; each user's mean over the folds)",
    references=("Järvelin and Kekäläinen (2002), Cumulated gain-based evaluation of IR "
                "techniques",),
    inputs=("ranking",), no_value=_NO_RELEVANT, compute=_ndcg,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="recall", family="top-N utility", level="user group", better="higher",
    display_name="Recall@k",
    definition="mean Recall@k over users with a relevant item",
    formula="Recall@k(G) = mean_{u in G} |L_u ∩ R_u| / |R_u|, R_u = u's relevant held-out "
            "items (each user's mean over the folds)",
    references=("Cremonesi, Koren, Turrin (2010), Performance of recommender algorithms on "
                "top-N recommendation tasks",),
    inputs=("ranking",), no_value=_NO_RELEVANT, compute=_recall,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="arp", family="popularity", level="user group", better="lower",
    display_name="average popularity of recommended items (ARP)",
    definition="mean number of ratings of the recommended items",
    formula=f"ARP(G) = mean_{{u in G}} (1 / |L_u|) sum_{{i in L_u}} phi(i), {_LIST}",
    references=(_ABDOLLAHPOURI,), inputs=("lists", "popularity"), no_value=NO_LIST,
    compute=_arp,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="aplt", family="popularity", level="user group", better="higher",
    display_name="long-tail share of recommendations (APLT)",
    definition="share of recommended items in the long tail",
    formula=f"APLT(G) = mean_{{u in G}} |L_u ∩ LT| / |L_u|, {_LONG_TAIL} of the ratings)",
    references=(_ABDOLLAHPOURI,), inputs=("lists", "long_tail"), no_value=NO_LIST,
    compute=_aplt,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="aclt", family="popularity", level="user group", better="higher",
    display_name="long-tail items per list (ACLT)",
    definition="number of recommended items in the long tail",
    formula=f"ACLT(G) = mean_{{u in G}} |L_u ∩ LT|, {_LONG_TAIL} of the ratings)",
    references=(_ABDOLLAHPOURI,), inputs=("lists", "long_tail"), no_value=NO_LIST,
    compute=_aclt,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="novelty", family="popularity", level="user group", better="higher",
    display_name="novelty of recommendations",
    definition="mean -log2(popularity / n_users) of recommended items",
    formula=f"Novelty(G) = mean_{{u in G}} (1 / |L_u|) sum_{{i in L_u}} -log2(phi(i) / "
            f"n_users) bits, {_LIST}",
    references=("Zhou et al. (2010), Solving the apparent diversity-accuracy dilemma of "
                "recommender systems (novelty as self-information)",),
    inputs=("lists", "popularity", "n_users"), no_value=NO_LIST, compute=_novelty,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="miscalibration", family="calibration", level="user group", better="lower",
    display_name="genre miscalibration",
    definition="Steck C_KL(history genres || smoothed list genres), alpha 0.01, bits",
    formula=f"C_KL(u) = sum_g p(g|u) log2( p(g|u) / ((1 - a) q(g|u) + a p(g|u)) ), "
            f"a = {measures.ALPHA}, p = genre mix of u's rated items, q = of u's list (an item "
            "spreads weight 1 over its genres); value = mean over the users of G",
    references=("Steck (2018), Calibrated recommendations",),
    inputs=("lists", "history_genres", "genres"),
    no_value="no user with a recommendation has rated an item with a genre",
    compute=_miscalibration,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="explanation_support", family="explanations", level="user group", better="higher",
    display_name="explanation support",
    definition=f"share of each recommendation's history effect held by its {_N} "
               "most influential ratings, averaged over the top-k list (0-1, scale-free)",
    formula=f"Support(G) = mean_{{u in G}} mean_{{i in L_u}} sum_{{j in top{_N}}} |c_j(i)| "
            "/ sum_j |c_j(i)|, c_j(i) = the term of u's rating j in the exact linear split "
            f"of u's prediction for i, top{_N} = the {_N} ratings with the largest |c_j(i)|; "
            "higher = the explanation rests on fewer ratings (easier to read)",
    references=(_HU,), inputs=("explanations",), no_value=NO_LIST, compute=_support,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="deletion_fidelity", family="explanations", level="user group", better="higher",
    display_name="explanation deletion fidelity",
    definition=f"prediction drop (in rating points) after deleting the {_N} most positive "
               "ratings of the top-1 recommendation and refolding",
    formula=f"Fidelity(G) = mean_{{u in G}} ( r^_u(i*) - r^_{{u - D_u}}(i*) ), i* = u's "
            f"top-1 item, D_u = the (up to) {_N} ratings with the largest positive c_j, "
            "u refolded without them",
    references=("Samek et al. (2017), Evaluating the visualization of what a deep neural "
                "network has learned (deletion, AOPC)", _HU),
    inputs=("explanations",), no_value=NO_LIST, compute=_fidelity,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="exposure_share", family="exposure", level="item group", better="higher",
    display_name="recommendation exposure",
    definition="position-weighted (1/log2(1+rank)) share of recommendations; ratio is to the "
               "group's catalogue share",
    formula="E(g) = sum_u sum_{i in L_u ∩ g} w_i / sum_u sum_{i in L_u} w_i, w_i = 1 / "
            "log2(1 + rank_i); ratio = E(g) / (|g| / |I|)",
    references=(_SINGH,), inputs=("lists",), no_value=NO_LIST, compute=_exposure,
))  # fmt: skip
REGISTRY.register(MetricSpec(
    key="interaction_share", family="exposure", level="item group", better="higher",
    display_name="share of all ratings",
    definition="share of all ratings (exposure before the model); ratio is to the group's "
               "catalogue share",
    formula="S(g) = #{ratings of items in g} / #{ratings}; ratio = S(g) / (|g| / |I|)",
    references=(_SINGH,), inputs=("ratings",), no_value="there is no rating",
    compute=_interactions, scope="data",
))  # fmt: skip

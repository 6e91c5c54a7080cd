"""The knowledge base: every run remembered, matched and turned into priors for the next one.

``import knowledge_base`` is light: faiss and scikit-learn load when grouping or matching runs,
TensorFlow never.

Typical use (the pipeline does this in ``fit_auto``)::

    kb = KnowledgeBase(None)                       # ~/.cache/transfer-automl/kb.sqlite
    ds = kb.add_dataset(name, fingerprint, embedding, meta, report.to_dict())
    m = match(kb, embedding)                       # ranked groups, neighbours, novel?
    p = priors(m, kb, space)                       # backbone, points, TPE history
    kb.start_run(run_id, ds, settings)
    kb.record_trial(run_id, trial_record(spec, result))
    kb.finish_run(run_id, "complete", best_trial_id)

The portfolio meta-dataset (every configuration of a fixed portfolio run on every dataset)
lives beside the runs: ``kb.add_portfolio_rows(rows)``, ``kb.portfolio_rows(version)``; see
:mod:`knowledge_base.meta_dataset`.
"""

from __future__ import annotations

from knowledge_base.records import (DatasetEntry, GroupEntry, PortfolioDatasetEntry,
                                     PortfolioEvaluationEntry, RunEntry, RunStatus, TrialEntry,
                                     trial_record)
from knowledge_base.grouping import Grouping, cluster, ensure_groups, regroup
from knowledge_base.index import DatasetIndex
from knowledge_base.matching import GroupMatch, Match, Neighbour, match, novelty_threshold
from knowledge_base.priors import (BackboneChoice, BackboneEvidence, PriorPoint, Priors, priors,
                                   rank_normalise)
from knowledge_base.meta_dataset import rows_from_jsonl
from knowledge_base.store import KnowledgeBase, KnowledgeBaseError, default_kb_path
from knowledge_base.transfer import export_json, import_json

__all__ = [
    "KnowledgeBase", "KnowledgeBaseError", "default_kb_path", "trial_record",
    "DatasetEntry", "RunEntry", "TrialEntry", "GroupEntry", "RunStatus",
    "DatasetIndex", "Grouping", "cluster", "regroup", "ensure_groups",
    "Match", "GroupMatch", "Neighbour", "match", "novelty_threshold",
    "Priors", "BackboneChoice", "BackboneEvidence", "PriorPoint", "priors", "rank_normalise",
    "export_json", "import_json",
    "PortfolioDatasetEntry", "PortfolioEvaluationEntry", "rows_from_jsonl",
]

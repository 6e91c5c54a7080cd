"""``transfer-automl kb show|groups|match``: what they show, and that looking writes nothing."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest
from typer.testing import CliRunner

from knowledge_base import KnowledgeBase
from transfer_automl.cli import app


@pytest.fixture()
def seeded_kb(tmp_path):
    """A copy of the shipped seed KB (eight datasets in one stored group)."""
    path = tmp_path / "kb.sqlite"
    with KnowledgeBase(path) as kb, resources.as_file(
            resources.files("knowledge_base").joinpath("seed_kb.json")) as seed:
        kb.import_json(seed)
    return path


def _invoke(*args):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})  # no wrapped cells
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _state(path):
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def _add(path, name, fingerprint, dim, rng):
    with KnowledgeBase(path) as kb:
        return kb.add_dataset(name, fingerprint, rng.normal(size=dim), {}, {"n_classes": 2})


def test_kb_groups_only_reads_unless_told_to_recluster(seeded_kb):
    with KnowledgeBase(seeded_kb) as kb:
        dim = kb.datasets()[0].embedding.size
        versions = {g.version for g in kb.groups()}
    _add(seeded_kb, "extra", "e" * 64, dim, np.random.default_rng(0))  # groups now stale
    before = _state(seeded_kb)
    out = _invoke("kb", "groups", "--kb", str(seeded_kb))
    assert _state(seeded_kb) == before  # nothing written, not even a new groups version
    assert "in no group yet: extra (eeeeee)" in out and "--recluster" in out
    assert "flowers12 (e6673d)" in out

    out = _invoke("kb", "groups", "--kb", str(seeded_kb), "--recluster")
    with KnowledgeBase(seeded_kb) as kb:
        assert {g.version for g in kb.groups()} - versions  # a new version was stored
        assert "extra (eeeeee)" in out and "in no group yet" not in out


def test_datasets_of_one_name_are_told_apart_by_fingerprint(seeded_kb):
    with KnowledgeBase(seeded_kb) as kb:
        dim = kb.datasets()[0].embedding.size
    rng = np.random.default_rng(1)
    _add(seeded_kb, "flowers12", "3fa2c1" + "0" * 58, dim, rng)
    _add(seeded_kb, "flowers12", "3fa2c1" + "1" * 58, dim, rng)  # same first six digits
    out = _invoke("kb", "show", "--kb", str(seeded_kb))
    assert "flowers12 (e6673d" in out  # the seed's own flowers12
    assert "flowers12 (3fa2c1" in out
    labels = {word for word in out.replace("│", " ").split() if word.startswith("(3fa2c1")}
    assert len(labels) == 2  # longer prefixes where six digits would collide


def test_kb_match_reports_what_a_fit_would_use(seeded_kb, colour_folder, cache_root,
                                              monkeypatch):
    with KnowledgeBase(seeded_kb) as kb:
        near = next(d for d in kb.datasets() if d.name == "flowers12")
        group = kb.groups()[0]
    assert group.id != group.label  # so the label, not the database id, must be shown
    vector = near.embedding + np.random.default_rng(0).normal(0, 1e-4, near.embedding.size)
    monkeypatch.setattr("transfer_automl.embedding.BackboneStatsEmbedder.embed",
                        lambda self, data: vector)  # a dataset right next to flowers12
    out = _invoke("kb", "match", str(colour_folder), "--kb", str(seeded_kb),
                  "--cache-dir", str(cache_root))
    lines = out.splitlines()
    assert f"matched group: {group.label} at distance" in out
    assert any(ln.startswith("backbone: efficientnet_") for ln in lines)
    warm = next(ln for ln in lines if ln.startswith("warm start:"))
    assert warm.startswith("warm start: points+history: ")
    points, trials = (int(w) for w in warm.split(": ")[2].replace(",", "").split()[::3])
    assert points >= 1 and trials >= 1  # counted after they are applied, as fit reports them
    assert "flowers12 (e6673d)" in out and "0.0" in out

    out = _invoke("kb", "match", str(colour_folder), "--kb", str(seeded_kb),
                  "--cache-dir", str(cache_root), "--warm-start", "none")
    assert "warm start: none: 0 prior points, 0 prior trials" in out

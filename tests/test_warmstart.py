"""The knowledge base in the loop: a second, similar dataset starts from the first one's trials."""

import shutil

import pytest

from knowledge_base import KnowledgeBase
from tests.conftest import SHARED_DATASETS, write_colour_folder
from transfer_automl import fit_auto
from transfer_automl.errors import InputError
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import default_space


@pytest.mark.slow
def test_second_dataset_matches_the_first_and_uses_its_priors(tmp_path, cache_root,
                                                              colour_folder):
    kb_path = tmp_path / "kb.sqlite"
    space = default_space().fix(resolution=64, epochs=3)
    common = dict(max_trials=2, time_budget_s=300, kb=str(kb_path), cache_dir=cache_root,
                  search=SearchOptions(space=space, multi_fidelity=False))
    first = fit_auto(colour_folder, seed=0, tracking=TrackingOptions(runs_dir=tmp_path / "runs"),
                     **common)
    assert first.group is None  # empty knowledge base: searched cold
    assert "empty" in first.explanation

    similar = write_colour_folder(tmp_path / "similar", seed=1)
    events = []
    second = fit_auto(similar, seed=0, tracking=TrackingOptions(runs_dir=tmp_path / "runs",
                                                                trackers=(events.append,)),
                      **common)
    assert second.group is not None and second.group["neighbours"]
    assert second.group["neighbours"][0]["name"] == colour_folder.name
    origins = [row["origin"] for row in second.leaderboard]
    assert any(o.startswith(f"kb:{colour_folder.name}/") for o in origins), origins
    planned = [e.message for e in events if e.kind == "planned"]
    assert planned and "nearest" in planned[0] and "backbone" in planned[0]

    with KnowledgeBase(kb_path) as kb:
        assert len(kb.datasets()) == 2
        runs = kb.runs()
        assert len(runs) == 2 and all(r.status == "complete" for r in runs)
        trials = kb.trials()
        assert len(trials) == 4
        assert any(t.prior and t.prior.startswith("kb:") for t in trials)


def test_bad_warm_start_mode(tmp_path, colour_folder):
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.add_dataset("x", "f" * 16, [0.0] * 8)
    with pytest.raises(InputError, match="warm_start"):
        SearchOptions(warm_start="lukewarm")


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATASETS / "flowers12").is_dir(),
                    reason="needs ../shared/datasets/flowers12")
def test_a_fresh_install_matches_a_known_domain_and_uses_its_priors(tmp_path, cache_root):
    """The default KB is created from the shipped seed: a new flower dataset (six of
    flowers12's classes, 15 images each) matches flowers12 and starts from its priors."""
    subset = tmp_path / "flowers"
    for folder in sorted(p for p in (SHARED_DATASETS / "flowers12").iterdir() if p.is_dir())[:6]:
        (subset / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:15]:
            shutil.copy(image, subset / folder.name / image.name)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache_root / "backbones").mkdir(exist_ok=True)
    (cache / "backbones").symlink_to(cache_root / "backbones")  # converted once per session
    assert not (cache / "kb.sqlite").exists()

    result = fit_auto(subset, max_trials=1, time_budget_s=600, cache_dir=cache,
                      search=SearchOptions(refit=False))
    assert result.group is not None and not result.group["novel"]
    assert result.group["neighbours"][0]["name"] == "flowers12"
    assert "matched group" in result.explanation
    assert result.leaderboard[0]["origin"].startswith("kb:")  # a prior point ran first
    with KnowledgeBase(cache / "kb.sqlite") as kb:
        names = [d.name for d in kb.datasets()]
    assert "flowers12" in names and "flowers" in names  # the seed, then this run

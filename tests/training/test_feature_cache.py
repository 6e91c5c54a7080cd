"""FeatureCache correctness: cached = uncached, content keys, LRU bound, concurrent writers."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from transfer_automl.data import load_dataset
from transfer_automl.trial import TrialContext
from transfer_automl.space import default_space
from transfer_automl.training._features import FeatureCache
from transfer_automl.trial import TrialSpec, TrialState

RES = 64


def _runner(work: Path, data_dir: Path, features: str, cache_root: Path, backbones=None,
            seed: int = 0):
    from transfer_automl.training import TrialRunner

    data = load_dataset(data_dir, workdir=work / "datasets", seed=seed)
    manifest = data.save_manifest(work / f"dataset-{data.fingerprint[:8]}.json")
    runner = TrialRunner(TrialContext(str(manifest), str(work), features,
                                      str(cache_root / "backbones")))
    if backbones is not None:  # share one loaded backbone: loading it costs seconds
        runner._backbones = backbones
    return runner


def _config(**overrides) -> dict:
    return {**default_space().default, "resolution": RES, "epochs": 2, "batch_size": 16,
            "optimizer": "adam", **overrides}


def _fill(runner, **overrides) -> None:
    """Put the trial's frozen-part outputs in the runner's cache without training a head."""
    from transfer_automl.training._inputs import cached_outputs

    config = _config(**overrides)
    cached_outputs(runner, runner.backbone(config["backbone"]), config, {})


def _run(runner, trial_id: str, **overrides):
    result = runner.run(TrialSpec(trial_id, 0, _config(**overrides), "test", seed=0),
                        lambda m: None)
    assert result.state == TrialState.COMPLETE, result.reason
    return result


def _weights(result) -> list[np.ndarray]:
    with np.load(result.artifact) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.fixture(scope="module")
def runners(tmp_path_factory, cache_root, colour_folder):
    """A runner with the feature cache and one without, on the same data and backbone."""
    work = tmp_path_factory.mktemp("cache-run")
    cached = _runner(work, colour_folder, str(work / "features"), cache_root)
    uncached = _runner(work, colour_folder, "", cache_root, backbones=cached._backbones)
    return cached, uncached


@pytest.mark.parametrize("unfrozen, fidelity, optimizer", [
    (0, "features", "adam"), (0, "features", "lbfgs"), (1, "activations", "adam")])
def test_cached_and_uncached_trials_give_the_same_weights(runners, unfrozen, fidelity,
                                                          optimizer):
    cached, uncached = runners
    _fill(cached, unfrozen_blocks=unfrozen)
    hit = _run(cached, f"hit-{unfrozen}-{optimizer}", unfrozen_blocks=unfrozen,
               optimizer=optimizer)
    miss = _run(uncached, f"off-{unfrozen}-{optimizer}", unfrozen_blocks=unfrozen,
                optimizer=optimizer)
    assert hit.fidelity == miss.fidelity == fidelity
    assert hit.extra["cache_hit"] == 1.0 and miss.extra["cache_hit"] == 0.0
    a, b = _weights(hit), _weights(miss)
    assert len(a) == len(b) and a
    for wa, wb in zip(a, b):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_changed_image_changes_the_key_and_recomputes(tmp_path, cache_root, colour_folder,
                                                      runners):
    from PIL import Image

    from transfer_automl.training._inputs import backbone_key

    data_dir = shutil.copytree(colour_folder, tmp_path / "data")
    features = tmp_path / "features"
    old = _runner(tmp_path, data_dir, str(features), cache_root, runners[0]._backbones)
    _fill(old)

    image = data_dir / "red" / "0.png"
    pixels = np.array(Image.open(image))
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(image)
    new = _runner(tmp_path, data_dir, str(features), cache_root, runners[0]._backbones)
    assert new.dataset.content_fingerprint != old.dataset.content_fingerprint

    backbone = old.backbone("efficientnet_lite0")
    cache = FeatureCache(features)
    old_key = cache.key(old.dataset.content_fingerprint, backbone_key(backbone), RES, 0)
    new_key = cache.key(new.dataset.content_fingerprint, backbone_key(backbone), RES, 0)
    assert old_key != new_key
    assert _run(new, "new").extra["cache_hit"] == 0.0
    assert (features / new_key / "meta.json").exists()

    def must_not_compute():
        raise AssertionError("the old entry should still be served")

    paths = sorted({*old.dataset.train.paths, *old.dataset.val.paths, *old.dataset.test.paths})
    arrays, hit = cache.get_or_compute(old_key, must_not_compute, index=paths)
    assert hit and set(arrays) == {"images"} and len(arrays["images"]) == len(paths)


def test_another_split_seed_reuses_the_entry_row_for_row(tmp_path, cache_root, colour_folder,
                                                         runners):
    from transfer_automl.training._inputs import cached_outputs, extract, frozen_part

    features = tmp_path / "features"
    first = _runner(tmp_path, colour_folder, str(features), cache_root, runners[0]._backbones)
    second = _runner(tmp_path, colour_folder, str(features), cache_root, runners[0]._backbones,
                     seed=1)
    assert first.dataset.content_fingerprint == second.dataset.content_fingerprint
    assert first.dataset.fingerprint != second.dataset.fingerprint  # the splits differ
    config = _config()
    backbone = second.backbone(config["backbone"])
    cached_outputs(first, backbone, config, {})
    extra: dict = {}
    reused = cached_outputs(second, backbone, config, extra)
    assert extra["cache_hit"] == 1.0
    assert len([p for p in features.iterdir() if p.is_dir()]) == 1
    direct = extract(frozen_part(backbone, config), second.dataset, RES)
    assert set(reused) == set(direct)
    for split in direct:  # each split's rows are its own images, in its own order
        np.testing.assert_allclose(reused[split], direct[split], rtol=1e-5, atol=1e-5)


def test_an_entry_for_other_images_is_recomputed(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.get_or_compute("k", lambda: {"images": np.zeros((2, 3), np.float32)}, index=["a", "b"])
    arrays, hit = cache.get_or_compute(
        "k", lambda: {"images": np.ones((3, 3), np.float32)}, index=["a", "b", "c"])
    assert not hit and arrays["images"].shape == (3, 3)
    arrays, hit = cache.get_or_compute("k", lambda: None, index=["a", "b", "c"])
    assert hit and float(arrays["images"].sum()) == 9.0


def test_key_depends_on_backbone_digest_resolution_and_boundary(tmp_path):
    from transfer_automl.training._inputs import backbone_key

    def fake(digest):
        return SimpleNamespace(spec=SimpleNamespace(name="efficientnet_lite0"), digest=digest)

    cache = FeatureCache(tmp_path)
    base = cache.key("fp", backbone_key(fake("aaaa")), 224, 0)
    assert base == cache.key("fp", backbone_key(fake("aaaa")), 224, 0)
    others = [cache.key("fp", backbone_key(fake("bbbb")), 224, 0),
              cache.key("fp", backbone_key(fake("aaaa")), 192, 0),
              cache.key("fp", backbone_key(fake("aaaa")), 224, 1),
              cache.key("fp2", backbone_key(fake("aaaa")), 224, 0)]
    assert len({base, *others}) == 5


def _arrays(value: float, n: int = 1000) -> dict[str, np.ndarray]:
    return {"train": np.full(n, value, np.float32)}


def _put(cache: FeatureCache, key: str, value: float) -> None:
    cache.get_or_compute(key, lambda: _arrays(value))
    time.sleep(0.05)  # file mtimes are coarse (one kernel tick); keep the LRU order strict


def test_tiny_bound_evicts_the_older_entry(tmp_path):
    cache = FeatureCache(tmp_path, max_bytes=6000)  # one ~4.2 kB entry fits, two do not
    _put(cache, "a", 1.0)
    _put(cache, "b", 2.0)
    assert not (tmp_path / "a").exists()
    arrays, hit = cache.get_or_compute("b", lambda: _arrays(-1.0))
    assert hit and arrays["train"][0] == 2.0
    assert cache.size() <= 6000


def test_eviction_is_least_recently_used(tmp_path):
    cache = FeatureCache(tmp_path, max_bytes=10000)  # two entries fit, three do not
    _put(cache, "a", 1.0)
    _put(cache, "b", 2.0)
    _put(cache, "a", -1.0)  # a hit: "a" becomes the most recently used
    _put(cache, "c", 3.0)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["a", "c"]


def _concurrent_writer(root: str, key: str, counter: str, out: str, barrier) -> None:
    def compute():
        with open(counter, "a") as handle:
            handle.write("computed\n")
        time.sleep(0.5)  # long enough for the other process to arrive and wait
        rng = np.random.default_rng(7)
        return {s: rng.standard_normal((5, 3)).astype(np.float32) for s in ("train", "val")}

    barrier.wait()
    arrays, hit = FeatureCache(root).get_or_compute(key, compute)
    np.savez(out, hit=hit, **arrays)


def test_concurrent_writers_compute_once_and_read_the_same(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    counter = tmp_path / "calls.txt"
    outs = [tmp_path / f"out{i}.npz" for i in range(2)]
    procs = [ctx.Process(target=_concurrent_writer,
                         args=(str(tmp_path / "cache"), "k", str(counter), str(o), barrier))
             for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert counter.read_text().splitlines() == ["computed"]
    first, second = (np.load(o) for o in outs)
    assert sorted([bool(first["hit"]), bool(second["hit"])]) == [False, True]
    for split in ("train", "val"):
        np.testing.assert_array_equal(first[split], second[split])

"""The output contract: TensorFlow decodes every dataset path into the image read_image returns."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transfer_automl.data import load_dataset, read_image


def test_tensorflow_decodes_every_path_like_read_image(tmp_path, work, image):
    tf = pytest.importorskip("tensorflow")
    root = tmp_path / "d"
    exif = Image.Exif()
    exif[0x0112] = 6
    cases = [
        ("a.jpg", "RGB", None, {}), ("b.jpg", "L", None, {}), ("c.png", "RGB", None, {}),
        ("d.png", "L", None, {}), ("e.bmp", "RGB", None, {}), ("f.webp", "RGB", None, {}),
        ("g.gif", "P", None, {}), ("h.png", "RGBA", None, {}), ("i.png", "LA", None, {}),
        ("j.png", "P", None, {}), ("k.jpg", "CMYK", None, {}), ("l.png", "I;16", None, {}),
        ("m.jpg", "RGB", "PNG", {}), ("n.png", "RGB", "JPEG", {}),
        ("o.jpg", "RGB", None, {"exif": exif.tobytes()}),
    ]
    sources = {}
    for cls in ("x", "y"):
        for i, (name, mode, fmt, kw) in enumerate(cases):
            sources[f"{cls}/{name}"] = image(root / cls / name, mode, size=(16, 12), fmt=fmt,
                                             seed=i + (50 if cls == "y" else 0), **kw)
    ds = load_dataset(root, workdir=work)
    assert ds.report.n_images == 30 and ds.report.converted == 22
    for path in (*ds.train.paths, *ds.val.paths, *ds.test.paths):
        decoded = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False).numpy()
        rel = path.split("/d/", 1)[1] if "/d/" in path else path.split("/converted/", 1)[1][:-4]
        expected = read_image(sources[rel])
        assert decoded.shape == expected.shape, path
        # in-place JPEGs may differ by rounding between decoders; everything else is exact
        tol = 2 if path.endswith(".jpg") else 0
        assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= tol, path

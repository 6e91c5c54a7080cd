"""Import TensorFlow without its C++ start-up lines on the terminal.

Importing TensorFlow prints about a dozen lines to the process's stderr (oneDNN, CUDA stubs,
CPU instructions, absl initialisation), before any Python logging is set up and whatever
``TF_CPP_MIN_LOG_LEVEL`` says; every worker process prints them again. :func:`tensorflow`
imports it with file descriptor 2 captured and passes on every line that is not such
start-up noise. ``TF_CPP_MIN_LOG_LEVEL=0`` in the environment turns the filter off. A bottom
module: it imports nothing else of the project.
"""

from __future__ import annotations

import os
import sys
import tempfile

#: Fragments of the start-up lines TensorFlow prints on a machine without a GPU.
NOISE = ("All log messages before absl::InitializeLog", "oneDNN custom operations",
         "cudart_stub.cc", "cuda_platform.cc", "failed call to cuInit", "cpu_feature_guard",
         "To enable the following instructions", "rebuild TensorFlow with the appropriate",
         "Unable to register cu", "computation_placer", "TF-TRT Warning")


def tensorflow():
    """The ``tensorflow`` module, imported (once) without its start-up noise on stderr."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs on first use
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not any(fragment in line for fragment in NOISE):
                    sys.stderr.write(line + "\n")
    return tf

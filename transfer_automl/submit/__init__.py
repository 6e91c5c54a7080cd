"""The file ``spark-submit`` runs (:mod:`transfer_automl.submit.spark_main`).

It lives in a package of its own because Python puts a script's folder first on ``sys.path``:
here that folder holds nothing another library could import by mistake.
"""

from pathlib import Path

#: The application file to give ``spark-submit``.
ENTRY_POINT = Path(__file__).with_name("spark_main.py")

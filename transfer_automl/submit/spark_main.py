"""``spark-submit`` entry point: the command line of transfer-automl, on the submitted cluster.

    spark-submit --master spark://HOST:7077 "$(transfer-automl cluster entry-point)" \
        fit DATASET --time-budget 900 --out model/

The Spark session starts first, with what ``spark-submit`` configured (master, ``--conf``,
``spark-defaults.conf``) and the search's own defaults where those say nothing; ``fit``,
``resume`` and ``ablation`` then run their trials as tasks of that session (as if given
``--spark-master`` with the submitted master). Any other command runs as it would without Spark.
"""

from __future__ import annotations

import sys

#: Commands whose trials run on the executor, and so on the submitted cluster.
_SEARCH_COMMANDS = ("fit", "resume", "ablation")


def _with_master(args: list[str], master: str) -> list[str]:
    command = next((a for a in args if not a.startswith("-")), None)
    given = any(a == "--spark-master" or a.startswith("--spark-master=") for a in args)
    if command in _SEARCH_COMMANDS and not given:
        return [*args, "--spark-master", master]
    return args


def main(argv: list[str] | None = None) -> None:
    from transfer_automl.cli import main as cli_main
    from transfer_automl.executors.spark_session import default_conf, get_or_create

    args = list(sys.argv[1:] if argv is None else argv)
    session, _ = get_or_create(None, defaults=default_conf())
    # Spark's INFO lines would bury the search's own progress (the pyspark shell does the same)
    session.sparkContext.setLogLevel("WARN")
    try:
        sys.argv = ["transfer-automl", *_with_master(args, session.sparkContext.master)]
        cli_main()
    finally:
        session.stop()


if __name__ == "__main__":
    main()

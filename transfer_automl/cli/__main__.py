from transfer_automl.cli import main

main()

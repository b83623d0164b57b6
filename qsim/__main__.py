"""``python -m qsim`` runs the command line."""

from qsim.cli import main

main(prog_name="qsim")

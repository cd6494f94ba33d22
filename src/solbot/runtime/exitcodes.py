"""Process exit codes of the ``solbot`` command (documented in the README)."""

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_UNREACHABLE = 4
EXIT_UNHEALTHY = 5
EXIT_LOOKAHEAD = 6  # check-lookahead found a decision that used later data
EXIT_KILLED = 10  # kill switch engaged: systemd must not restart (RestartPreventExitStatus)
EXIT_RECONCILE = 7  # live: our books and the exchange's disagree (fail closed)
EXIT_DATABASE = 8  # the database is damaged, or empty where the home held an account

"""The ground floor the running bot stands on: the kill-switch flag and its watcher, systemd's
notify socket, the Discord notifier, logging, the one-bot-per-home lock and the metrics
registry. Infra imports the domain and the standard library (and its own third-party
clients) only; the operator tools in ``ops/`` and the bot in ``runtime/`` build on it."""

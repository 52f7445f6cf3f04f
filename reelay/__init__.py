"""Reelay's composition root: the processes (CLI) and the adapters that join core to arq."""

"""Reelay's background work: arq jobs and crons over core services."""

"""Reelay's core: domain logic, services, ports and their adapters."""

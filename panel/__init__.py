"""Reelay's admin web panel, JSON API and Meta webhook endpoint (Quart)."""

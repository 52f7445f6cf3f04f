"""Reelay's chat adapters: Telegram (aiogram) and Discord (discord.py)."""

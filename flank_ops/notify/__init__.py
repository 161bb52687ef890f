"""Notifications: webhook, email, dead-man's switch pings."""

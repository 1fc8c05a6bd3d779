"""Automations: the cron scheduler, the heartbeat, wake and the boot script (issue 10)."""

"""gunicorn settings for the prod image, from the environment (`gunicorn -c python:config.gunicorn`)."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Heartbeat files in memory: the root file system is read-only and /tmp may be a disk.
worker_tmp_dir = "/dev/shm"
accesslog = "-"
errorlog = "-"
# The proxy in front sets X-Forwarded-Proto; only trust it from where it can come.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")

"""Long work run as jobs: on RQ (Redis) when ``JOB_QUEUE_URL`` is set, else in the web process."""

"""What the web server and the Ray backend share about jobs. No web framework is imported here:
the routes over these are the server's (nodeflow/server/routers/).

  store.py         the persistent job store (sqlite): jobs and sweep groups
  planning.py      planning a job's request (the one validation path) and summarising its run
  worker.py        the local worker pool (WorkerPool) and WorkerLost
  broadcast.py     the event broker and each job's emitter
  groups.py        sweep groups: queueing a sweep's jobs, drawing its contact sheets
  policy.py        what the server refuses that the CLI allows (URLs, downloads)
  download_env.py  where downloads may go
  scrub.py         server paths out of client-visible messages
  config.py        the server's settings (ServerConfig)
"""

"""What the web server and the Ray backend share about jobs: the persistent job store, planning a
request, the local worker pool and event broker, the download policy and the settings. No web
framework is imported here."""

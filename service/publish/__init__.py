"""Scheduled publishing (``nowcast publish``): nowcasts out to webhooks and folders.

- `message`: what is delivered (delivery job, message, failure) - plain types;
- `payload`: the JSON summary, links and file names of a forecast - pure functions;
- `signing`: Standard Webhooks signatures (HMAC-SHA256 over id, timestamp and body), secrets
  and the check for receivers;
- `subscribers`: the registry of subscriber kinds (``webhook``, ``file``);
- `state`: the Redis side: delivered markers, in-flight locks, counts, dead letters, cycles;
- `delivery`: one delivery with retries, back-off with jitter, dead letters, exactly once;
- `scheduler`: the cron and on-forecast loops, missed-cycle reports, dead-letter replay;
- `metrics`: Prometheus families read from the Redis state.
"""

"""Bus machinery: subjects and streams, the CloudEvents envelope, outbox relay, inbox consumer."""

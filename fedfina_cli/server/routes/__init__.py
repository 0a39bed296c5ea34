"""The server's routes, one router per area: the seed's API, ElevenLabs' webhooks, operations."""

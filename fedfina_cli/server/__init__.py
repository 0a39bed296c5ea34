"""`fedfina serve`: the HTTP API and ElevenLabs' post-call webhooks (SPEC "Serving").

FastAPI and uvicorn are imported only here, so the CLI's other commands stay fast.
"""

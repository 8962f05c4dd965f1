"""OpenAI Realtime over WebRTC: the event shapes, and a client built on the ``openai`` SDK."""

"""The reference WhatsApp ↔ browser ↔ OpenAI voice relay built on :mod:`webrtc_ext`."""

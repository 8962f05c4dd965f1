"""The AI assistant and live transcription legs of a call, on the OpenAI Realtime API."""

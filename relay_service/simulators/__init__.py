"""Built-in simulators of the WhatsApp Calling API and the OpenAI Realtime API."""

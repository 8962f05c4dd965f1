"""WhatsApp Business Cloud API calling: webhooks, Graph API client and SDP rules."""

"""What several replicas of the service share through Redis, and recovery of calls nobody holds.

- :mod:`.registry`: each replica's lease (renewed, with its draining flag) and who owns each call;
- :mod:`.bus`: messages to one replica or to all (webhook events, console requests and updates);
- :mod:`.sessions`: agent sessions, in memory (one process) or in Redis (every replica), expiring;
- :mod:`.recovery`: ending calls left by a dead replica or a previous run;
- :mod:`.node`: the shell that wires them to the router, the console and the webhook.

Without ``RELAY_REDIS_URL`` only :mod:`.sessions` (in memory) and :mod:`.recovery` are used.
"""

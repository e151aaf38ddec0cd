"""The live graph: stages as processes joined by ZeroMQ, started and watched by a supervisor."""

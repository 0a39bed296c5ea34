"""Real servers on loopback that behave like the services fedfina talks to."""

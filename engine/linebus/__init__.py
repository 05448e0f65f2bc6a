"""The line bus: a station's line events leave its store's outbox for the line. ``sink`` is the contract
of where they go and finds the sinks installed (entry points ``floorflow.sinks``, by URL scheme);
``mqtt`` is the MQTT sink (paho-mqtt: QoS 1, the station's retained status, its last will);
``publisher`` is the one thread that publishes the outbox through a sink in order, marks what the
broker acknowledged and starts again from the first unacknowledged event after a disconnect, never
making the station wait; ``tail`` reads a line's events back as one line each. This room imports the
engine's core and ``engine.store``.
"""

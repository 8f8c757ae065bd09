"""Sessions: every piece of work is a session with an id, a state and an ordered stream of frames."""

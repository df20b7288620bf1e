"""State store backends behind one contract (:class:`daca.runtime.state.base.StateStore`)."""

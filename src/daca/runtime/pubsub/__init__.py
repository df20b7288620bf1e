"""Pub/sub backends behind one contract (:class:`daca.runtime.pubsub.base.PubSub`)."""

"""emkg: the East Midlands children's services knowledge graph toolkit."""

__version__ = "0.1.0"

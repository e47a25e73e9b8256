"""What the chat views share (R8, R9, R20): the freshness cache and phone-sized markdown tables."""
